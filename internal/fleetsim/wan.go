// Package fleetsim builds the simulated WAN that the fleet simulation
// (fleet_test.go, scripts/fleet.sh) runs a whole Meridian fleet on: one
// network namespace per region, joined by a router that delays each
// packet by the one-way latency between the two regions and drops the
// packets of a partitioned region. The processes in it are the real ones
// (PostgreSQL, meridian serve, meridian-checker), each started in its
// region's namespace with "ip netns exec".
//
// The router lives in the test process. Each region has a TUN device,
// wan0, holding the region's addresses (198.18.R.0/24, from the range
// RFC 2544 sets aside for benchmarks) and the route to every other
// region; the router reads the packets a region sends, and writes each
// into the destination region's TUN device once its delay has passed.
// This is tc netem's job done in user space: the kernels this runs on
// (a Firecracker VM's, for one) may be built without sch_netem or sch_fq,
// while TUN is everywhere. The test process itself is the observer,
// region 0 (198.18.0.1), with no delay to anyone: commits are made and
// answers read from there, so that the latencies measured are the
// fleet's own.
//
// Everything needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2.
// One WAN runs at a time on a machine (a lock file): the observer's
// route to 198.18.0.0/16 is in the machine's own namespace.
package fleetsim

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// prefix starts the name of every namespace and TUN device made here,
// followed by the pid of the process that made it.
const prefix = "mfl"

// lockPath serializes WANs on one machine.
const lockPath = "/run/lock/meridian-fleetsim.lock"

// WAN is a set of regions joined by a router with per-pair delays. Its
// methods are safe for concurrent use.
type WAN struct {
	regions []*Region
	delay   [][]time.Duration // one way, [from][to], by region index
	lock    *os.File
	tuns    []*os.File
	stop    chan struct{}
	wg      sync.WaitGroup
	dropped atomic.Int64
	relayed atomic.Int64
}

// Region is one network namespace of the WAN (or, for index 0, the
// test process's own namespace: the observer).
type Region struct {
	Name  string
	Index int    // the third byte of its addresses
	Netns string // "" for the observer
	cut   atomic.Bool
}

// Addr returns the region's address 198.18.Index.host. Hosts 1 to 63
// are on the region's TUN device.
func (r *Region) Addr(host int) string { return fmt.Sprintf("198.18.%d.%d", r.Index, host) }

// hostsPerRegion is how many addresses each region's device holds.
const hostsPerRegion = 63

// New builds the regions named, in order (region indexes 1, 2, ...), and
// starts the router with the one-way delays given by delay (called for
// every ordered pair; the observer has none). Close removes everything,
// and New removes what a WAN of a process that no longer runs left.
func New(names []string, delay func(from, to string) time.Duration) (_ *WAN, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("fleetsim: needs root (network namespaces, TUN devices)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("fleetsim: ip (iproute2) not found")
	}
	w := &WAN{stop: make(chan struct{})}
	lockFile := lockPath
	if _, err := os.Stat(filepath.Dir(lockPath)); err != nil {
		lockFile = filepath.Join(os.TempDir(), filepath.Base(lockPath))
	}
	if w.lock, err = os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return nil, fmt.Errorf("fleetsim: %w", err)
	}
	// Another WAN may be running (scripts/fleet.sh beside make test):
	// wait for it, boundedly.
	deadline := time.Now().Add(10 * time.Minute)
	for unix.Flock(int(w.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		if time.Now().After(deadline) {
			w.lock.Close()
			return nil, errors.New("fleetsim: another fleet simulation holds " + lockFile + " for 10 minutes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	removeStale()

	pid := os.Getpid()
	w.regions = append(w.regions, &Region{Name: "observer", Index: 0})
	for i, n := range names {
		w.regions = append(w.regions, &Region{Name: n, Index: i + 1, Netns: fmt.Sprintf("%s-%d-%s", prefix, pid, n)})
	}
	w.delay = make([][]time.Duration, len(w.regions))
	for i, from := range w.regions {
		w.delay[i] = make([]time.Duration, len(w.regions))
		for j, to := range w.regions {
			if i != j && i != 0 && j != 0 {
				w.delay[i][j] = delay(from.Name, to.Name)
			}
		}
	}
	for _, r := range w.regions {
		if err := w.setUp(r); err != nil {
			return nil, err
		}
	}
	for i := range w.regions {
		w.wg.Go(func() { w.read(i) })
	}
	return w, nil
}

// setUp makes r's namespace and TUN device and gives it its addresses
// and route.
func (w *WAN) setUp(r *Region) error {
	dev := "wan0"
	ipArgs := []string{}
	if r.Netns == "" {
		dev = fmt.Sprintf("%s%d", prefix, os.Getpid())
	} else {
		if err := ip("netns", "add", r.Netns); err != nil {
			return err
		}
		ipArgs = []string{"-n", r.Netns}
		if err := ip(append(ipArgs, "link", "set", "lo", "up")...); err != nil {
			return err
		}
	}
	var tun *os.File
	if err := w.Do(r.Name, func() error {
		var err error
		tun, err = openTUN(dev)
		return err
	}); err != nil {
		return err
	}
	w.tuns = append(w.tuns, tun)
	hosts := hostsPerRegion
	if r.Netns == "" {
		hosts = 1
	}
	// ip -batch: one process for the 63 addresses.
	var batch strings.Builder
	for h := 1; h <= hosts; h++ {
		fmt.Fprintf(&batch, "addr add %s/32 dev %s\n", r.Addr(h), dev)
	}
	fmt.Fprintf(&batch, "link set %s up\nroute add 198.18.0.0/16 dev %s src %s\n", dev, dev, r.Addr(1))
	cmd := exec.Command("ip", append(ipArgs, "-batch", "-")...)
	cmd.Stdin = strings.NewReader(batch.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("fleetsim: configure %s of region %s: %v\n%s", dev, r.Name, err, out)
	}
	return nil
}

// openTUN creates the TUN device name in the calling thread's network
// namespace and returns it ready for the runtime's poller.
func openTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("fleetsim: open /dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fleetsim: %w", err)
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fleetsim: create TUN device %s: %w", name, err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("fleetsim: %w", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// packet is one IPv4 packet on its way, due at its destination at due.
type packet struct {
	due  time.Time
	data []byte
}

// read routes the packets region i sends: each goes to the queue of its
// (from, to) link, which delivers it when its delay has passed. A link's
// delay is fixed, so its queue is in order of delivery.
func (w *WAN) read(i int) {
	links := make([]chan packet, len(w.regions))
	for j := range links {
		links[j] = make(chan packet, 4096)
		w.wg.Go(func() { w.deliver(j, links[j]) })
	}
	defer func() {
		for _, l := range links {
			close(l)
		}
	}()
	buf := make([]byte, 65536)
	for {
		n, err := w.tuns[i].Read(buf)
		if err != nil {
			return // closed
		}
		// IPv4 only, to a region of ours: 198.18.R.x.
		if n < 20 || buf[0]>>4 != 4 || buf[16] != 198 || buf[17] != 18 {
			continue
		}
		j := int(buf[18])
		if j >= len(w.regions) || w.regions[i].cut.Load() || w.regions[j].cut.Load() {
			w.dropped.Add(1)
			continue
		}
		p := packet{due: time.Now().Add(w.delay[i][j]), data: slices.Clone(buf[:n])}
		select {
		case links[j] <- p:
		default:
			w.dropped.Add(1) // a full queue drops, as a router's would
		}
	}
}

// deliver writes the packets of one link into region j's device when
// they are due.
func (w *WAN) deliver(j int, q <-chan packet) {
	for p := range q {
		if d := time.Until(p.due); d > 0 {
			time.Sleep(d)
		}
		// A region cut while the packet was on its way loses it too.
		if w.regions[j].cut.Load() {
			w.dropped.Add(1)
			continue
		}
		if _, err := w.tuns[j].Write(p.data); err == nil {
			w.relayed.Add(1)
		}
	}
}

// Region returns the region named name; "observer" is the test
// process's.
func (w *WAN) Region(name string) *Region {
	for _, r := range w.regions {
		if r.Name == name {
			return r
		}
	}
	panic("fleetsim: no region " + name)
}

// Delay returns the one-way delay from one region to another.
func (w *WAN) Delay(from, to string) time.Duration {
	return w.delay[w.Region(from).Index][w.Region(to).Index]
}

// Partition cuts region name off the WAN (every packet from or to it is
// dropped, as by netem loss 100%), or joins it again.
func (w *WAN) Partition(name string, cut bool) { w.Region(name).cut.Store(cut) }

// Stats returns the packets relayed and dropped so far.
func (w *WAN) Stats() (relayed, dropped int64) { return w.relayed.Load(), w.dropped.Load() }

// Command returns a command running name with args in region's
// namespace (through ip netns exec, which execs it: the process's pid is
// the command's).
func (w *WAN) Command(region, name string, args ...string) *exec.Cmd {
	r := w.Region(region)
	if r.Netns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", r.Netns, name}, args...)...)
}

// Do runs fn on an OS thread in region's namespace. Sockets that fn
// opens stay in that namespace, whichever goroutine uses them later.
func (w *WAN) Do(region string, fn func() error) error {
	r := w.Region(region)
	if r.Netns == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		// The thread is given back to the runtime only once it is home
		// again; otherwise it ends with this goroutine.
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("fleetsim: %w", err)
			return
		}
		defer home.Close()
		ns, err := os.Open("/run/netns/" + r.Netns)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("fleetsim: %w", err)
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("fleetsim: enter %s: %w", r.Netns, err)
			return
		}
		err = fn()
		if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Close stops the router, removes the TUN devices (they go with their
// last descriptor) and namespaces, killing what still runs in them, and
// releases the lock. It may be called more than once.
func (w *WAN) Close() error {
	var errs []error
	select {
	case <-w.stop:
		return nil
	default:
		close(w.stop)
	}
	for _, r := range w.regions {
		if r.Netns != "" {
			killIn(r.Netns)
			if err := ip("netns", "delete", r.Netns); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, f := range w.tuns {
		f.Close()
	}
	w.wg.Wait()
	if w.lock != nil {
		w.lock.Close() // releases the flock
	}
	return errors.Join(errs...)
}

// removeStale removes the namespaces of WANs whose process is gone (a
// test killed by its timeout runs no cleanup), and kills what still runs
// in them.
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, prefix+"-")
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue
		}
		killIn(name)
		_ = ip("netns", "delete", name)
	}
}

// killIn kills every process in namespace ns.
func killIn(ns string) {
	out, _ := exec.Command("ip", "netns", "pids", ns).Output()
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

func ip(args ...string) error {
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("fleetsim: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
