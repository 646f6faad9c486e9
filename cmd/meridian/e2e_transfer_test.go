package main

// Knot DNS as a secondary of Meridian (issue 16): Knot transfers a zone
// by AXFR at start, is sent a NOTIFY when the zone file changes, and
// transfers the change by IXFR; what it then serves is compared record
// by record with Meridian's AXFR. Real dig checks the refusals: a wrong
// TSIG secret gets NOTAUTH, an address no rule lists gets REFUSED. All
// on loopback, every wait bounded.

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/zones"
)

const xfrSecret = "Zm9yIHRoZSBlMmUgdHJhbnNmZXIgdGVzdCBvbmx5IQ=="

// transferZone is example.com. with extra records, and 3000 TXT records
// so that a transfer takes several messages, each signed (RFC 8945
// section 5.3.1).
func transferZone(serial int, extra string) string {
	var filler strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&filler, "f%d IN TXT \"filler record %d of a zone that takes several messages\"\n", i, i)
	}
	return fmt.Sprintf(`$ORIGIN example.com.
$TTL 300
@    IN SOA ns1 hostmaster %d 7200 3600 1209600 60
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.1
www  IN AAAA 2001:db8::1
mail IN MX  10 www
%s%s`, serial, extra, filler.String())
}

// poolZone is pool.example. with a pool www of two endpoints, the
// second's health given, and the same file serial whatever it is.
func poolZone(second string) string {
	return fmt.Sprintf(`origin: pool.example.
ttl: 300
soa: {ns: ns1.pool.example., mbox: hostmaster.pool.example., serial: 1, minimum: 60}
records:
  - {name: "@", type: NS, data: ns1.pool.example.}
  - {name: ns1, type: A, data: 192.0.2.53}
datacenters:
  - {name: a, lat: 50, lon: 8}
  - {name: b, lat: 40, lon: -70}
pools:
  - name: www
    ttl: 30
    endpoints:
      - {address: 198.51.100.1, datacenter: a, health: up}
      - {address: 198.51.100.2, datacenter: b, health: %s}
`, second)
}

func TestE2EKnotSecondary(t *testing.T) {
	knotd := requireKnotd(t)
	requireDig(t)
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(zoneFile, []byte(transferZone(1, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	poolFile := filepath.Join(dir, "pool.example.yaml")
	if err := os.WriteFile(poolFile, []byte(poolZone("up")), 0o644); err != nil {
		t.Fatal(err)
	}
	knotPort := freePort(t)
	conf := fmt.Sprintf(`dns:
  listen: ["127.0.0.1:0"]
zones:
  files: [%q, %q]
health:
  checks: false
transfer:
  tsig_keys:
    - {name: xfr-key, algorithm: hmac-sha256, secret: %q}
  allow:
    - {zones: ["example.com.", "pool.example."], from: ["127.0.0.1"], keys: [xfr-key]}
  notify:
    - {zones: "*", to: ["127.0.0.1:%s"], key: xfr-key}
`, zoneFile, poolFile, xfrSecret, knotPort)
	confFile := filepath.Join(dir, "meridian.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, nil, "--config", confFile)

	k := startKnotSecondary(t, knotd, knotPort, m.port)
	// knotDig asks Knot; an error (Knot still starting) is an empty result.
	knotDig := func(q ...string) *digResult {
		r, err := (&meridian{port: knotPort}).dig(q...)
		if err != nil {
			return &digResult{Raw: err.Error()}
		}
		return r
	}
	waitUntil(t, "Knot serves serial 1 after its AXFR", func() bool {
		r := knotDig("example.com", "SOA")
		return r.Status == "NOERROR" && len(r.Answer) == 1 && strings.Fields(r.Answer[0].Data)[2] == "1"
	})
	if !strings.Contains(k.String(), "AXFR, incoming") {
		t.Errorf("Knot did not log an incoming AXFR:\n%s", k.String())
	}

	// A change: the zone file is rewritten; Meridian reloads it and
	// NOTIFYs Knot, which asks for an IXFR.
	from := m.nextLogIndex()
	if err := os.WriteFile(zoneFile, []byte(transferZone(2, "new  IN A 192.0.2.99\nwww  IN A 192.0.2.2\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	m.waitLog(t, from, 10*time.Second, func(l logLine) bool { return l.Msg == "NOTIFY answered" && fmt.Sprint(l.attrs["serial"]) == "2" })
	waitUntil(t, "Knot serves the new record", func() bool {
		r := knotDig("new.example.com", "A")
		return r.Status == "NOERROR" && slices.Equal(data(r.Answer, "A"), []string{"192.0.2.99"})
	})
	logs := k.String()
	if !strings.Contains(logs, "IXFR, incoming") || strings.Contains(logs, "AXFR-style") {
		t.Errorf("Knot did not take the change by IXFR:\n%s", logs)
	}
	m.waitLog(t, from, 5*time.Second, func(l logLine) bool { return l.Msg == "Zone transfer" && l.attrs["type"] == "IXFR" })

	// What Knot serves is what Meridian serves, record by record.
	key := "hmac-sha256:xfr-key:" + xfrSecret
	mine := axfrRecords(t, m.port, "-y", key)
	theirs := axfrRecords(t, knotPort)
	if !slices.Equal(mine, theirs) || len(mine) < 8 {
		t.Errorf("zones differ:\nMeridian:\n%s\nKnot:\n%s", strings.Join(mine, "\n"), strings.Join(theirs, "\n"))
	}

	// Refusals. Real dig shows the TSIG errors of NOTAUTH (it prints no
	// header for a transfer, so the rcode of REFUSED is read with
	// miekg/dns), and that no transfer gets through over TCP.
	wrong := "hmac-sha256:xfr-key:" + "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE="
	for _, c := range []struct {
		name string
		args []string
		want string // in dig's output of an IXFR over UDP
	}{
		{"wrong secret", []string{"-y", wrong}, "BADSIG"},
		{"unknown key", []string{"-y", "hmac-sha256:other-key:" + xfrSecret}, "BADKEY"},
		{"no key", nil, ""},
		{"address not listed", []string{"-b", "127.0.0.2", "-y", key}, ""},
	} {
		if c.want != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			args := append([]string{"@127.0.0.1", "-p", m.port, "+time=2", "+tries=1"}, c.args...)
			out, _ := exec.CommandContext(ctx, "dig", append(args, "example.com", "IXFR=1", "+notcp")...).CombinedOutput()
			cancel()
			if !strings.Contains(string(out), "tsig indicates error") || !strings.Contains(string(out), c.want) {
				t.Errorf("%s: no TSIG error %s in:\n%s", c.name, c.want, out)
			}
		}
		if got := axfrRecords(t, m.port, c.args...); len(got) != 0 {
			t.Errorf("%s: AXFR over TCP gave %d records", c.name, len(got))
		}
	}
	for _, c := range []struct {
		name  string
		local string
		key   bool
		rcode int
	}{
		{"wrong secret", "127.0.0.1", true, dns.RcodeNotAuth},
		{"no key", "127.0.0.1", false, dns.RcodeRefused},
		{"address not listed", "127.0.0.2", true, dns.RcodeRefused},
	} {
		q := new(dns.Msg)
		q.SetAxfr("example.com.")
		cl := &dns.Client{Net: "tcp", Timeout: 2 * time.Second,
			Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(c.local)}}}
		if c.key {
			secret := xfrSecret
			if c.rcode == dns.RcodeNotAuth {
				secret = "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE="
			}
			q.SetTsig("xfr-key.", dns.HmacSHA256, 300, time.Now().Unix())
			cl.TsigSecret = map[string]string{"xfr-key.": secret}
		}
		r, _, err := cl.Exchange(q, "127.0.0.1:"+m.port)
		if r == nil || r.Rcode != c.rcode {
			t.Errorf("%s: AXFR reply %v (%v), want %s", c.name, r, err, dns.RcodeToString[c.rcode])
		}
	}
	// Pools are transferred as the A records of their healthy endpoints.
	// An endpoint going down changes no file serial, but the served
	// serial moves on, Knot is notified, takes the change by IXFR and
	// answers the healthy endpoint alone.
	waitUntil(t, "Knot serves both endpoints of the pool", func() bool {
		r := knotDig("www.pool.example", "A")
		return slices.Equal(sorted(data(r.Answer, "A")), []string{"198.51.100.1", "198.51.100.2"})
	})
	before := knotDig("pool.example", "SOA")
	if len(before.Answer) != 1 {
		t.Fatalf("Knot's SOA of pool.example.: %s", before.Raw)
	}
	from = m.nextLogIndex()
	if err := os.WriteFile(poolFile, []byte(poolZone("down")), 0o644); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "Knot serves the healthy endpoint alone", func() bool {
		r := knotDig("www.pool.example", "A")
		return slices.Equal(data(r.Answer, "A"), []string{"198.51.100.1"})
	})
	m.waitLog(t, from, 5*time.Second, func(l logLine) bool {
		return l.Msg == "Zone transfer" && l.attrs["zone"] == "pool.example." && l.attrs["type"] == "IXFR"
	})
	after := knotDig("pool.example", "SOA")
	if len(after.Answer) != 1 {
		t.Fatalf("Knot's SOA of pool.example.: %s", after.Raw)
	}
	b, _ := strconv.ParseUint(strings.Fields(before.Answer[0].Data)[2], 10, 32)
	a, _ := strconv.ParseUint(strings.Fields(after.Answer[0].Data)[2], 10, 32)
	if !zones.SerialLess(uint32(b), uint32(a)) {
		t.Errorf("pool.example. serial %d after the health change, %d before", a, b)
	}
	if !strings.Contains(k.String(), "[pool.example.] IXFR, incoming") {
		t.Errorf("Knot did not take the pool's change by IXFR:\n%s", k.String())
	}

	// The server is unhurt: Knot still gets the zone.
	if got := axfrRecords(t, m.port, "-y", key); !slices.Equal(got, mine) {
		t.Errorf("AXFR after the refusals: %d records", len(got))
	}
	t.Logf("knotd log:\n%s", k.String())
}

// axfrRecords runs dig AXFR and returns the records, normalised (one
// space, lower case), sorted, the SOA once.
func axfrRecords(t *testing.T, port string, args ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	all := append([]string{"@127.0.0.1", "-p", port, "+time=2", "+tries=1", "+nocmd", "+nostats", "+nocomments"}, args...)
	all = append(all, "example.com", "AXFR")
	out, _ := exec.CommandContext(ctx, "dig", all...).CombinedOutput()
	var rrs []string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, ";") {
			continue
		}
		f := strings.Fields(strings.ToLower(line))
		if len(f) < 5 || f[3] == "tsig" {
			continue
		}
		rr := strings.Join(f, " ")
		if !slices.Contains(rrs, rr) {
			rrs = append(rrs, rr)
		}
	}
	slices.Sort(rrs)
	return rrs
}

// waitUntil polls ok for up to 20 s.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startKnotSecondary starts knotd on 127.0.0.1:port as a secondary of
// example.com. from Meridian at 127.0.0.1:primary, with the TSIG key for
// transfers and NOTIFY, and lets anyone on loopback AXFR from it.
func startKnotSecondary(t *testing.T, knotd, port, primary string) *logbuf.Buffer {
	t.Helper()
	dir := t.TempDir()
	conf := knotServerConf(t, dir, port, "") + knotMeridianRemote(primary, xfrSecret) + fmt.Sprintf(`acl:
  - id: notify
    address: 127.0.0.1
    key: xfr-key
    action: notify
  - id: transfer
    address: 127.0.0.1
    action: transfer
template:
  - id: default
    storage: %[1]s
    zonefile-sync: -1
    zonefile-load: none
    journal-content: changes
    semantic-checks: off
zone:
  - domain: example.com.
    master: meridian
    acl: [notify, transfer]
  - domain: pool.example.
    master: meridian
    acl: [notify, transfer]
`, dir)
	confPath := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	// The journal, where Knot keeps the changes IXFR brings, lives there.
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	logs := &logbuf.Buffer{}
	cmd := exec.Command(knotd, "--config", confPath)
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

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}
