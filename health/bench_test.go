package health

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// benchListenersEnv makes the test binary a set of HTTP servers for
// BenchmarkSchedulerHTTP, so that the benchmark's CPU figures are the
// checker's alone.
const benchListenersEnv = "HEALTH_BENCH_LISTENERS"

func TestMain(m *testing.M) {
	if n, err := strconv.Atoi(os.Getenv(benchListenersEnv)); err == nil {
		serveBench(n)
		return
	}
	os.Exit(m.Run())
}

// serveBench listens on n loopback ports, prints them on one line and
// answers "UP" until stdin closes.
func serveBench(n int) {
	srv := &http.Server{
		Handler:  http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "UP\n") }),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	ports := make([]string, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		ports[i] = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		go srv.Serve(l)
	}
	fmt.Println(strings.Join(ports, " "))
	io.Copy(io.Discard, os.Stdin)
}

// startBenchServers starts serveBench in a child process and returns its
// ports and a reader of its CPU time.
func startBenchServers(b *testing.B, n int) ([]uint16, func() time.Duration) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchListenersEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("bench servers: %v", err)
	}
	var ports []uint16
	for _, f := range strings.Fields(line) {
		p, err := strconv.ParseUint(f, 10, 16)
		if err != nil {
			b.Fatal(err)
		}
		ports = append(ports, uint16(p))
	}
	return ports, func() time.Duration { return procCPU(cmd.Process.Pid) }
}

// procCPU reads a process's user+system time from /proc (0 without /proc).
func procCPU(pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ is 100 on Linux
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchScheduler runs targets for one interval to settle, then for the
// benchmark time (b.Loop, 100 ms per iteration), and reports probes/s,
// CPU per probe and the heap. otherCPU, if not nil, is CPU spent elsewhere
// on the probes' behalf (the servers), reported per probe as well.
func benchScheduler(b *testing.B, ts []Target, maxConc int, probe func(context.Context, Target) Result, otherCPU func() time.Duration) {
	var probes, failed atomic.Int64
	s := NewScheduler(SchedulerOptions{MaxConcurrent: maxConc, Probe: func(ctx context.Context, t Target) Result {
		r := probe(ctx, t)
		if !r.OK {
			failed.Add(1)
		}
		probes.Add(1)
		return r
	}})
	if err := s.SetTargets(ts); err != nil {
		b.Fatal(err)
	}
	if otherCPU == nil {
		otherCPU = func() time.Duration { return 0 }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx, nil)
		close(done)
	}()
	time.Sleep(ts[0].Check.Interval) // every target has been probed once

	p0, f0, cpu0, other0, t0 := probes.Load(), failed.Load(), selfCPU(), otherCPU(), time.Now()
	for b.Loop() {
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	p1, f1, cpu1, other1 := probes.Load(), failed.Load(), selfCPU(), otherCPU()
	goroutines := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	cancel()
	<-done

	n := float64(p1 - p0)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(n/elapsed.Seconds(), "probes/s")
	b.ReportMetric(float64(cpu1-cpu0)/1e3/n, "cpu-µs/probe")
	if other1 > other0 {
		b.ReportMetric(float64(other1-other0)/1e3/n, "server-cpu-µs/probe")
	}
	b.ReportMetric(float64(f1-f0)/n, "failed/probe")
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(goroutines), "goroutines")
}

// BenchmarkScheduler10k: 10,000 targets at a 1 s interval against a fake
// probe, answering at once and after 50 ms. By Little's law the scheduler
// can sustain MaxConcurrent / latency probes per second, so slow
// endpoints need a higher cap than the default 256.
func BenchmarkScheduler10k(b *testing.B) {
	ts := targets10k(Check{Type: "tcp", Port: 80, Interval: time.Second, Timeout: 500 * time.Millisecond}, []uint16{80})
	for _, bc := range []struct {
		latency time.Duration
		maxConc int
	}{{0, 256}, {50 * time.Millisecond, 256}, {50 * time.Millisecond, 1024}} {
		b.Run(fmt.Sprintf("latency=%v/max=%d", bc.latency, bc.maxConc), func(b *testing.B) {
			benchScheduler(b, ts, bc.maxConc, func(ctx context.Context, _ Target) Result {
				if bc.latency > 0 {
					t := time.NewTimer(bc.latency)
					select {
					case <-t.C:
					case <-ctx.Done():
						t.Stop()
					}
				}
				return Result{OK: true, At: time.Now()}
			}, nil)
		})
	}
}

// BenchmarkSchedulerHTTP: 10,000 HTTP targets at a 1 s interval, spread
// over 50 loopback listeners in a child process, with the real probe
// (fresh connection per probe, body checked).
func BenchmarkSchedulerHTTP(b *testing.B) {
	ports, serverCPU := startBenchServers(b, 50)
	ts := targets10k(Check{Type: "http", Interval: time.Second, Timeout: 500 * time.Millisecond, ExpectBody: "UP"}, ports)
	benchScheduler(b, ts, DefaultMaxConcurrent, Probe, serverCPU)
}

func targets10k(c Check, ports []uint16) []Target {
	ts := make([]Target, 10_000)
	for i := range ts {
		c := c
		c.Port = ports[i%len(ports)]
		ts[i] = Target{Key: fmt.Sprintf("svc%05d.example./127.0.0.1", i), Addr: loopback, Check: c}
	}
	return ts
}
