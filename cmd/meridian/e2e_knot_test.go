package main

// A differential conformance test: Knot DNS (knotd) and Meridian serve the
// same zone files from testdata/conformance, get the same queries
// (corpus.txt there) and must give the same replies, field by field. Knot
// is the reference because it is a widely deployed authoritative server
// with careful RFC conformance; where it and Meridian may legitimately
// differ, knotAllowances says so, with the reason and the RFC.
//
// To extend it, add lines to corpus.txt (its format is described at its
// top) and records to the zone files; a difference that is not Meridian's
// fault goes into knotAllowances with its reason. A failure prints one
// line per differing field: the corpus line, the field, then Meridian's
// and Knot's values; allowed differences are logged with -v.
//
// knotd is required (Debian package knot; scripts/test.sh installs it):
// the test fails rather than skips without it. All traffic goes to
// 127.0.0.1 and every wait is bounded.

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/internal/logbuf"
)

// knotZone is a zone knotd loads: its origin and file name.
type knotZone struct{ origin, file string }

// conformanceZones are the zones both servers load, by origin.
var conformanceZones = []knotZone{
	{"example.", "example.zone"},
	{"child.example.", "child.zone"},
	{"other.test.", "other.zone"},
}

// knotAllowances are the differences between the servers that the RFCs
// permit, or where Knot is the one that is wrong. Each must match at least
// one difference of the corpus, so that none outlives its reason.
var knotAllowances = []knotAllowance{
	{
		name: "case of names other than the question",
		reason: "RFC 4343 section 4.1 asks only that case be preserved where it can be, and " +
			"name compression against an earlier name changes it: Knot lowercases the " +
			"zone's names and compresses against the question, Meridian keeps the case " +
			"of the zone file. Names compare case-insensitively (RFC 1034 section 3.1)",
		applies: func(c *knotCase, d knotDiff) bool { return strings.HasSuffix(d.field, ".case") },
	},
	{
		name: "Extended DNS Errors from Knot",
		reason: "RFC 8914 section 3: an EDE option may be added to any reply; Knot adds " +
			"Not Authoritative (20) to REFUSED replies, Meridian sends none",
		applies: func(c *knotCase, d knotDiff) bool {
			return d.field == "opt.options" && withoutEDE(d.knot) == d.meridian
		},
	},
	{
		name: "Knot clears CD",
		reason: "Knot is wrong: RFC 4035 section 3.1.6 says the name server side MUST copy " +
			"the CD bit from the query to the response, which Meridian does",
		applies: func(c *knotCase, d knotDiff) bool {
			return d.field == "flag.cd" && d.meridian == "true" && d.knot == "false"
		},
	},
	{
		name: "transfers refused with another rcode",
		reason: "Neither server offers transfers here. Meridian answers REFUSED, whose " +
			"definition in RFC 1035 section 4.1.1 names zone transfers as its example; Knot " +
			"answers NOTAUTH (not authorized, RFC 8945) without an ACL, and NOTIMP for AXFR " +
			"over UDP, which RFC 5936 section 4.2 leaves undefined",
		applies: func(c *knotCase, d knotDiff) bool {
			return (c.q.qtype == dns.TypeAXFR || c.q.qtype == dns.TypeIXFR) && c.q.raw == nil &&
				d.field == "rcode" && d.meridian == "REFUSED" && (d.knot == "NOTAUTH" || d.knot == "NOTIMP")
		},
	},
	{
		name: "NOTIFY and UPDATE: not implemented, or not authorized",
		reason: "Meridian implements neither, and NOTIMP is the rcode for an opcode a server " +
			"does not support (RFC 1035 section 4.1.1, RFC 1996 section 3.2, RFC 2136 " +
			"section 3.8); Knot implements both and refuses them with NOTAUTH for want of an ACL",
		applies: func(c *knotCase, d knotDiff) bool {
			return (c.q.opcode == dns.OpcodeNotify || c.q.opcode == dns.OpcodeUpdate) &&
				d.field == "rcode" && d.meridian == "NOTIMP" && d.knot == "NOTAUTH"
		},
	},
	{
		name: "malformed queries: FORMERR or silence",
		reason: "Knot drops a query whose header or question it cannot parse; Meridian " +
			"answers FORMERR (RFC 1035 section 4.1.1). No RFC requires either",
		applies: func(c *knotCase, d knotDiff) bool {
			return d.field == "reply" && strings.HasPrefix(d.meridian, "FORMERR") && d.knot == "none"
		},
	},
	{
		name: "OPT with a non-root owner",
		reason: "RFC 6891 section 6.1.2: the owner MUST be the root; Meridian answers such a " +
			"query FORMERR, Knot ignores the owner. No rcode is prescribed for it",
		applies: func(c *knotCase, d knotDiff) bool { return c.q.raw != nil && c.q.name == "opt-owner" },
	},
	{
		name: "bytes after the message",
		reason: "Knot answers FORMERR to a UDP query with bytes after its counted records; " +
			"Meridian answers the query. RFC 1035 section 4.1 defines the message by its " +
			"counts and says nothing of what follows",
		applies: func(c *knotCase, d knotDiff) bool { return c.q.raw != nil && c.q.name == "trailing" },
	},
	{
		name: "Knot's FORMERR to an EDNS buffer size of 1",
		reason: "Knot is wrong: RFC 6891 section 6.2.5 says sizes below 512 MUST be treated " +
			"as 512, which Meridian does; Knot answers FORMERR without an OPT to size 1 " +
			"(not to 0, 2 or 511)",
		applies: func(c *knotCase, d knotDiff) bool {
			return c.q.raw == nil && c.q.edns && c.q.bufsize < 512 &&
				c.k.fields["rcode"] == "FORMERR" && c.m.fields["rcode"] == "NOERROR"
		},
	},
	{
		name: "QTYPE 0",
		reason: "Type 0 is reserved (RFC 6895 section 3.1) and no RFC defines the reply to it: " +
			"Knot answers NOTIMP, Meridian NODATA as for any type the name lacks",
		applies: func(c *knotCase, d knotDiff) bool { return c.q.raw == nil && c.q.qtype == 0 },
	},
	{
		name: "QTYPE NXNAME",
		reason: "RFC 9824 section 3.5 makes NXNAME (128) a meta-type that is never asked " +
			"for: Meridian answers a query for it FORMERR; Knot 3.2 predates the RFC and " +
			"answers NODATA as for any type the name lacks",
		applies: func(c *knotCase, d knotDiff) bool {
			return c.q.raw == nil && c.q.qtype == dns.TypeNXNAME && c.m.fields["rcode"] == "FORMERR"
		},
	},
	{
		name: "QCLASS ANY",
		reason: "Meridian refuses every class but IN (REFUSED, RFC 1035 section 4.1.1); Knot " +
			"answers QCLASS * (RFC 1035 section 3.2.5) from its IN data. Either is permitted",
		applies: func(c *knotCase, d knotDiff) bool {
			return c.q.raw == nil && c.q.qclass == dns.ClassANY && c.m.fields["rcode"] == "REFUSED"
		},
	},
}

// withoutEDE removes Extended DNS Error options (code 15) from a summary
// of options.
func withoutEDE(opts string) string {
	var keep []string
	for _, o := range strings.Fields(strings.Trim(opts, "[]")) {
		if !strings.HasPrefix(o, "15:") {
			keep = append(keep, o)
		}
	}
	return "[" + strings.Join(keep, " ") + "]"
}

// TestE2EKnotConformance sends every query of the corpus to knotd and to
// Meridian, both serving the conformance zones, and reports each field in
// which the replies differ.
func TestE2EKnotConformance(t *testing.T) {
	knotd := requireKnotd(t)
	src := filepath.Join("testdata", "conformance")
	corpus, err := readCorpus(filepath.Join(src, "corpus.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(corpus) < 150 {
		t.Fatalf("corpus has %d queries, want at least 150", len(corpus))
	}
	zoneDir := t.TempDir()
	args := []string{"--listen", "127.0.0.1:0"}
	for _, z := range conformanceZones {
		b, err := os.ReadFile(filepath.Join(src, z.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(zoneDir, z.file), b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--zone-file", filepath.Join(zoneDir, z.file))
	}
	k := startKnot(t, knotd, knotOptions{zoneDir: zoneDir, zones: conformanceZones})
	m := startMeridian(t, zoneDir, nil, args...)

	cases := make([]*knotCase, len(corpus))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, q := range corpus {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cases[i] = &knotCase{q, exchangeRaw(q, "127.0.0.1:"+m.port), exchangeRaw(q, "127.0.0.1:"+k.port)}
		})
	}
	wg.Wait()

	select {
	case <-k.done:
		t.Fatalf("knotd exited during the corpus:\n%s", k.logs.String())
	default:
	}
	used := make([]int, len(knotAllowances))
	differing, silent := 0, 0
	for _, c := range cases {
		q := c.q
		var failed bool
		for _, d := range diffReplies(c.m, c.k) {
			if a := allowed(c, d); a >= 0 {
				used[a]++
				t.Logf("%s: %s (allowed: %s)", q, d, knotAllowances[a].name)
				continue
			}
			failed = true
			t.Errorf("%s: %s", q, d)
		}
		if failed {
			differing++
		}
		if c.k.fields["reply"] == "none" {
			silent++
		}
	}
	// A server that stopped answering would make both agree on silence.
	if silent > len(corpus)/10 {
		t.Errorf("knotd did not reply to %d of %d queries: is it serving?", silent, len(corpus))
	}
	for i, a := range knotAllowances {
		if used[i] == 0 {
			t.Errorf("allowance %q matched no difference: remove it", a.name)
		}
	}
	if differing > 0 {
		t.Errorf("%d of %d queries differ between Meridian and Knot (one line per field above: meridian=..., knot=...)", differing, len(corpus))
	}
}

// knotAllowance is a permitted difference.
type knotAllowance struct {
	name    string
	reason  string
	applies func(c *knotCase, d knotDiff) bool
}

// knotCase is a query and the replies of both servers.
type knotCase struct {
	q    *corpusQuery
	m, k *replySummary // Meridian's and Knot's
}

func allowed(c *knotCase, d knotDiff) int {
	for i, a := range knotAllowances {
		if a.applies(c, d) {
			return i
		}
	}
	return -1
}

// requireKnotd returns the path of knotd, failing the test when it is not
// installed.
func requireKnotd(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("knotd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/knotd"); err == nil {
		return "/usr/sbin/knotd"
	}
	t.Fatal("knotd not found on PATH or at /usr/sbin/knotd: install Debian's knot package (scripts/test.sh does)")
	return ""
}

// knot is a running knotd.
type knot struct {
	cmd   *exec.Cmd
	logs  *logbuf.Buffer
	port  string
	done  chan struct{}
	zones []knotZone
}

// knotOptions say what a knotd serves.
type knotOptions struct {
	zoneDir string
	zones   []knotZone
	// cookieSecret, when set, loads mod-cookies with this secret (32 hex
	// digits), which then answers every query's cookies.
	cookieSecret string
}

// startKnot starts knotd in the foreground on a free port of 127.0.0.1,
// serving opts.zones from opts.zoneDir, and waits until it answers their
// SOA queries. It is killed at the end of the test.
func startKnot(t *testing.T, knotd string, opts knotOptions) *knot {
	t.Helper()
	var lastLog string
	for try := 0; try < 3; try++ {
		k := tryStartKnot(t, knotd, opts)
		if k.waitSOA(10 * time.Second) {
			return k
		}
		lastLog = k.logs.String()
		k.stop()
	}
	t.Fatalf("knotd did not answer a SOA query on three ports; its last log:\n%s", lastLog)
	return nil
}

// knotServerConf returns the server, control, database and log sections
// of a knot.conf for a knotd kept in dir and listening on
// 127.0.0.1:port, with extra lines in its server section.
func knotServerConf(t *testing.T, dir, port, extra string) string {
	t.Helper()
	// knotd drops privileges to server.user after binding; name the user
	// we are, which also works when that is root.
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`server:
    rundir: %[1]s
    user: %[2]s:%[3]s
    listen: 127.0.0.1@%[4]s
%[5]scontrol:
    listen: %[1]s/knot.sock
database:
    storage: %[1]s/db
log:
  - target: stderr
    any: info
`, dir, u.Username, g.Name, port, extra)
}

// knotMeridianRemote returns the key and remote sections of a knot.conf
// naming Meridian at 127.0.0.1:port, reached with TSIG key xfr-key.
func knotMeridianRemote(port, secret string) string {
	return fmt.Sprintf(`key:
  - id: xfr-key
    algorithm: hmac-sha256
    secret: %s
remote:
  - id: meridian
    address: 127.0.0.1@%s
    key: xfr-key
`, secret, port)
}

func tryStartKnot(t *testing.T, knotd string, opts knotOptions) *knot {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	var zones strings.Builder
	for _, z := range opts.zones {
		fmt.Fprintf(&zones, "  - domain: %s\n    file: %s\n", z.origin, z.file)
	}
	var module, global string
	if opts.cookieSecret != "" {
		module = fmt.Sprintf("mod-cookies:\n  - id: shared\n    secret: 0x%s\n", opts.cookieSecret)
		global = "    global-module: mod-cookies/shared\n"
	}
	// No acl: Knot then refuses transfers, NOTIFY and UPDATE. No NSID and
	// no CH TXT identity or version (Knot's defaults are the host name and
	// its version), no modules (no cookies, no RRL): as Meridian is run.
	conf := knotServerConf(t, dir, port, "    nsid: \"\"\n    identity: \"\"\n    version: \"\"\n") + fmt.Sprintf(`%[3]stemplate:
  - id: default
    storage: %[1]s
    zonefile-load: whole
    zonefile-sync: -1
    journal-content: none
    semantic-checks: off
%[4]szone:
%[2]s`, opts.zoneDir, zones.String(), module, global)
	confPath := filepath.Join(dir, "knot.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	k := &knot{logs: &logbuf.Buffer{}, port: port, done: make(chan struct{}), zones: opts.zones}
	k.cmd = exec.Command(knotd, "--config", confPath)
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start knotd: %v", err)
	}
	go func() {
		k.cmd.Wait()
		close(k.done)
	}()
	t.Cleanup(func() {
		k.stop()
		if t.Failed() {
			t.Logf("knotd log:\n%s", k.logs.String())
		}
	})
	return k
}

func (k *knot) stop() {
	select {
	case <-k.done:
	default:
		k.cmd.Process.Kill()
		<-k.done
	}
}

// waitSOA reports whether knotd answers the SOA query of every zone with
// NOERROR within timeout.
func (k *knot) waitSOA(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	for _, z := range k.zones {
		for {
			q := new(dns.Msg)
			q.SetQuestion(z.origin, dns.TypeSOA)
			r, _, err := c.Exchange(q, "127.0.0.1:"+k.port)
			if err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
				break
			}
			select {
			case <-k.done:
				return false
			default:
			}
			if time.Now().After(deadline) {
				return false
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return true
}

// freePort returns a port of 127.0.0.1 that is free for both UDP and TCP
// at the time of the call.
func freePort(t *testing.T) string {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err != nil {
			continue
		}
		ln.Close()
		_, port, _ := net.SplitHostPort(addr)
		return port
	}
	t.Fatal("no port of 127.0.0.1 free for both UDP and TCP")
	return ""
}

// corpusQuery is one query of the corpus. The format of corpus.txt is
// described at its top.
type corpusQuery struct {
	line   int
	text   string // the line, after brace expansion
	name   string
	qtype  uint16
	qclass uint16
	tcp    bool
	raw    []byte // a hand-built packet, sent as is; nil for built queries

	rd, cd, ad bool
	edns       bool
	ednsVer    uint8
	bufsize    uint16
	do         bool
	options    []dns.EDNS0
	opcode     int
	qdcount    int // -1: one question
}

func (q *corpusQuery) String() string { return fmt.Sprintf("corpus.txt:%d %q", q.line, q.text) }

// readCorpus reads the query corpus.
func readCorpus(path string) ([]*corpusQuery, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []*corpusQuery
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if strings.TrimSpace(line) == "" {
			continue
		}
		for _, text := range expandBraces(strings.Join(strings.Fields(line), " ")) {
			q, err := parseCorpusLine(text)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %q: %v", path, n, text, err)
			}
			q.line = n
			if q.text == "" {
				q.text = text
			}
			out = append(out, q)
		}
	}
	return out, sc.Err()
}

// expandBraces expands the first {a,b,...} group of s, recursively, the
// way a shell does. An empty alternative expands to nothing.
func expandBraces(s string) []string {
	open := strings.IndexByte(s, '{')
	if open < 0 {
		return []string{strings.Join(strings.Fields(s), " ")}
	}
	end := strings.IndexByte(s[open:], '}')
	if end < 0 {
		return []string{s}
	}
	end += open
	var out []string
	for _, alt := range strings.Split(s[open+1:end], ",") {
		out = append(out, expandBraces(s[:open]+alt+s[end+1:])...)
	}
	return out
}

func parseCorpusLine(text string) (*corpusQuery, error) {
	q := &corpusQuery{qclass: dns.ClassINET, edns: true, bufsize: 1232, qdcount: -1}
	var words []string
	for _, f := range strings.Fields(text) {
		if !strings.HasPrefix(f, "+") {
			words = append(words, f)
			continue
		}
		if err := q.option(f[1:]); err != nil {
			return nil, err
		}
	}
	if len(words) > 0 && words[0] == "raw" {
		if len(words) < 3 {
			return nil, fmt.Errorf("raw wants a label and hex bytes")
		}
		b, err := hex.DecodeString(strings.Join(words[2:], ""))
		if err != nil {
			return nil, err
		}
		q.name, q.raw = words[1], b
		q.text = "raw " + words[1] // the bytes are on the line of the corpus
		if q.tcp {
			q.text += " +tcp"
		}
		return q, nil
	}
	if len(words) < 2 || len(words) > 3 {
		return nil, fmt.Errorf("want NAME TYPE [CLASS] [+OPTION...]")
	}
	if _, ok := dns.IsDomainName(words[0]); !ok || !dns.IsFqdn(words[0]) {
		return nil, fmt.Errorf("%q is not an absolute domain name", words[0])
	}
	q.name = words[0]
	var ok bool
	if q.qtype, ok = parseCode(words[1], dns.StringToType, "TYPE"); !ok {
		return nil, fmt.Errorf("unknown type %q", words[1])
	}
	if len(words) == 3 {
		if q.qclass, ok = parseCode(words[2], dns.StringToClass, "CLASS"); !ok {
			return nil, fmt.Errorf("unknown class %q", words[2])
		}
	}
	return q, nil
}

func parseCode(s string, known map[string]uint16, prefix string) (uint16, bool) {
	if v, ok := known[strings.ToUpper(s)]; ok {
		return v, true
	}
	if n, ok := strings.CutPrefix(strings.ToUpper(s), prefix); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		return uint16(v), err == nil
	}
	return 0, false
}

func (q *corpusQuery) option(opt string) error {
	key, val, hasVal := strings.Cut(opt, "=")
	num := func(bits int) (uint64, error) {
		if !hasVal {
			return 0, fmt.Errorf("+%s wants a value", key)
		}
		return strconv.ParseUint(val, 0, bits)
	}
	switch key {
	case "tcp":
		q.tcp = true
	case "rd":
		q.rd = true
	case "cd":
		q.cd = true
	case "ad":
		q.ad = true
	case "noedns":
		q.edns = false
	case "do":
		q.do = true
	case "nsid":
		q.options = append(q.options, &dns.EDNS0_NSID{Code: dns.EDNS0NSID})
	case "ednsopt":
		code, data, _ := strings.Cut(val, ":")
		c, err := strconv.ParseUint(code, 10, 16)
		if err != nil {
			return err
		}
		b, err := hex.DecodeString(data)
		if err != nil {
			return err
		}
		q.options = append(q.options, &dns.EDNS0_LOCAL{Code: uint16(c), Data: b})
	case "bufsize":
		v, err := num(16)
		q.bufsize = uint16(v)
		return err
	case "ednsver":
		v, err := num(8)
		q.ednsVer = uint8(v)
		return err
	case "opcode":
		v, err := num(4)
		q.opcode = int(v)
		return err
	case "qdcount":
		v, err := num(16)
		q.qdcount = int(v)
		return err
	default:
		return fmt.Errorf("unknown option +%s", key)
	}
	return nil
}

// wire returns the packet to send for q.
func (q *corpusQuery) wire() ([]byte, error) {
	if q.raw != nil {
		return q.raw, nil
	}
	m := &dns.Msg{MsgHdr: dns.MsgHdr{Id: dns.Id(), Opcode: q.opcode, RecursionDesired: q.rd,
		CheckingDisabled: q.cd, AuthenticatedData: q.ad}}
	m.Question = []dns.Question{{Name: q.name, Qtype: q.qtype, Qclass: q.qclass}}
	switch q.qdcount {
	case 0:
		m.Question = nil
	case -1, 1:
	default:
		for range q.qdcount - 1 {
			m.Question = append(m.Question, m.Question[0])
		}
	}
	if q.edns {
		opt := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
		opt.SetUDPSize(q.bufsize)
		opt.SetVersion(q.ednsVer)
		opt.SetDo(q.do)
		opt.Option = q.options
		m.Extra = append(m.Extra, opt)
	}
	return m.Pack()
}

// exchangeRaw sends q to addr over UDP or TCP and summarises the reply.
func exchangeRaw(q *corpusQuery, addr string) *replySummary {
	pkt, err := q.wire()
	if err != nil {
		return &replySummary{err: "cannot pack the query: " + err.Error()}
	}
	network := "udp"
	if q.tcp {
		network = "tcp"
	}
	c, err := net.DialTimeout(network, addr, time.Second)
	if err != nil {
		return &replySummary{err: err.Error()}
	}
	defer c.Close()
	// Servers may rightly stay silent (a packet shorter than a header):
	// the wait for nothing is kept short.
	c.SetDeadline(time.Now().Add(1500 * time.Millisecond))
	var reply []byte
	if q.tcp {
		if _, err := c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(pkt))), pkt...)); err != nil {
			return &replySummary{err: err.Error()}
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return noReply(err)
		}
		reply = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, reply); err != nil {
			return &replySummary{err: "short TCP reply: " + err.Error()}
		}
	} else {
		if _, err := c.Write(pkt); err != nil {
			return &replySummary{err: err.Error()}
		}
		buf := make([]byte, 65535)
		n, err := c.Read(buf)
		if err != nil {
			return noReply(err)
		}
		reply = buf[:n]
	}
	return summarise(pkt, reply)
}

func noReply(err error) *replySummary {
	if ne, ok := err.(net.Error); ok && ne.Timeout() || err == io.EOF {
		return &replySummary{fields: map[string]string{"reply": "none"}}
	}
	return &replySummary{err: err.Error()}
}

// replySummary is a reply broken into the fields compared: scalars, and
// sections as sorted record strings.
type replySummary struct {
	err      string // the exchange failed: compared as such
	fields   map[string]string
	sections map[string][]string
}

// summarise breaks reply to query into fields.
func summarise(query, reply []byte) *replySummary {
	s := &replySummary{fields: map[string]string{"reply": "message"}, sections: map[string][]string{}}
	m := new(dns.Msg)
	if err := m.Unpack(reply); err != nil {
		s.fields["reply"] = "unparseable: " + err.Error()
		return s
	}
	f := s.fields
	if len(query) >= 2 && len(reply) >= 2 && !slices.Equal(query[:2], reply[:2]) {
		f["id"] = "differs from the query's"
	}
	f["opcode"] = dns.OpcodeToString[m.Opcode]
	f["rcode"] = rcodeName(m.Rcode)
	for _, b := range []struct {
		name string
		v    bool
	}{{"qr", m.Response}, {"aa", m.Authoritative}, {"tc", m.Truncated}, {"rd", m.RecursionDesired},
		{"ra", m.RecursionAvailable}, {"z", m.Zero}, {"ad", m.AuthenticatedData}, {"cd", m.CheckingDisabled}} {
		f["flag."+b.name] = strconv.FormatBool(b.v)
	}
	var qs []string
	for _, q := range m.Question {
		// %q keeps the case and shows escapes: 0x20 case must come back as sent.
		qs = append(qs, fmt.Sprintf("%q %s %s", q.Name, dns.Type(q.Qtype), dns.Class(q.Qclass)))
	}
	f["question"] = "[" + strings.Join(qs, ", ") + "]"

	// Within the answer, the CNAME chain is ordered (RFC 1034 section
	// 4.3.2 step 3a); the rest of every section is a set.
	var chain []string
	for _, rr := range m.Answer {
		if t := rr.Header().Rrtype; t == dns.TypeCNAME || t == dns.TypeDNAME {
			chain = append(chain, rr.Header().Name+" -> "+rrTarget(rr))
		}
	}
	if len(chain) > 1 {
		f["answer.chain-order"] = strings.Join(chain, ", ")
	}
	s.sections["answer"] = rrStrings(m.Answer)
	s.sections["authority"] = rrStrings(m.Ns)
	var extra []dns.RR
	f["opt"] = "absent"
	for _, rr := range m.Extra {
		opt, ok := rr.(*dns.OPT)
		if !ok {
			extra = append(extra, rr)
			continue
		}
		f["opt"] = "present"
		if opt.Hdr.Name != "." {
			f["opt.owner"] = opt.Hdr.Name
		}
		f["opt.version"] = strconv.Itoa(int(opt.Version()))
		f["opt.do"] = strconv.FormatBool(opt.Do())
		f["opt.z"] = strconv.Itoa(int(opt.Z()))
		f["opt.udpsize"] = strconv.Itoa(int(opt.UDPSize()))
		f["opt.options"] = optionList(opt)
	}
	s.sections["additional"] = rrStrings(extra)
	return s
}

// optionList shows the options of opt as they are on the wire, code:hex.
func optionList(opt *dns.OPT) string {
	buf := make([]byte, dns.MaxMsgSize)
	n, err := dns.PackRR(opt, buf, 0, nil, false)
	if err != nil {
		return "unpackable: " + err.Error()
	}
	rdata := buf[11:n] // after root owner, type, class, TTL and RDLENGTH
	var opts []string
	for len(rdata) >= 4 {
		code, l := binary.BigEndian.Uint16(rdata), int(binary.BigEndian.Uint16(rdata[2:]))
		l = min(l, len(rdata)-4)
		opts = append(opts, fmt.Sprintf("%d:%x", code, rdata[4:4+l]))
		rdata = rdata[4+l:]
	}
	return "[" + strings.Join(opts, " ") + "]"
}

func rcodeName(r int) string {
	if n, ok := dns.RcodeToString[r]; ok {
		return n
	}
	return "RCODE" + strconv.Itoa(r)
}

func rrTarget(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.CNAME:
		return rr.Target
	case *dns.DNAME:
		return rr.Target
	}
	return ""
}

func rrStrings(rrs []dns.RR) []string {
	out := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		out = append(out, strings.Join(strings.Fields(rr.String()), " "))
	}
	slices.Sort(out)
	return out
}

// knotDiff is one field in which the replies differ. For a section, it is
// one record present in one reply only.
type knotDiff struct {
	field          string
	meridian, knot string // "" for a record absent from that reply
}

func (d knotDiff) String() string {
	show := func(v string) string {
		if v == "" {
			return "(absent)"
		}
		return v
	}
	return fmt.Sprintf("%s: meridian=%s knot=%s", d.field, show(d.meridian), show(d.knot))
}

// diffReplies lists the fields in which the replies differ, in a stable
// order: scalars by name, then the sections. When only one server replied,
// or only one reply has an OPT, that is the one difference reported.
func diffReplies(m, k *replySummary) []knotDiff {
	if m.err != "" || k.err != "" {
		if m.err == k.err {
			return nil
		}
		return []knotDiff{{field: "exchange", meridian: "error " + m.err, knot: "error " + k.err}}
	}
	if m.fields["reply"] != k.fields["reply"] {
		return []knotDiff{{field: "reply", meridian: m.brief(), knot: k.brief()}}
	}
	var out []knotDiff
	optDiffers := m.fields["opt"] != k.fields["opt"]
	if optDiffers {
		out = append(out, knotDiff{field: "opt", meridian: m.optBrief(), knot: k.optBrief()})
	}
	keys := map[string]bool{}
	for key := range m.fields {
		keys[key] = true
	}
	for key := range k.fields {
		keys[key] = true
	}
	for _, key := range slices.Sorted(maps.Keys(keys)) {
		if key == "opt" || optDiffers && strings.HasPrefix(key, "opt.") {
			continue
		}
		if m.fields[key] != k.fields[key] {
			out = append(out, knotDiff{field: key, meridian: m.fields[key], knot: k.fields[key]})
		}
	}
	for _, sec := range []string{"answer", "authority", "additional"} {
		out = append(out, diffSection(sec, m.sections[sec], k.sections[sec])...)
	}
	return out
}

// diffSection compares two sections as multisets of records. A record
// that differs from one in the other reply only in the case of its names
// is reported once, as field sec+".case".
func diffSection(sec string, m, k []string) []knotDiff {
	onlyM, onlyK := slices.Clone(m), slices.Clone(k)
	for i := 0; i < len(onlyM); i++ {
		if j := slices.Index(onlyK, onlyM[i]); j >= 0 {
			onlyM, onlyK = slices.Delete(onlyM, i, i+1), slices.Delete(onlyK, j, j+1)
			i--
		}
	}
	var out []knotDiff
	for _, rr := range onlyM {
		j := slices.IndexFunc(onlyK, func(o string) bool { return strings.EqualFold(o, rr) })
		if j >= 0 {
			out = append(out, knotDiff{field: sec + ".case", meridian: rr, knot: onlyK[j]})
			onlyK = slices.Delete(onlyK, j, j+1)
			continue
		}
		out = append(out, knotDiff{field: sec, meridian: rr})
	}
	for _, rr := range onlyK {
		out = append(out, knotDiff{field: sec, knot: rr})
	}
	return out
}

// brief is a one-line description of a reply, or "none".
func (s *replySummary) brief() string {
	if s.fields["reply"] != "message" {
		return s.fields["reply"]
	}
	return fmt.Sprintf("%s with %d+%d+%d records, OPT %s", s.fields["rcode"],
		len(s.sections["answer"]), len(s.sections["authority"]), len(s.sections["additional"]), s.fields["opt"])
}

// optBrief is a one-line description of the reply's OPT record.
func (s *replySummary) optBrief() string {
	if s.fields["opt"] != "present" {
		return "absent"
	}
	return fmt.Sprintf("present (version %s, DO %s, Z %s, UDP size %s, options %s)", s.fields["opt.version"],
		s.fields["opt.do"], s.fields["opt.z"], s.fields["opt.udpsize"], s.fields["opt.options"])
}
