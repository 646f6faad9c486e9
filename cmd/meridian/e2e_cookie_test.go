package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// cookieRE reads dig's COOKIE line: the client and server cookie in hex,
// and whether dig found its own client cookie echoed ("good").
var cookieRE = regexp.MustCompile(`; COOKIE: ([0-9a-f]{16})([0-9a-f]*)(?: \((good|bad)\))?`)

// digCookie returns the COOKIE option dig saw in the reply, as hex, and
// dig's verdict on it.
func digCookie(t *testing.T, r *digResult) (client, server, verdict string) {
	t.Helper()
	m := cookieRE.FindStringSubmatch(r.Raw)
	if m == nil {
		return "", "", ""
	}
	return m[1], m[2], m[3]
}

// writeCookieConfig writes a config file serving the example zone with
// the given cookie secrets.
func writeCookieConfig(t *testing.T, path, zone, secret string, accept ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("dns:\n  listen: [\"127.0.0.1:0\"]\n  cookies:\n    enabled: true\n")
	b.WriteString("    secret: \"" + secret + "\"\n    accept_secrets: [")
	for i, a := range accept {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("\"" + a + "\"")
	}
	b.WriteString("]\nzones:\n  files: [\"" + zone + "\"]\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestE2ECookies drives DNS cookies (RFC 7873, RFC 9018) with real dig:
// a fresh client cookie gets a server cookie dig calls good; a forged
// server cookie gets BADCOOKIE, after which dig retries with the cookie it
// was given and gets its answer; and a running server rolls its secret
// over on SIGHUP without a restart.
func TestE2ECookies(t *testing.T) {
	requireDig(t)
	dir := copyExamples(t)
	cfgPath := filepath.Join(dir, "meridian.yaml")
	const a, b = "000102030405060708090a0b0c0d0e0f", "f0e0d0c0b0a090807060504030201000"
	writeCookieConfig(t, cfgPath, "example.com.zone", a)
	m := startMeridian(t, dir, nil, "--config", cfgPath)

	r := m.mustDig(t, "www.example.com", "A", "+cookie=0123456789abcdef")
	client, server, verdict := digCookie(t, r)
	if r.Status != "NOERROR" || len(r.Answer) != 1 || client != "0123456789abcdef" || len(server) != 32 || verdict != "good" {
		t.Fatalf("first query: status %s, cookie %s %s (%s); want the answer and a 16-octet server cookie dig calls good:\n%s", r.Status, client, server, verdict, r.Raw)
	}
	if !strings.HasPrefix(server, "01000000") {
		t.Errorf("server cookie %s: want version 1 and reserved zeros first (RFC 9018)", server)
	}
	byA := client + server

	// A server cookie dig returns is valid: answered, and echoed while
	// it is recent.
	r = m.mustDig(t, "www.example.com", "A", "+cookie="+byA, "+nobadcookie")
	if _, s, _ := digCookie(t, r); r.Status != "NOERROR" || s != server {
		t.Errorf("query with the server cookie: status %s, server cookie %s; want NOERROR and %s:\n%s", r.Status, s, server, r.Raw)
	}

	forged := client + "01000000" + server[8:16] + "0000000000000000"
	r = m.mustDig(t, "www.example.com", "A", "+cookie="+forged, "+nobadcookie")
	if _, s, _ := digCookie(t, r); r.Status != "BADCOOKIE" || len(r.Answer) != 0 || len(s) != 32 {
		t.Errorf("forged server cookie: status %s, %d answers, server cookie %q; want BADCOOKIE with a fresh cookie:\n%s", r.Status, len(r.Answer), s, r.Raw)
	}
	r = m.mustDig(t, "www.example.com", "A", "+cookie="+forged)
	if r.Status != "NOERROR" || len(r.Answer) != 1 || !strings.Contains(r.Raw, "BADCOOKIE, retrying") {
		t.Errorf("dig's own retry after BADCOOKIE: status %s, %d answers; want it retried and answered:\n%s", r.Status, len(r.Answer), r.Raw)
	}
	if r = m.mustDig(t, "www.example.com", "A", "+cookie="+forged, "+nobadcookie", "+tcp"); r.Status != "NOERROR" || len(r.Answer) != 1 {
		t.Errorf("forged server cookie over TCP: status %s; want the answer (TCP proves the address)", r.Status)
	}

	// Rollover (RFC 9018 section 4.3), one SIGHUP a step.
	step := func(what string, secret string, accept ...string) {
		t.Helper()
		from := m.nextLogIndex()
		writeCookieConfig(t, cfgPath, "example.com.zone", secret, accept...)
		m.signal(t, syscall.SIGHUP)
		m.waitLog(t, from, 10*time.Second, func(l logLine) bool { return l.Msg == "DNS cookies reloaded" })
		if strings.Contains(m.logs.String(), secret) {
			t.Fatalf("%s: the secret is in the log", what)
		}
	}
	step("b accepted", a, b)
	if r = m.mustDig(t, "www.example.com", "A", "+cookie="+byA, "+nobadcookie"); r.Status != "NOERROR" {
		t.Errorf("a's cookie with b accepted: %s, want NOERROR", r.Status)
	}
	step("b makes cookies", b, a)
	r = m.mustDig(t, "www.example.com", "A", "+cookie="+byA, "+nobadcookie")
	_, byB, _ := digCookie(t, r)
	if r.Status != "NOERROR" || byB == server || len(byB) != 32 {
		t.Errorf("a's cookie once b makes them: status %s, server cookie %s; want NOERROR and a new cookie", r.Status, byB)
	}
	step("a dropped", b)
	if r = m.mustDig(t, "www.example.com", "A", "+cookie="+byA, "+nobadcookie"); r.Status != "BADCOOKIE" {
		t.Errorf("a's cookie after a is dropped: %s, want BADCOOKIE", r.Status)
	}
	if r = m.mustDig(t, "www.example.com", "A", "+cookie="+client+byB, "+nobadcookie"); r.Status != "NOERROR" {
		t.Errorf("b's cookie after a is dropped: %s, want NOERROR", r.Status)
	}

	// A broken configuration changes nothing.
	from := m.nextLogIndex()
	if err := os.WriteFile(cfgPath, []byte("dns:\n  cookies:\n    secret: \"nothex\"\nzones:\n  files: [\"example.com.zone\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.signal(t, syscall.SIGHUP)
	m.waitLog(t, from, 10*time.Second, func(l logLine) bool { return strings.HasPrefix(l.Msg, "Configuration not reloaded") })
	if r = m.mustDig(t, "www.example.com", "A", "+cookie="+client+byB, "+nobadcookie"); r.Status != "NOERROR" {
		t.Errorf("b's cookie after a bad reload: %s, want NOERROR", r.Status)
	}
}

// TestE2ECookiesWithKnot shares one cookie secret between Meridian and
// Knot (mod-cookies), as two vendors behind one anycast address do: each
// accepts the server cookies of the other (RFC 9018's point).
func TestE2ECookiesWithKnot(t *testing.T) {
	knotd := requireKnotd(t)
	dir := copyExamples(t)
	const secret = "5e5e5e5e0123456789abcdef5e5e5e5e"
	k := startKnot(t, knotd, knotOptions{zoneDir: dir, zones: []knotZone{{"example.com.", "example.com.zone"}}, cookieSecret: secret})
	cfgPath := filepath.Join(dir, "meridian.yaml")
	writeCookieConfig(t, cfgPath, "example.com.zone", secret)
	m := startMeridian(t, dir, nil, "--config", cfgPath)

	client := "8899aabbccddeeff"
	ask := func(port, cookie string) *dns.Msg {
		t.Helper()
		q := new(dns.Msg)
		q.SetQuestion("www.example.com.", dns.TypeA)
		q.SetEdns0(1232, false)
		q.IsEdns0().Option = append(q.IsEdns0().Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: cookie})
		c := &dns.Client{Timeout: 2 * time.Second}
		r, _, err := c.Exchange(q, "127.0.0.1:"+port)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cookieOf := func(r *dns.Msg) string {
		for _, o := range r.IsEdns0().Option {
			if c, ok := o.(*dns.EDNS0_COOKIE); ok {
				return c.Cookie
			}
		}
		return ""
	}

	fromKnot := cookieOf(ask(k.port, client))
	if len(fromKnot) != 48 || !strings.HasPrefix(fromKnot, client+"01000000") {
		t.Fatalf("Knot's cookie %q: want our client cookie and a version 1 server cookie", fromKnot)
	}
	r := ask(m.port, fromKnot)
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || cookieOf(r) != fromKnot {
		t.Errorf("Meridian given Knot's cookie: rcode %s, cookie %s; want the answer and Knot's cookie echoed as valid", dns.RcodeToString[r.Rcode], cookieOf(r))
	}

	fromMeridian := cookieOf(ask(m.port, client))
	if len(fromMeridian) != 48 {
		t.Fatalf("Meridian's cookie %q", fromMeridian)
	}
	if r := ask(k.port, fromMeridian); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
		t.Errorf("Knot given Meridian's cookie: rcode %s; want the answer (Knot answers BADCOOKIE to cookies it cannot verify)", dns.RcodeToString[r.Rcode])
	}
	forged := fromMeridian[:32] + "0000000000000000"
	if r := ask(k.port, forged); r.Rcode != dns.RcodeBadCookie {
		t.Errorf("Knot given a forged cookie: rcode %s, want BADCOOKIE: the check above means something", dns.RcodeToString[r.Rcode])
	}
}
