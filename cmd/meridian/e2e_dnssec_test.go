package main

// DNSSEC end to end: zones signed with keys made by "meridian keys" and
// by ldns-keygen, served by the real binary and validated by a real
// validating resolver, Unbound, asked with dig. Unbound and ldns-keygen
// are required (scripts/test.sh installs them); the test fails rather
// than skips without them.

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

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/signing"
)

// requireUnbound returns the unbound binary: on PATH, else in /usr/sbin.
func requireUnbound(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("unbound"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/unbound"); err == nil {
		return "/usr/sbin/unbound"
	}
	t.Fatal("unbound not found on PATH or at /usr/sbin/unbound: install Debian's unbound package (scripts/test.sh does)")
	return ""
}

// unbound is a running Unbound.
type unbound struct {
	cmd  *exec.Cmd
	logs *logbuf.Buffer
	port string
	done chan struct{}
}

// startUnbound starts Unbound in the foreground on a free port of
// 127.0.0.1 as a validating resolver that knows example. only: a stub
// zone to Meridian on meridianPort and anchor as its trust anchor. It
// forwards the client subnet of queries (ECS) to Meridian. It runs as
// the current user, without chroot, with its files in a temporary
// directory, and is stopped at the end of the test.
func startUnbound(t *testing.T, bin, meridianPort, anchor string) *unbound {
	t.Helper()
	var lastLog string
	for try := 0; try < 3; try++ {
		u := tryStartUnbound(t, bin, meridianPort, anchor)
		if u.waitReady(10 * time.Second) {
			return u
		}
		lastLog = u.logs.String()
		u.stop()
	}
	t.Fatalf("unbound did not answer on three ports; its last log:\n%s", lastLog)
	return nil
}

func tryStartUnbound(t *testing.T, bin, meridianPort, anchor string) *unbound {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	// Defaults otherwise, qname minimisation included. val-log-level 2
	// logs why an answer is bogus; ede puts it in the SERVFAIL.
	conf := fmt.Sprintf(`server:
    interface: 127.0.0.1
    port: %[2]s
    do-ip6: no
    num-threads: 1
    username: ""
    chroot: ""
    directory: "%[1]s"
    pidfile: "%[1]s/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    val-log-level: 2
    ede: yes
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    module-config: "subnetcache validator iterator"
    send-client-subnet: 127.0.0.1
    trust-anchor: "%[4]s"
remote-control:
    control-enable: no
stub-zone:
    name: "example."
    stub-addr: 127.0.0.1@%[3]s
`, dir, port, meridianPort, anchor)
	confPath := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	u := &unbound{logs: &logbuf.Buffer{}, port: port, done: make(chan struct{})}
	u.cmd = exec.Command(bin, "-d", "-c", confPath)
	u.cmd.Stdout, u.cmd.Stderr = u.logs, u.logs
	if err := u.cmd.Start(); err != nil {
		t.Fatalf("start unbound: %v", err)
	}
	go func() {
		u.cmd.Wait()
		close(u.done)
	}()
	t.Cleanup(func() {
		u.stop()
		if t.Failed() {
			t.Logf("unbound log (trust anchor %s):\n%s", anchor, u.logs.String())
		}
	})
	return u
}

func (u *unbound) stop() {
	select {
	case <-u.done:
	default:
		u.cmd.Process.Kill()
		<-u.done
	}
}

// waitReady reports whether Unbound answers a query (any rcode: it need
// not resolve anything) within timeout.
func (u *unbound) waitReady(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	for time.Now().Before(deadline) {
		q := new(dns.Msg)
		q.SetQuestion("localhost.", dns.TypeA)
		if _, _, err := c.Exchange(q, "127.0.0.1:"+u.port); err == nil {
			return true
		}
		select {
		case <-u.done:
			return false
		case <-time.After(20 * time.Millisecond):
		}
	}
	return false
}

// dig asks Unbound, with recursion desired (m.dig sets +norec; the later
// +rec wins).
func (u *unbound) dig(t *testing.T, query ...string) *digResult {
	t.Helper()
	r, err := (&meridian{port: u.port}).dig(append([]string{"+rec", "+dnssec"}, query...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runMeridian runs the meridian binary (not serve) and returns its
// standard output; a failure fails the test.
func runMeridian(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var stderr strings.Builder
	cmd := exec.CommandContext(ctx, meridianBinary(t), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("meridian %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// dsData returns the DS records "meridian keys ds" printed, without
// owner, TTL, class and type, as they go in a zone's records.
func dsData(t *testing.T, out string) []string {
	t.Helper()
	var ds []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("keys ds printed %q: %v", line, err)
		}
		d, ok := rr.(*dns.DS)
		if !ok {
			t.Fatalf("keys ds printed %q, not a DS record", line)
		}
		ds = append(ds, fmt.Sprintf("%d %d %d %s", d.KeyTag, d.Algorithm, d.DigestType, d.Digest))
	}
	return ds
}

// dnssecZones writes the zones of the test into dir: the parent example.
// (YAML, with a pool), its signed child secure.example. (whose DS the
// parent holds) and its unsigned child insecure.example. (no DS), whose
// name server is Meridian itself, and a delegation with remoteDS to
// remote.example., served elsewhere.
func dnssecZones(t *testing.T, dir string, childDS []string, remoteDS string) []string {
	t.Helper()
	// 30 TXT records of 60 octets: with their RRSIG, too big for UDP.
	var txt []string
	for i := range 30 {
		txt = append(txt, fmt.Sprintf(`'"%02d%s"'`, i, strings.Repeat("x", 58)))
	}
	big := strings.Join(txt, ", ")
	var ds strings.Builder
	for _, d := range childDS {
		fmt.Fprintf(&ds, "      - %s\n", d)
	}
	parent := `origin: example.
ttl: 300
soa: {ns: ns1.example., mbox: hostmaster.example., serial: 1, refresh: 7200, retry: 3600, expire: 1209600, minimum: 300}
records:
  - {name: "@", type: NS, data: ns1.example.}
  - {name: ns1, type: A, data: 127.0.0.1}
  - {name: www, type: A, data: 192.0.2.10}
  - {name: www, type: AAAA, data: "2001:db8::10"}
  - {name: alias, type: CNAME, data: www}
  - {name: dangling, type: CNAME, data: nowhere.example.}
  - {name: a.b, type: A, data: 192.0.2.11}
  - {name: "*.wild", type: A, data: 192.0.2.80}
  - {name: text, type: TXT, data: '"only text here"'}
  - {name: big, type: TXT, data: [` + big + `]}
  - {name: secure, type: NS, data: ns.secure.example.}
  - {name: ns.secure, type: A, data: 127.0.0.1}
  - name: secure
    type: DS
    data:
` + ds.String() + `  - {name: insecure, type: NS, data: ns.insecure.example.}
  - {name: ns.insecure, type: A, data: 127.0.0.1}
  - {name: remote, type: NS, data: ns.remote.example.}
  - {name: ns.remote, type: A, data: 192.0.2.99}
  - {name: remote, type: DS, data: "` + remoteDS + `"}
datacenters:
  - {name: east, lat: 39.04, lon: -77.49}
  - {name: west, lat: 37.34, lon: -121.89}
pools:
  - name: pool
    ttl: 30
    max_answers: 2
    geo: rules
    rules:
      - {cidr: [203.0.113.0/24], datacenters: [west, east]}
    endpoints:
      - {address: 198.51.100.11, datacenter: east}
      - {address: 198.51.100.12, datacenter: east}
      - {address: 198.51.100.21, datacenter: west}
      - {address: 198.51.100.22, datacenter: west}
`
	child := func(origin, host string) string {
		return fmt.Sprintf("$ORIGIN %s\n$TTL 300\n@ IN SOA ns hostmaster 1 7200 3600 1209600 300\n@ IN NS ns\nns IN A 127.0.0.1\nhost IN A %s\n", origin, host)
	}
	files := map[string]string{
		"example.yaml":          parent,
		"secure.example.zone":   child("secure.example.", "192.0.2.53"),
		"insecure.example.zone": child("insecure.example.", "192.0.2.54"),
	}
	var paths []string
	for _, name := range []string{"example.yaml", "secure.example.zone", "insecure.example.zone"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(files[name]), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// keyTags returns the tags of the DNSKEY RRset of zone, asked of
// Meridian directly.
func keyTags(t *testing.T, port, zone string) []uint16 {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeDNSKEY)
	r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	var tags []uint16
	for _, rr := range r.Answer {
		if k, ok := rr.(*dns.DNSKEY); ok {
			tags = append(tags, k.KeyTag())
		}
	}
	slices.Sort(tags)
	return tags
}

func TestE2EDNSSECUnbound(t *testing.T) {
	requireDig(t)
	unboundBin := requireUnbound(t)
	ldnsKeygen, err := exec.LookPath("ldns-keygen")
	if err != nil {
		t.Fatal("ldns-keygen not found: install Debian's ldnsutils package (scripts/test.sh does)")
	}
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")

	// Keys as an operator makes them: a CSK for the parent, a KSK and a
	// ZSK for the child; the child's DS goes into the parent's data, the
	// parent's DS is the resolver's trust anchor.
	runMeridian(t, "keys", "generate", "--dir", keyDir, "--zone", "example.")
	runMeridian(t, "keys", "generate", "--dir", keyDir, "--zone", "secure.example.", "--ksk")
	// The child's ZSK is made by ldns-keygen, whose files Meridian reads
	// as its own.
	ldns := exec.Command(ldnsKeygen, "-a", "ECDSAP256SHA256", "-r", "/dev/urandom", "secure.example.")
	ldns.Dir = keyDir
	if out, err := ldns.CombinedOutput(); err != nil {
		t.Fatalf("ldns-keygen: %v\n%s", err, out)
	}
	if list := runMeridian(t, "keys", "list", "--dir", keyDir, "--zone", "secure.example."); !strings.Contains(list, " ZSK ") {
		t.Fatalf("the key made by ldns-keygen is not listed as a ZSK:\n%s", list)
	}
	anchor := strings.TrimSpace(runMeridian(t, "keys", "ds", "--dir", keyDir, "--zone", "example."))
	remoteKey, err := signing.Generate("remote.example.", dns.ECDSAP256SHA256, signing.FlagKSK)
	if err != nil {
		t.Fatal(err)
	}
	remoteDS := dsData(t, remoteKey.DS().String())[0]
	files := dnssecZones(t, dir, dsData(t, runMeridian(t, "keys", "ds", "--dir", keyDir, "--zone", "secure.example.")), remoteDS)

	args := []string{"--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"}
	for _, f := range files {
		args = append(args, "--zone-file", f)
	}
	m := startMeridian(t, dir, []string{"MERIDIAN_DNSSEC_KEY_DIR=" + keyDir}, args...)
	m.waitDig(t, "server answers", isNOERROR, "www.example", "A")
	u := startUnbound(t, unboundBin, m.port, anchor)

	validated := func(t *testing.T, r *digResult, status string) {
		t.Helper()
		if r.Status != status || !r.hasFlag("ad") {
			t.Errorf("status %s flags %v, want %s with ad (validated)\n%s", r.Status, r.Flags, status, r.Raw)
		}
	}
	cases := []struct {
		name  string
		query []string
		check func(t *testing.T, r *digResult)
	}{
		{"positive", []string{"www.example", "A"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if got := data(r.Answer, "A"); !slices.Equal(got, []string{"192.0.2.10"}) {
				t.Errorf("A = %v, want [192.0.2.10]", got)
			}
		}},
		{"apex DNSKEY", []string{"example", "DNSKEY"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if len(data(r.Answer, "DNSKEY")) != 1 {
				t.Errorf("DNSKEY = %v, want the CSK", r.Answer)
			}
		}},
		{"pool", []string{"pool.example", "A"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			// No GeoIP: configuration order, the east datacenter first.
			got := data(r.Answer, "A")
			slices.Sort(got)
			if !slices.Equal(got, []string{"198.51.100.11", "198.51.100.12"}) {
				t.Errorf("A = %v, want east's two addresses", got)
			}
		}},
		{"pool with a client subnet", []string{"+subnet=203.0.113.0/24", "pool.example", "A"}, func(t *testing.T, r *digResult) {
			// Unbound passes the subnet on (send-client-subnet): its rule
			// puts the west datacenter first.
			validated(t, r, "NOERROR")
			got := data(r.Answer, "A")
			slices.Sort(got)
			if !slices.Equal(got, []string{"198.51.100.21", "198.51.100.22"}) {
				t.Errorf("A = %v, want west's two addresses", got)
			}
		}},
		{"too big for UDP", []string{"big.example", "TXT"}, func(t *testing.T, r *digResult) {
			// Meridian truncates; Unbound asks again over TCP.
			validated(t, r, "NOERROR")
			if len(data(r.Answer, "TXT")) != 30 {
				t.Errorf("%d TXT records, want 30", len(data(r.Answer, "TXT")))
			}
		}},
		{"NODATA", []string{"text.example", "A"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if len(r.Answer) != 0 {
				t.Errorf("answer %v, want none", r.Answer)
			}
		}},
		{"name that does not exist (compact denial)", []string{"missing.example", "A"}, func(t *testing.T, r *digResult) {
			// RFC 9824: the server says NOERROR with an NSEC at the name
			// listing NXNAME; Unbound 1.17 predates it and passes on
			// NOERROR/NODATA, validated.
			validated(t, r, "NOERROR")
			if len(r.Answer) != 0 {
				t.Errorf("answer %v, want none", r.Answer)
			}
		}},
		{"wildcard", []string{"anything.wild.example", "A"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if got := data(r.Answer, "A"); !slices.Equal(got, []string{"192.0.2.80"}) {
				t.Errorf("A = %v, want [192.0.2.80]", got)
			}
		}},
		{"wildcard NODATA", []string{"anything.wild.example", "MX"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if len(r.Answer) != 0 {
				t.Errorf("answer %v, want none", r.Answer)
			}
		}},
		{"empty non-terminal", []string{"b.example", "A"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if len(r.Answer) != 0 {
				t.Errorf("answer %v, want none", r.Answer)
			}
		}},
		{"CNAME to a name that does not exist", []string{"dangling.example", "A"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if !slices.Equal(data(r.Answer, "CNAME"), []string{"nowhere.example."}) || len(data(r.Answer, "A")) != 0 {
				t.Errorf("answer %v, want the CNAME alone", r.Answer)
			}
		}},
		{"CNAME", []string{"alias.example", "A"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if !slices.Equal(data(r.Answer, "CNAME"), []string{"www.example."}) || !slices.Equal(data(r.Answer, "A"), []string{"192.0.2.10"}) {
				t.Errorf("answer %v, want the CNAME and www's A", r.Answer)
			}
		}},
		{"secure delegation", []string{"host.secure.example", "A"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if got := data(r.Answer, "A"); !slices.Equal(got, []string{"192.0.2.53"}) {
				t.Errorf("A = %v, want [192.0.2.53]", got)
			}
		}},
		{"secure delegation, NODATA in the child", []string{"host.secure.example", "TXT"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
		}},
		{"DS of the signed child", []string{"secure.example", "DS"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if len(data(r.Answer, "DS")) != 1 {
				t.Errorf("answer %v, want the DS", r.Answer)
			}
		}},
		{"no DS for the unsigned child", []string{"insecure.example", "DS"}, func(t *testing.T, r *digResult) {
			validated(t, r, "NOERROR")
			if len(r.Answer) != 0 {
				t.Errorf("answer %v, want none", r.Answer)
			}
		}},
		{"insecure delegation", []string{"host.insecure.example", "A"}, func(t *testing.T, r *digResult) {
			// The parent proves there is no DS: the answer is insecure,
			// not bogus.
			if r.Status != "NOERROR" || r.hasFlag("ad") {
				t.Errorf("status %s flags %v, want NOERROR without ad (insecure)\n%s", r.Status, r.Flags, r.Raw)
			}
			if got := data(r.Answer, "A"); !slices.Equal(got, []string{"192.0.2.54"}) {
				t.Errorf("A = %v, want [192.0.2.54]", got)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := u.dig(t, c.query...)
			t.Logf("%s: %s %v, answer %v", strings.Join(c.query, " "), r.Status, r.Flags, r.Answer)
			c.check(t, r)
		})
	}
	if t.Failed() {
		return
	}

	// The pool answer straight from Meridian, for a client subnet:
	// signed.
	r := m.mustDig(t, "+dnssec", "+subnet=203.0.113.0/24", "pool.example", "A")
	if got := data(r.Answer, "A"); len(got) != 2 || !strings.HasPrefix(got[0], "198.51.100.2") || len(data(r.Answer, "RRSIG")) != 1 {
		t.Errorf("pool with ECS from Meridian: answer %v, want west's two addresses and their RRSIG", r.Answer)
	}

	// BIND's validator as well: delv asks Meridian itself, with the
	// parent's DS as its trust anchor, and validates every answer.
	t.Run("delv", func(t *testing.T) {
		ds := dsData(t, anchor)[0]
		f := strings.Fields(ds)
		anchorFile := filepath.Join(dir, "delv-anchor.conf")
		conf := fmt.Sprintf("trust-anchors {\n  example. static-ds %s %s %s \"%s\";\n};\n", f[0], f[1], f[2], f[3])
		if err := os.WriteFile(anchorFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ name, qtype, want string }{
			{"www.example.", "A", "; fully validated"},
			{"pool.example.", "A", "; fully validated"},
			{"alias.example.", "A", "; fully validated"},
			{"anything.wild.example.", "A", "; fully validated"},
			{"text.example.", "A", "; negative response, fully validated"},
			{"missing.example.", "A", "; negative response, fully validated"},
			{"host.secure.example.", "A", "; fully validated"},
			{"host.insecure.example.", "A", "; unsigned answer"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := exec.CommandContext(ctx, "delv", "@127.0.0.1", "-p", m.port, "-a", anchorFile, "+root=example.", c.name, c.qtype).CombinedOutput()
			cancel()
			lines := strings.SplitN(string(out), "\n", 3)
			t.Logf("delv %s %s: %s", c.name, c.qtype, strings.Join(lines[:min(2, len(lines))], " "))
			if err != nil || !strings.Contains(string(out), c.want) {
				t.Errorf("delv %s %s: %v, want %q in:\n%s", c.name, c.qtype, err, c.want, out)
			}
		}
	})

	t.Run("secure referral", func(t *testing.T) {
		// A zone served elsewhere: the resolvers above never follow a
		// referral, so check this one here: the DS and its RRSIG in
		// authority, signed by the parent's key, and the glue.
		c := &dns.Client{Net: "tcp", Timeout: 2 * time.Second}
		q := new(dns.Msg)
		q.SetQuestion("example.", dns.TypeDNSKEY)
		q.SetEdns0(1232, true)
		r, _, err := c.Exchange(q, "127.0.0.1:"+m.port)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[uint16]*dns.DNSKEY{}
		for _, rr := range r.Answer {
			if k, ok := rr.(*dns.DNSKEY); ok {
				keys[k.KeyTag()] = k
			}
		}
		q = new(dns.Msg)
		q.SetQuestion("host.remote.example.", dns.TypeA)
		q.RecursionDesired = false
		q.SetEdns0(1232, true)
		if r, _, err = c.Exchange(q, "127.0.0.1:"+m.port); err != nil {
			t.Fatal(err)
		}
		if r.Rcode != dns.RcodeSuccess || r.Authoritative || len(r.Answer) != 0 {
			t.Fatalf("rcode %s AA %v answer %v, want a referral\n%v", dns.RcodeToString[r.Rcode], r.Authoritative, r.Answer, r)
		}
		var ds []dns.RR
		var sig *dns.RRSIG
		ns := 0
		for _, rr := range r.Ns {
			switch rr := rr.(type) {
			case *dns.DS:
				ds = append(ds, rr)
			case *dns.RRSIG:
				if rr.TypeCovered == dns.TypeDS {
					sig = rr
				}
			case *dns.NS:
				ns++
			}
		}
		if ns != 1 || len(ds) != 1 || sig == nil {
			t.Fatalf("authority %v, want the NS, the DS and its RRSIG", r.Ns)
		}
		if ds[0].(*dns.DS).KeyTag != remoteKey.Tag() {
			t.Errorf("DS %v, want the one of key %d", ds[0], remoteKey.Tag())
		}
		if k := keys[sig.KeyTag]; k == nil || sig.Verify(k, ds) != nil || !sig.ValidityPeriod(time.Now()) {
			t.Errorf("RRSIG %v does not verify with the parent's DNSKEY %v", sig, keys)
		}
		if got := answerA(&dns.Msg{Answer: r.Extra}); !slices.Equal(got, []string{"192.0.2.99"}) {
			t.Errorf("glue %v, want 192.0.2.99", r.Extra)
		}
	})

	base := m.httpBase(t)
	// waitRRs waits until Meridian serves n records of type qtype at name.
	waitRRs := func(t *testing.T, name string, qtype uint16, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			q := new(dns.Msg)
			q.SetQuestion(name, qtype)
			r, _, err := (&dns.Client{Net: "tcp", Timeout: 2 * time.Second}).Exchange(q, "127.0.0.1:"+m.port)
			got := -1
			if err == nil {
				got = len(r.Answer)
			}
			if got == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s %s: %d records after 10s, want %d (%v)", name, dns.TypeToString[qtype], got, n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	keys := func(args ...string) string {
		return runMeridian(t, append([]string{"keys", "rollover"}, append(args, "--dir", keyDir, "--zone", "secure.example.")...)...)
	}
	t.Run("rollovers of the child's keys", func(t *testing.T) {
		// The child's keys are made within the second; finish tells the
		// old key from the new by the second it was made.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))

		// ZSK: both keys sign, so a resolver that holds the old DNSKEY
		// RRset validates the new answers.
		keys("start", "--zsk")
		waitRRs(t, "secure.example.", dns.TypeDNSKEY, 3)
		validated(t, u.dig(t, "host.secure.example", "MX"), "NOERROR")
		keys("finish", "--zsk", "--min-age", "0")
		waitRRs(t, "secure.example.", dns.TypeDNSKEY, 2)
		validated(t, startUnbound(t, unboundBin, m.port, anchor).dig(t, "host.secure.example", "A"), "NOERROR")

		// KSK: both sign the DNSKEY RRset while the parent takes the new
		// DS; then the old key goes, and its DS.
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		keys("start", "--ksk")
		waitRRs(t, "secure.example.", dns.TypeDNSKEY, 3)
		validated(t, startUnbound(t, unboundBin, m.port, anchor).dig(t, "host.secure.example", "A"), "NOERROR")
		both := dsData(t, runMeridian(t, "keys", "ds", "--dir", keyDir, "--zone", "secure.example."))
		if len(both) != 2 {
			t.Fatalf("keys ds during a KSK rollover: %v, want two DS", both)
		}
		dnssecZones(t, dir, both, remoteDS)
		waitRRs(t, "secure.example.", dns.TypeDS, 2)
		validated(t, startUnbound(t, unboundBin, m.port, anchor).dig(t, "host.secure.example", "A"), "NOERROR")
		keys("finish", "--ksk", "--min-age", "0")
		waitRRs(t, "secure.example.", dns.TypeDNSKEY, 2)
		dnssecZones(t, dir, dsData(t, runMeridian(t, "keys", "ds", "--dir", keyDir, "--zone", "secure.example.")), remoteDS)
		waitRRs(t, "secure.example.", dns.TypeDS, 1)
		validated(t, startUnbound(t, unboundBin, m.port, anchor).dig(t, "host.secure.example", "A"), "NOERROR")
	})

	t.Run("broken key file", func(t *testing.T) {
		// A .private file broken in place fails the reload, naming it; the
		// last good snapshot, with its keys, keeps being served.
		kfs, err := signing.ReadKeyDir(keyDir)
		if err != nil {
			t.Fatal(err)
		}
		var parentKey *signing.KeyFile
		for _, kf := range kfs {
			if kf.DNSKEY.Hdr.Name == "example." {
				parentKey = kf
			}
		}
		good, err := os.ReadFile(parentKey.PrivateFile())
		if err != nil {
			t.Fatal(err)
		}
		from := m.nextLogIndex()
		errorsBefore := metric(t, base, `meridian_reloads_total{result="error"}`)
		writeAtomic(t, parentKey.PrivateFile(), []byte("Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n"))
		m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
			e, _ := l.attrs["err"].(string)
			return l.Level == "ERROR" && strings.Contains(e, parentKey.PrivateFile())
		})
		if after := metric(t, base, `meridian_reloads_total{result="error"}`); after == errorsBefore {
			t.Errorf("meridian_reloads_total{result=\"error\"} = %s, unchanged", after)
		}
		validated(t, u.dig(t, "www.example", "AAAA"), "NOERROR")
		writeAtomic(t, parentKey.PrivateFile(), good)
		m.waitLog(t, from, 10*time.Second, func(l logLine) bool { return l.Msg == "Snapshot published" })
	})

	t.Run("child key no longer matches the DS", func(t *testing.T) {
		// New keys for secure.example. while the parent keeps the old DS:
		// added first, then the old ones removed, so that the zone never
		// lacks keys.
		old, err := signing.ReadKeyDir(keyDir)
		if err != nil {
			t.Fatal(err)
		}
		runMeridian(t, "keys", "generate", "--dir", keyDir, "--zone", "secure.example.", "--ksk")
		runMeridian(t, "keys", "generate", "--dir", keyDir, "--zone", "secure.example.", "--zsk")
		var oldTags []uint16
		for _, kf := range old {
			if kf.DNSKEY.Hdr.Name == "secure.example." {
				oldTags = append(oldTags, kf.Tag())
				os.Remove(kf.PublicFile())
				os.Remove(kf.PrivateFile())
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			tags := keyTags(t, m.port, "secure.example.")
			if len(tags) == 2 && !slices.ContainsFunc(tags, func(k uint16) bool { return slices.Contains(oldTags, k) }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("secure.example. DNSKEY tags %v, want two new ones (old %v)", tags, oldTags)
			}
			time.Sleep(50 * time.Millisecond)
		}
		// A resolver that has cached nothing: the child's DNSKEY RRset
		// does not match the DS, so its answers are bogus: SERVFAIL.
		if r := startUnbound(t, unboundBin, m.port, anchor).dig(t, "host.secure.example", "AAAA"); r.Status != "SERVFAIL" {
			t.Errorf("status %s, want SERVFAIL (DNSKEY not matching the DS)\n%s", r.Status, r.Raw)
		}
		// The parent is untouched.
		validated(t, u.dig(t, "alias.example", "AAAA"), "NOERROR")
	})

	t.Run("keys removed: the zone stays signed", func(t *testing.T) {
		// Its DS may be at the parent: a running server never serves a
		// signed zone unsigned (zones.ErrUnsigned), it keeps the last
		// signed version and says why.
		kfs, err := signing.ReadKeyDir(keyDir)
		if err != nil {
			t.Fatal(err)
		}
		from := m.nextLogIndex()
		for _, kf := range kfs {
			if kf.DNSKEY.Hdr.Name == "secure.example." {
				os.Remove(kf.PublicFile())
				os.Remove(kf.PrivateFile())
			}
		}
		m.waitLog(t, from, 10*time.Second, func(l logLine) bool {
			reason, _ := l.attrs["reason"].(string)
			return l.Level == "ERROR" && l.attrs["zone"] == "secure.example." && strings.Contains(reason, "would go unsigned")
		})
		if tags := keyTags(t, m.port, "secure.example."); len(tags) != 2 {
			t.Errorf("secure.example. DNSKEY tags %v, want the last keys still served", tags)
		}
	})

	t.Run("trust anchor of another key", func(t *testing.T) {
		other, err := signing.Generate("example.", dns.ECDSAP256SHA256, signing.FlagKSK)
		if err != nil {
			t.Fatal(err)
		}
		wrong := startUnbound(t, unboundBin, m.port, other.DS().String())
		if r := wrong.dig(t, "www.example", "A"); r.Status != "SERVFAIL" || r.hasFlag("ad") {
			t.Errorf("status %s flags %v, want SERVFAIL\n%s", r.Status, r.Flags, r.Raw)
		}
	})
	m.stop(t)
}
