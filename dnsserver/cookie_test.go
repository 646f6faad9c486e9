package dnsserver

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSecret(t testing.TB, s string) [16]byte {
	t.Helper()
	k, err := ParseCookieSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// jarAt returns a cookie jar whose clock reads now.
func jarAt(cfg CookieConfig, now uint32) *cookieJar {
	j := newCookieJar(cfg)
	j.now = func() uint32 { return now }
	return j
}

// checkCookie runs option data through j for client and returns the
// state and the server cookie of the reply.
func checkCookie(j *cookieJar, data []byte, client string) (cookieState, []byte) {
	var c cookie
	c.parse(data)
	j.check(&c, netip.MustParseAddr(client))
	return c.state, c.out[:]
}

// TestCookieRFC9018Vector is the example of RFC 9018 appendix A.1: a
// client learning a new server cookie. Equal output shows that our
// cookies validate on every RFC 9018 server sharing the secret.
func TestCookieRFC9018Vector(t *testing.T) {
	j := jarAt(CookieConfig{Secret: mustSecret(t, "e5e973e5a6b2a43f48e7dc849e37bfcf")}, 1559731985)
	state, out := checkCookie(j, mustHex(t, "2464c4abcf10c957"), "198.51.100.100")
	if state != cookieClientOnly || hex.EncodeToString(out) != "010000005cf79f111f8130c3eee29480" {
		t.Errorf("state %s, server cookie %x; want client_only, 010000005cf79f111f8130c3eee29480", cookieStateNames[state], out)
	}
}

func TestCookieCheck(t *testing.T) {
	secret := mustSecret(t, "000102030405060708090a0b0c0d0e0f")
	old := mustSecret(t, "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
	const t0 = 1_800_000_000
	client := mustHex(t, "0123456789abcdef")
	issue := func(cfg CookieConfig, at uint32, addr string) []byte {
		_, out := checkCookie(jarAt(cfg, at), client, addr)
		return append(append([]byte{}, client...), out...)
	}
	fresh := issue(CookieConfig{Secret: secret}, t0, "192.0.2.1")
	byOld := issue(CookieConfig{Secret: old}, t0, "192.0.2.1")
	v6 := issue(CookieConfig{Secret: secret}, t0, "2001:db8::1")
	tampered := bytes.Clone(fresh)
	tampered[len(tampered)-1] ^= 1
	badVersion := bytes.Clone(fresh)
	badVersion[8] = 2

	for _, tc := range []struct {
		name   string
		cfg    CookieConfig
		now    uint32
		data   []byte
		client string
		state  cookieState
		echo   bool // the reply carries the received server cookie
	}{
		{"client cookie only", CookieConfig{Secret: secret}, t0, client, "192.0.2.1", cookieClientOnly, false},
		{"valid, recent: echoed", CookieConfig{Secret: secret}, t0 + 60, fresh, "192.0.2.1", cookieValid, true},
		{"valid, 40 minutes old: renewed", CookieConfig{Secret: secret}, t0 + 2400, fresh, "192.0.2.1", cookieValid, false},
		{"an hour and a second old", CookieConfig{Secret: secret}, t0 + 3601, fresh, "192.0.2.1", cookieInvalid, false},
		{"from a clock 5 minutes ahead", CookieConfig{Secret: secret}, t0 - 300, fresh, "192.0.2.1", cookieValid, true},
		{"from a clock 6 minutes ahead", CookieConfig{Secret: secret}, t0 - 360, fresh, "192.0.2.1", cookieInvalid, false},
		{"another client address", CookieConfig{Secret: secret}, t0, fresh, "192.0.2.2", cookieInvalid, false},
		{"IPv4-mapped address is the IPv4 address", CookieConfig{Secret: secret}, t0, fresh, "::ffff:192.0.2.1", cookieValid, true},
		{"IPv6 client", CookieConfig{Secret: secret}, t0, v6, "2001:db8::1", cookieValid, true},
		{"hash tampered", CookieConfig{Secret: secret}, t0, tampered, "192.0.2.1", cookieInvalid, false},
		{"unknown version", CookieConfig{Secret: secret}, t0, badVersion, "192.0.2.1", cookieInvalid, false},
		{"another vendor's 8-octet server cookie", CookieConfig{Secret: secret}, t0, append(bytes.Clone(client), 1, 2, 3, 4, 5, 6, 7, 8), "192.0.2.1", cookieInvalid, false},
		{"old secret not accepted", CookieConfig{Secret: secret}, t0, byOld, "192.0.2.1", cookieInvalid, false},
		{"old secret accepted during a rollover: renewed", CookieConfig{Secret: secret, Accept: [][16]byte{old}}, t0, byOld, "192.0.2.1", cookieValid, false},
		{"new secret accepted before it makes cookies", CookieConfig{Secret: old, Accept: [][16]byte{secret}}, t0, fresh, "192.0.2.1", cookieValid, false},
		{"7 octets", CookieConfig{Secret: secret}, t0, client[:7], "192.0.2.1", cookieMalformed, false},
		{"9 octets", CookieConfig{Secret: secret}, t0, append(bytes.Clone(client), 1), "192.0.2.1", cookieMalformed, false},
		{"41 octets", CookieConfig{Secret: secret}, t0, append(bytes.Clone(client), make([]byte, 33)...), "192.0.2.1", cookieMalformed, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := jarAt(tc.cfg, tc.now)
			state, out := checkCookie(j, tc.data, tc.client)
			if state != tc.state {
				t.Fatalf("state %s, want %s", cookieStateNames[state], cookieStateNames[tc.state])
			}
			if state == cookieMalformed {
				return
			}
			if echoed := len(tc.data) == 24 && bytes.Equal(out, tc.data[8:]); echoed != tc.echo {
				t.Errorf("server cookie %x echoed %v, want %v", out, echoed, tc.echo)
			}
			// Whatever came in, the cookie sent back is valid now, made
			// with the current secret, and stamped with the time.
			if got := binary.BigEndian.Uint32(out[4:8]); !tc.echo && got != tc.now {
				t.Errorf("timestamp %d, want %d", got, tc.now)
			}
			again, _ := checkCookie(jarAt(CookieConfig{Secret: tc.cfg.Secret}, tc.now), append(bytes.Clone(tc.data[:8]), out...), tc.client)
			if again != cookieValid {
				t.Errorf("the server cookie sent, %x, is %s", out, cookieStateNames[again])
			}
		})
	}
}

func cookieOpt(data []byte) *dns.EDNS0_COOKIE {
	return &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(data)}
}

// replyCookie returns the COOKIE option data of r, or nil.
func replyCookie(t testing.TB, r *dns.Msg) []byte {
	t.Helper()
	opt := r.IsEdns0()
	if opt == nil {
		return nil
	}
	for _, o := range opt.Option {
		if c, ok := o.(*dns.EDNS0_COOKIE); ok {
			return mustHex(t, c.Cookie)
		}
	}
	return nil
}

func TestCookieServer(t *testing.T) {
	s, addr := startServer(t, Config{Cookies: CookieConfig{Secret: mustSecret(t, "00112233445566778899aabbccddeeff")}}, testSnapshot(t, 1))
	client := mustHex(t, "a1a2a3a4a5a6a7a8")
	query := func(data []byte) *dns.Msg {
		return withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, cookieOpt(data))
	}

	first := exchange(t, "udp", addr, query(client))
	got := replyCookie(t, first)
	if first.Rcode != dns.RcodeSuccess || len(first.Answer) != 1 || len(got) != 24 || !bytes.Equal(got[:8], client) {
		t.Fatalf("first query: rcode %s, %d answers, cookie %x; want the answer and our client cookie with a 16-octet server cookie",
			dns.RcodeToString[first.Rcode], len(first.Answer), got)
	}
	for _, network := range []string{"udp", "tcp"} {
		r := exchange(t, network, addr, query(got))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || !bytes.Equal(replyCookie(t, r), got) {
			t.Errorf("%s with the server cookie: rcode %s, %d answers, cookie %x; want the answer and the same cookie", network, dns.RcodeToString[r.Rcode], len(r.Answer), replyCookie(t, r))
		}
	}

	bad := bytes.Clone(got)
	bad[20] ^= 0xFF
	r := exchange(t, "udp", addr, query(bad))
	if r.Rcode != dns.RcodeBadCookie || len(r.Answer) != 0 || len(r.Question) != 1 || !bytes.Equal(replyCookie(t, r)[:8], client) || len(replyCookie(t, r)) != 24 {
		t.Errorf("UDP with a bad server cookie: rcode %s, %d answers, cookie %x; want BADCOOKIE with a fresh cookie", dns.RcodeToString[r.Rcode], len(r.Answer), replyCookie(t, r))
	}
	if retry := exchange(t, "udp", addr, query(replyCookie(t, r))); retry.Rcode != dns.RcodeSuccess || len(retry.Answer) != 1 {
		t.Errorf("retry with the cookie of the BADCOOKIE reply: rcode %s", dns.RcodeToString[retry.Rcode])
	}
	if r := exchange(t, "tcp", addr, query(bad)); r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || len(replyCookie(t, r)) != 24 {
		t.Errorf("TCP with a bad server cookie: rcode %s, %d answers; want the answer (TCP proves the address) and a fresh cookie", dns.RcodeToString[r.Rcode], len(r.Answer))
	}

	// RFC 7873 section 5.4: a query without a question asks for a cookie.
	for _, tc := range []struct {
		name  string
		data  []byte
		rcode int
	}{
		{"client cookie only", client, dns.RcodeSuccess},
		{"valid server cookie", got, dns.RcodeSuccess},
		{"bad server cookie", bad, dns.RcodeBadCookie},
	} {
		m := withEDNS(new(dns.Msg), 1232, false, cookieOpt(tc.data))
		m.Id = dns.Id()
		r := exchange(t, "udp", addr, m)
		if r.Rcode != tc.rcode || len(r.Question) != 0 || len(r.Answer) != 0 || len(replyCookie(t, r)) != 24 {
			t.Errorf("no question, %s: rcode %s, %d questions, cookie %x; want %s and a cookie", tc.name, dns.RcodeToString[r.Rcode], len(r.Question), replyCookie(t, r), dns.RcodeToString[tc.rcode])
		}
	}
	m := withEDNS(new(dns.Msg), 1232, false)
	m.Id = dns.Id()
	if r := exchange(t, "udp", addr, m); r.Rcode != dns.RcodeFormatError || r.IsEdns0() == nil {
		t.Errorf("no question and no cookie: rcode %s, OPT %v; want FORMERR with an OPT", dns.RcodeToString[r.Rcode], r.IsEdns0() != nil)
	}

	// RFC 7873 section 5.2.2: a length no cookie has is FORMERR.
	for _, n := range []int{7, 12, 41} {
		r := exchange(t, "udp", addr, query(make([]byte, n)))
		if r.Rcode != dns.RcodeFormatError || r.IsEdns0() == nil || replyCookie(t, r) != nil {
			t.Errorf("%d-octet cookie: rcode %s, OPT %v, cookie %x; want FORMERR with an OPT and no cookie", n, dns.RcodeToString[r.Rcode], r.IsEdns0() != nil, replyCookie(t, r))
		}
	}

	metrics := scrape(t, s)
	for result, want := range map[string]float64{"client_only": 1, "valid": 4, "invalid": 3, "malformed": 3} {
		if got := metrics[`meridian_dns_cookie_requests_total{result=`+result+`}`]; got < want {
			t.Errorf("cookie_requests_total{result=%s} = %v, want at least %v", result, got, want)
		}
	}
	// Replies decided before the zone is looked up count under "dropped",
	// as queries outside our zones do.
	if got := metrics[`meridian_dns_responses_total{rcode=BADCOOKIE,zone=dropped}`]; got != 2 {
		t.Errorf("BADCOOKIE replies counted: %v, want 2", got)
	}
}

func TestCookiesDisabled(t *testing.T) {
	_, addr := startServer(t, Config{Cookies: CookieConfig{Disabled: true}}, testSnapshot(t, 1))
	for _, n := range []int{8, 12, 24} {
		r := exchange(t, "udp", addr, withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, cookieOpt(make([]byte, n))))
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 || replyCookie(t, r) != nil {
			t.Errorf("%d-octet cookie with cookies off: rcode %s, cookie %x; want the answer, the option ignored (RFC 7873 section 5.1)", n, dns.RcodeToString[r.Rcode], replyCookie(t, r))
		}
	}
}

// TestCookieBypassesRRL floods UDP queries from one address: with a valid
// server cookie every one is answered; with a client cookie alone the
// limited ones slip as BADCOOKIE carrying a cookie that then gets through.
func TestCookieBypassesRRL(t *testing.T) {
	cfg := Config{RRL: DefaultRRL(), Cookies: CookieConfig{Secret: mustSecret(t, "00112233445566778899aabbccddeeff")}}
	cfg.RRL.ResponsesPerSecond, cfg.RRL.Slip = 5, 1
	_, addr := startServer(t, cfg, testSnapshot(t, 1))
	client := mustHex(t, "b1b2b3b4b5b6b7b8")

	flood := func(data []byte) (answered, badcookie, other int, last []byte) {
		conn, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for i := range 25 {
			m := withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, cookieOpt(data))
			m.Id = uint16(i + 1)
			pkt, _ := m.Pack()
			if _, err := conn.Write(pkt); err != nil {
				t.Fatal(err)
			}
		}
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 2048)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			var r dns.Msg
			if err := r.Unpack(buf[:n]); err != nil {
				t.Fatal(err)
			}
			switch {
			case r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1:
				answered++
			case r.Rcode == dns.RcodeBadCookie && len(r.Answer) == 0:
				badcookie++
				last = replyCookie(t, &r)
			default:
				other++
			}
		}
	}
	answered, badcookie, other, last := flood(client)
	if answered != 5 || badcookie != 20 || other != 0 || len(last) != 24 {
		t.Fatalf("25 queries with a client cookie: %d answered, %d BADCOOKIE, %d other; want 5 and 20 (slip 1)", answered, badcookie, other)
	}
	answered, badcookie, other, _ = flood(last)
	if answered != 25 || badcookie+other != 0 {
		t.Errorf("25 queries with the valid server cookie, the budget spent: %d answered, %d BADCOOKIE, %d other; want all answered", answered, badcookie, other)
	}
}

// TestCookieRollover rolls the secret over on a running server, as a
// fleet does (RFC 9018 section 4.3), and turns cookies off and on.
func TestCookieRollover(t *testing.T) {
	a, b := mustSecret(t, "0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a"), mustSecret(t, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b")
	s, addr := startServer(t, Config{Cookies: CookieConfig{Secret: a}}, testSnapshot(t, 1))
	ask := func(data []byte) (int, []byte) {
		r := exchange(t, "udp", addr, withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, cookieOpt(data)))
		return r.Rcode, replyCookie(t, r)
	}
	_, byA := ask(mustHex(t, "c1c2c3c4c5c6c7c8"))

	s.SetCookies(CookieConfig{Secret: a, Accept: [][16]byte{b}}) // step 1: b accepted everywhere
	if rcode, got := ask(byA); rcode != dns.RcodeSuccess || !bytes.Equal(got, byA) {
		t.Errorf("step 1: rcode %s, cookie %x; want the answer and the same cookie", dns.RcodeToString[rcode], got)
	}
	s.SetCookies(CookieConfig{Secret: b, Accept: [][16]byte{a}}) // step 2: b makes cookies, a still valid
	rcode, byB := ask(byA)
	if rcode != dns.RcodeSuccess || bytes.Equal(byB, byA) || len(byB) != 24 {
		t.Errorf("step 2: rcode %s, cookie %x; want the answer and a new cookie made with b", dns.RcodeToString[rcode], byB)
	}
	s.SetCookies(CookieConfig{Secret: b}) // step 3: a dropped
	if rcode, _ := ask(byA); rcode != dns.RcodeBadCookie {
		t.Errorf("step 3, a's cookie: rcode %s, want BADCOOKIE", dns.RcodeToString[rcode])
	}
	if rcode, got := ask(byB); rcode != dns.RcodeSuccess || !bytes.Equal(got, byB) {
		t.Errorf("step 3, b's cookie: rcode %s, cookie %x; want the answer, cookie echoed", dns.RcodeToString[rcode], got)
	}
	s.SetCookies(CookieConfig{Disabled: true})
	if rcode, got := ask(byB); rcode != dns.RcodeSuccess || got != nil {
		t.Errorf("cookies off: rcode %s, cookie %x; want the answer without a cookie", dns.RcodeToString[rcode], got)
	}
}
