package main

// Knot DNS as the primary of Meridian (issue 16, the incoming half):
// Meridian transfers a zone from Knot by AXFR at start and answers it,
// with a pool of its own defined on top;
// the zone changes in Knot, which NOTIFYs Meridian, and Meridian takes
// the change by IXFR; every exchange is signed with TSIG. Then Knot's
// key changes: Knot refuses Meridian's SOA queries, and Meridian keeps
// serving the copy it has. All on loopback, every wait bounded.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/internal/logbuf"
)

// secondaryZone is example.net. at serial with refresh seconds, and
// extra records.
func secondaryZone(serial, refresh int, extra string) string {
	return fmt.Sprintf(`$ORIGIN example.net.
$TTL 300
@    IN SOA ns1 hostmaster %d %d 1 86400 60
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.1
%s`, serial, refresh, extra)
}

func TestE2EKnotPrimary(t *testing.T) {
	knotd := requireKnotd(t)
	requireDig(t)
	knotc, err := exec.LookPath("knotc")
	if err != nil {
		knotc = filepath.Join(filepath.Dir(knotd), "knotc")
	}
	dir := t.TempDir()
	knotPort := freePort(t)
	// A pool defined on top of the transferred zone.
	pools := `origin: example.net.
datacenters:
  - {name: a, lat: 50, lon: 8}
pools:
  - name: geo
    ttl: 30
    endpoints:
      - {address: 198.51.100.1, datacenter: a, health: up}
`
	if err := os.WriteFile(filepath.Join(dir, "example.net.pools.yaml"), []byte(pools), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`dns:
  listen: ["127.0.0.1:0"]
health:
  checks: false
transfer:
  tsig_keys:
    - {name: xfr-key, algorithm: hmac-sha256, secret: %q}
secondary:
  first_retry: 200ms
  timeout: 2s
  zones:
    - {zone: example.net., primaries: ["127.0.0.1:%s"], key: xfr-key, pools: example.net.pools.yaml}
`, xfrSecret, knotPort)
	confFile := filepath.Join(dir, "meridian.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// Meridian first: Knot must know its port to NOTIFY it. Until Knot
	// answers, Meridian retries every first_retry.
	m := startMeridian(t, dir, nil, "--config", confFile)
	kdir := t.TempDir()
	zoneFile := filepath.Join(kdir, "example.net.zone")
	if err := os.WriteFile(zoneFile, []byte(secondaryZone(1, 3600, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	k := startKnotPrimary(t, knotd, kdir, knotPort, m.port, xfrSecret)

	l := m.waitLog(t, 0, 20*time.Second, func(l logLine) bool { return l.Msg == "Secondary zone transferred" })
	if l.attrs["type"] != "AXFR" || fmt.Sprint(l.attrs["serial"]) != "1" {
		t.Errorf("first transfer: %v", l.attrs)
	}
	waitUntil(t, "Meridian answers the transferred zone", func() bool {
		r, err := m.dig("www.example.net", "A")
		return err == nil && r.Status == "NOERROR" && slices.Equal(data(r.Answer, "A"), []string{"192.0.2.1"}) && slices.Contains(r.Flags, "aa")
	})
	if r := m.mustDig(t, "geo.example.net", "A"); !slices.Equal(data(r.Answer, "A"), []string{"198.51.100.1"}) {
		t.Errorf("the pool on the transferred zone: %s", r.Raw)
	}

	// A change in Knot: the zone file is rewritten and reloaded; Knot
	// computes the difference, journals it and NOTIFYs Meridian, which
	// asks for an IXFR.
	from := m.nextLogIndex()
	if err := os.WriteFile(zoneFile, []byte(secondaryZone(2, 1, "new  IN A 192.0.2.99\nwww  IN A 192.0.2.2\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	knotctl(t, knotc, kdir, "zone-reload", "example.net.")
	m.waitLog(t, from, 20*time.Second, func(l logLine) bool { return l.Msg == "NOTIFY received" && fmt.Sprint(l.attrs["serial"]) == "2" })
	l = m.waitLog(t, from, 20*time.Second, func(l logLine) bool { return l.Msg == "Secondary zone transferred" })
	if l.attrs["type"] != "IXFR" || fmt.Sprint(l.attrs["serial"]) != "2" {
		t.Errorf("transfer after the change: %v, want IXFR to serial 2", l.attrs)
	}
	if !strings.Contains(k.String(), "IXFR, outgoing") {
		t.Errorf("Knot logged no outgoing IXFR:\n%s", k.String())
	}
	waitUntil(t, "Meridian answers the new data", func() bool {
		r, err := m.dig("new.example.net", "A")
		if err != nil || !slices.Equal(data(r.Answer, "A"), []string{"192.0.2.99"}) {
			return false
		}
		r, err = m.dig("www.example.net", "A")
		return err == nil && slices.Equal(sorted(data(r.Answer, "A")), []string{"192.0.2.1", "192.0.2.2"})
	})
	if r := m.mustDig(t, "geo.example.net", "A"); !slices.Equal(data(r.Answer, "A"), []string{"198.51.100.1"}) {
		t.Errorf("the pool after the IXFR: %s", r.Raw)
	}

	// Knot's key changes: Meridian's SOA queries (every second, the new
	// SOA's refresh) are refused, its NOTIFY does not verify, and
	// Meridian keeps serving what it has. (With a pool on it, the zone's
	// served serial follows the clock, not Knot's: docs/transfers.md.)
	soa := m.mustDig(t, "example.net", "SOA")
	if len(soa.Answer) != 1 {
		t.Fatalf("SOA: %v", soa.Answer)
	}
	from = m.nextLogIndex()
	writeKnotPrimaryConf(t, kdir, knotPort, m.port, "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE=")
	knotctl(t, knotc, kdir, "reload")
	if err := os.WriteFile(zoneFile, []byte(secondaryZone(3, 1, "gone IN A 192.0.2.100\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	knotctl(t, knotc, kdir, "zone-reload", "example.net.")
	m.waitLog(t, from, 20*time.Second, func(l logLine) bool {
		return l.Msg == "Secondary zone refresh failed" && strings.Contains(fmt.Sprint(l.attrs["err"]), "SOA query")
	})
	m.waitLog(t, from, 20*time.Second, func(l logLine) bool { return l.Msg == "NOTIFY refused: TSIG" })
	if r := m.mustDig(t, "example.net", "SOA"); len(r.Answer) != 1 || r.Answer[0].Data != soa.Answer[0].Data {
		t.Errorf("SOA after the key change: %v, before: %v", r.Answer, soa.Answer)
	}
	if r := m.mustDig(t, "gone.example.net", "A"); r.Status != "NXDOMAIN" {
		t.Errorf("gone.example.net. after the key change: %s", r.Raw)
	}
	for _, l := range m.logLines() {
		if l.index >= from && l.Msg == "Secondary zone transferred" {
			t.Errorf("transferred with the wrong key: %v", l.attrs)
		}
	}
}

// knotctl runs knotc against the Knot of dir.
func knotctl(t *testing.T, knotc, dir string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, knotc, append([]string{"-s", filepath.Join(dir, "knot.sock")}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("knotc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// writeKnotPrimaryConf writes the configuration of a Knot on
// 127.0.0.1:port, primary of example.net. (from dir's zone file),
// NOTIFYing Meridian at 127.0.0.1:secondary, with TSIG key xfr-key of
// secret for transfers and NOTIFY.
func writeKnotPrimaryConf(t *testing.T, dir, port, secondary, secret string) {
	t.Helper()
	conf := knotServerConf(t, dir, port, "") + knotMeridianRemote(secondary, secret) + fmt.Sprintf(`acl:
  - id: transfer
    address: 127.0.0.1
    key: xfr-key
    action: transfer
template:
  - id: default
    storage: %[1]s
    zonefile-sync: -1
    zonefile-load: difference
    journal-content: changes
    semantic-checks: off
zone:
  - domain: example.net.
    file: example.net.zone
    notify: meridian
    acl: transfer
`, dir)
	if err := os.WriteFile(filepath.Join(dir, "knot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startKnotPrimary starts knotd as writeKnotPrimaryConf configures it.
func startKnotPrimary(t *testing.T, knotd, dir, port, secondary, secret string) *logbuf.Buffer {
	t.Helper()
	writeKnotPrimaryConf(t, dir, port, secondary, secret)
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	cmd := exec.Command(knotd, "--config", filepath.Join(dir, "knot.conf"))
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start knotd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("knotd log:\n%s", logs.String())
		}
	})
	return logs
}
