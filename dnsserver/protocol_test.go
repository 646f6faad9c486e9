package dnsserver

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func newQuery(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

func withEDNS(m *dns.Msg, size uint16, do bool, opts ...dns.EDNS0) *dns.Msg {
	m.SetEdns0(size, do)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, opts...)
	return m
}

func TestEDNS(t *testing.T) {
	_, addr := startServer(t, Config{NSID: "meridian-test-1"}, testSnapshot(t, 1))
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network+"/OPT echoed with our size and DO", func(t *testing.T) {
			r := exchange(t, network, addr, withEDNS(newQuery("www.example.com.", dns.TypeA), 4096, true))
			opt := r.IsEdns0()
			if opt == nil {
				t.Fatal("no OPT in reply")
			}
			if opt.UDPSize() != 1232 || opt.Version() != 0 || !opt.Do() {
				t.Errorf("OPT size %d version %d DO %v, want 1232, 0, true", opt.UDPSize(), opt.Version(), opt.Do())
			}
			if len(r.Answer) != 1 {
				t.Errorf("answer %v", r.Answer)
			}
		})
		t.Run(network+"/no OPT without EDNS", func(t *testing.T) {
			r := exchange(t, network, addr, newQuery("www.example.com.", dns.TypeA))
			if r.IsEdns0() != nil {
				t.Error("OPT in reply to a query without one")
			}
		})
		t.Run(network+"/BADVERS", func(t *testing.T) {
			m := withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false)
			m.IsEdns0().SetVersion(1)
			r := exchange(t, network, addr, m)
			if r.Rcode != dns.RcodeBadVers || r.IsEdns0() == nil || r.IsEdns0().Version() != 0 || len(r.Answer) != 0 {
				t.Errorf("rcode %d OPT %v answer %v, want BADVERS with version 0 and no answer", r.Rcode, r.IsEdns0(), r.Answer)
			}
		})
		t.Run(network+"/unknown option ignored", func(t *testing.T) {
			r := exchange(t, network, addr, withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false,
				&dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}}))
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
				t.Errorf("rcode %d answer %v", r.Rcode, r.Answer)
			}
			for _, o := range r.IsEdns0().Option {
				if o.Option() == 65001 {
					t.Error("unknown option echoed")
				}
			}
		})
		t.Run(network+"/NSID", func(t *testing.T) {
			r := exchange(t, network, addr, withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}))
			var got string
			for _, o := range r.IsEdns0().Option {
				if n, ok := o.(*dns.EDNS0_NSID); ok {
					got = n.Nsid
				}
			}
			if want := "6d6572696469616e2d746573742d31"; got != want { // hex of meridian-test-1
				t.Errorf("NSID %q, want %q", got, want)
			}
		})
		t.Run(network+"/ECS echoed with scope 0", func(t *testing.T) {
			e := &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("81.2.69.0").To4()}
			r := exchange(t, network, addr, withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, e))
			var got *dns.EDNS0_SUBNET
			for _, o := range r.IsEdns0().Option {
				if s, ok := o.(*dns.EDNS0_SUBNET); ok {
					got = s
				}
			}
			if got == nil || got.SourceNetmask != 24 || got.SourceScope != 0 || !got.Address.Equal(net.ParseIP("81.2.69.0")) {
				t.Errorf("ECS %v, want 81.2.69.0/24 scope 0", got)
			}
		})
	}
}

func TestNSIDOffByDefault(t *testing.T) {
	_, addr := startServer(t, Config{}, testSnapshot(t, 1))
	r := exchange(t, "udp", addr, withEDNS(newQuery("www.example.com.", dns.TypeA), 1232, false, &dns.EDNS0_NSID{Code: dns.EDNS0NSID}))
	for _, o := range r.IsEdns0().Option {
		if o.Option() == dns.EDNS0NSID {
			t.Errorf("NSID %v sent without being configured", o)
		}
	}
}

func TestTruncation(t *testing.T) {
	_, addr := startServer(t, Config{}, testSnapshot(t, 1))
	for _, tc := range []struct {
		name    string
		network string
		edns    uint16
		wantTC  bool
	}{
		{"UDP without EDNS", "udp", 0, true},
		{"UDP with EDNS 4096 still capped at 1232", "udp", 4096, true},
		{"TCP gets everything", "tcp", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newQuery("big.example.com.", dns.TypeTXT)
			if tc.edns > 0 {
				withEDNS(m, tc.edns, false)
			}
			c := &dns.Client{Net: tc.network, Timeout: 2 * time.Second, UDPSize: 65535}
			r, _, err := c.Exchange(m, addr)
			if err != nil {
				t.Fatal(err)
			}
			if r.Truncated != tc.wantTC {
				t.Fatalf("TC = %v, want %v", r.Truncated, tc.wantTC)
			}
			if tc.wantTC && len(r.Answer) != 0 {
				t.Errorf("truncated reply carries %d answers", len(r.Answer))
			}
			if !tc.wantTC && len(r.Answer) != 30 {
				t.Errorf("%d answers, want 30", len(r.Answer))
			}
			if size := r.Len(); tc.network == "udp" && size > 1232 {
				t.Errorf("UDP reply of %d octets", size)
			}
			if tc.edns > 0 && r.IsEdns0() == nil {
				t.Error("truncated reply lost its OPT")
			}
		})
	}
}

// TestAdditionalShedBeforeTruncation checks that optional additional
// records are dropped, rather than TC set, when only they do not fit.
func TestAdditionalShedBeforeTruncation(t *testing.T) {
	text := testZone
	for i := 0; i < 40; i++ {
		text += "mail 3600 IN AAAA 2001:db8::" + string(rune('a'+i%6)) + string(rune('0'+i/6)) + "\n"
	}
	z := parseZone(t, "example.com.", text)
	snap := mustBuild(t, z)
	_, addr := startServer(t, Config{}, snap)
	r := exchange(t, "udp", addr, newQuery("example.com.", dns.TypeMX))
	if r.Truncated || len(r.Answer) != 1 || len(r.Extra) != 0 {
		t.Errorf("TC %v answer %d extra %d, want no TC, 1 answer, additional shed", r.Truncated, len(r.Answer), len(r.Extra))
	}
	r = exchange(t, "tcp", addr, newQuery("example.com.", dns.TypeMX))
	if len(r.Extra) != 41 {
		t.Errorf("TCP additional %d, want 41", len(r.Extra))
	}
}

// rawQuery builds a query in wire format with the given header fields.
func rawQuery(id uint16, flags uint16, qdcount int, name string, qtype uint16, extra []byte, arcount int) []byte {
	pkt := make([]byte, 12)
	binary.BigEndian.PutUint16(pkt, id)
	binary.BigEndian.PutUint16(pkt[2:], flags)
	binary.BigEndian.PutUint16(pkt[4:], uint16(qdcount))
	binary.BigEndian.PutUint16(pkt[10:], uint16(arcount))
	for i := 0; i < qdcount; i++ {
		buf := make([]byte, 256)
		n, _ := dns.PackDomainName(name, buf, 0, nil, false)
		pkt = append(pkt, buf[:n]...)
		pkt = append(pkt, byte(qtype>>8), byte(qtype), 0, 1)
	}
	return append(pkt, extra...)
}

func TestMalformedAndUnsupported(t *testing.T) {
	_, addr := startServer(t, Config{}, testSnapshot(t, 1))
	badOPT := []byte{0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 8, 0, 3, 0, 10, 1, 2, 3, 4} // option length overruns
	ecsTooLong := []byte{0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 33, 0, 1, 2, 3}
	ecsBitsSet := []byte{0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 20, 0, 81, 2, 69}
	opt := []byte{0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0}
	badCookie := []byte{0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 13, 0, 10, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9} // 9 octets
	ownerNotRoot := []byte{1, 'x', 0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0}
	for _, tc := range []struct {
		name     string
		pkt      []byte
		rcode    int  // -1: no reply
		opt      bool // the reply carries an OPT (RFC 6891 section 6.1.1)
		question bool // and the question
	}{
		{"NOTIFY is not implemented", rawQuery(1, 4<<11, 1, "example.com.", dns.TypeSOA, nil, 0), dns.RcodeNotImplemented, false, true},
		{"UPDATE is not implemented", rawQuery(2, 5<<11, 1, "example.com.", dns.TypeSOA, nil, 0), dns.RcodeNotImplemented, false, true},
		{"opcode 3 with OPT", rawQuery(13, 3<<11, 1, "example.com.", dns.TypeSOA, opt, 1), dns.RcodeNotImplemented, true, true},
		{"NOTIFY with OPT", rawQuery(14, 4<<11, 1, "example.com.", dns.TypeSOA, opt, 1), dns.RcodeNotImplemented, true, true},
		{"QDCOUNT 0", rawQuery(3, 0, 0, "", 0, nil, 0), dns.RcodeFormatError, false, false},
		{"QDCOUNT 0 with OPT", rawQuery(15, 0, 0, "", 0, opt, 1), dns.RcodeFormatError, true, false},
		{"QDCOUNT 2", rawQuery(4, 0, 2, "www.example.com.", dns.TypeA, nil, 0), dns.RcodeFormatError, false, false},
		{"QDCOUNT 2 with OPT", rawQuery(16, 0, 2, "www.example.com.", dns.TypeA, opt, 1), dns.RcodeFormatError, true, false},
		{"malformed OPT", rawQuery(5, 0, 1, "www.example.com.", dns.TypeA, badOPT, 1), dns.RcodeFormatError, false, true},
		{"OPT owner not the root", rawQuery(17, 0, 1, "www.example.com.", dns.TypeA, ownerNotRoot, 1), dns.RcodeFormatError, false, true},
		{"two OPTs", rawQuery(6, 0, 1, "www.example.com.", dns.TypeA, append(append([]byte{}, opt...), opt...), 2), dns.RcodeFormatError, false, true},
		{"ECS prefix longer than address", rawQuery(7, 0, 1, "www.example.com.", dns.TypeA, ecsTooLong, 1), dns.RcodeFormatError, true, true},
		{"ECS bits beyond prefix", rawQuery(8, 0, 1, "www.example.com.", dns.TypeA, ecsBitsSet, 1), dns.RcodeFormatError, true, true},
		{"cookie of 9 octets", rawQuery(18, 0, 1, "www.example.com.", dns.TypeA, badCookie, 1), dns.RcodeFormatError, true, true},
		{"truncated question", rawQuery(9, 0, 1, "www.example.com.", dns.TypeA, nil, 0)[:20], dns.RcodeFormatError, false, false},
		{"class CH refused", func() []byte {
			p := rawQuery(10, 0, 1, "version.bind.", dns.TypeTXT, nil, 0)
			p[len(p)-1] = 3
			return p
		}(), dns.RcodeRefused, false, true},
		{"a response is never answered", rawQuery(11, flagQR, 1, "www.example.com.", dns.TypeA, nil, 0), -1, false, false},
		{"short packet is dropped", []byte{1, 2, 3}, -1, false, false},
		{"empty packet is dropped", []byte{}, -1, false, false},
		// Octets after the sections the header counts are ignored, as
		// most servers do. Over UDP the kernel cuts this datagram at
		// maxQuerySize (4096); the answer is the same as over TCP.
		{"query with 5000 octets of trailing garbage", append(rawQuery(12, 0, 1, "www.example.com.", dns.TypeA, nil, 0), make([]byte, 5000)...), dns.RcodeSuccess, false, true},
	} {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				reply := rawExchange(t, network, addr, tc.pkt)
				if tc.rcode < 0 {
					if reply != nil {
						t.Errorf("got a reply %x, want none", reply)
					}
					return
				}
				r := new(dns.Msg)
				if err := r.Unpack(reply); err != nil {
					t.Fatalf("reply %x does not unpack: %v", reply, err)
				}
				if r.Id != binary.BigEndian.Uint16(tc.pkt) || r.Rcode != tc.rcode || !r.Response {
					t.Errorf("id %d rcode %s QR %v, want id %d rcode %s", r.Id, dns.RcodeToString[r.Rcode], r.Response,
						binary.BigEndian.Uint16(tc.pkt), dns.RcodeToString[tc.rcode])
				}
				if (r.IsEdns0() != nil) != tc.opt || (len(r.Question) == 1) != tc.question || len(r.Question) > 1 {
					t.Errorf("OPT %v, %d questions; want OPT %v, question %v", r.IsEdns0() != nil, len(r.Question), tc.opt, tc.question)
				}
				if r.Opcode != int(tc.pkt[2]>>3&0xF) {
					t.Errorf("opcode %d, want the query's %d", r.Opcode, tc.pkt[2]>>3&0xF)
				}
			})
		}
	}
}

func TestTCPPipelining(t *testing.T) {
	_, addr := startServer(t, Config{}, testSnapshot(t, 1))
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	names := []string{"www.example.com.", "mail.example.com.", "nothere.example.com.", "sip.example.com."}
	var batch []byte
	for i, n := range names {
		m := newQuery(n, dns.TypeA)
		m.Id = uint16(100 + i)
		p, _ := m.Pack()
		batch = append(batch, byte(len(p)>>8), byte(len(p)))
		batch = append(batch, p...)
	}
	if _, err := c.Write(batch); err != nil { // all queries in one segment, before any reply
		t.Fatal(err)
	}
	for i := range names {
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		buf := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf); err != nil {
			t.Fatal(err)
		}
		if r.Id != uint16(100+i) || r.Question[0].Name != names[i] {
			t.Errorf("reply %d: id %d for %s", i, r.Id, r.Question[0].Name)
		}
	}
}

func TestTCPIdleTimeoutAndLimits(t *testing.T) {
	srv, addr := startServer(t, Config{TCPIdleTimeout: 200 * time.Millisecond, TCPMaxConns: 2, TCPMaxQueries: 2}, testSnapshot(t, 1))

	t.Run("idle connection closed", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		start := time.Now()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("read: %v, want EOF", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("closed after %v, want about 200ms", d)
		}
	})
	t.Run("query cap per connection", func(t *testing.T) {
		conn, err := dns.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		for i := 0; i < 2; i++ {
			if err := conn.WriteMsg(newQuery("www.example.com.", dns.TypeA)); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ReadMsg(); err != nil {
				t.Fatalf("query %d: %v", i, err)
			}
		}
		conn.WriteMsg(newQuery("www.example.com.", dns.TypeA))
		if _, err := conn.ReadMsg(); err == nil {
			t.Error("third query answered, want the connection closed after 2")
		}
	})
	t.Run("connection cap", func(t *testing.T) {
		// Connections of the subtests before count until the server has
		// seen them close.
		for deadline := time.Now().Add(3 * time.Second); srv.tcpOpen.Load() != 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for i := 0; i < 2; i++ {
			c, err := dns.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c.Conn)
			c.SetDeadline(time.Now().Add(3 * time.Second))
			c.WriteMsg(newQuery("www.example.com.", dns.TypeA)) // make sure it was accepted
			if _, err := c.ReadMsg(); err != nil {
				t.Fatal(err)
			}
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(150 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("third connection: %v, want closed at once (EOF)", err)
		}
	})
}

func TestPublishNeverGoesBack(t *testing.T) {
	s, addr := startServer(t, Config{}, testSnapshot(t, 5))
	if s.Publish(testSnapshot(t, 4)) {
		t.Error("older snapshot accepted")
	}
	if s.Snapshot().Version != 5 {
		t.Errorf("serving version %d, want 5", s.Snapshot().Version)
	}
	if !s.Publish(testSnapshot(t, 6)) || s.Snapshot().Version != 6 {
		t.Error("newer snapshot refused")
	}
	if r := exchange(t, "udp", addr, newQuery("www.example.com.", dns.TypeA)); len(r.Answer) != 1 {
		t.Errorf("answer %v", r.Answer)
	}
}

func TestNoSnapshotIsServfail(t *testing.T) {
	_, addr := startServer(t, Config{}, nil)
	if r := exchange(t, "udp", addr, newQuery("www.example.com.", dns.TypeA)); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode %s, want SERVFAIL before the first snapshot", dns.RcodeToString[r.Rcode])
	}
}

// TestTCPPerClientAndSlowClients checks the limits against one host
// holding connections: a client address gets at most
// TCPMaxConnsPerClient while another still gets in, and a client
// dripping a query byte by byte is cut off at TCPIdleTimeout.
func TestTCPPerClientAndSlowClients(t *testing.T) {
	srv, addr := startServer(t, Config{TCPIdleTimeout: 300 * time.Millisecond, TCPMaxConns: 10, TCPMaxConnsPerClient: 2}, testSnapshot(t, 1))
	dialFrom := func(src string) (*dns.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		c.SetDeadline(time.Now().Add(3 * time.Second))
		return &dns.Conn{Conn: c}, nil
	}
	answered := func(c *dns.Conn) bool {
		if c.WriteMsg(newQuery("www.example.com.", dns.TypeA)) != nil {
			return false
		}
		r, err := c.ReadMsg()
		return err == nil && len(r.Answer) == 1
	}

	t.Run("per client", func(t *testing.T) {
		var conns []*dns.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; i < 3; i++ {
			c, err := dialFrom("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		// The first two are served; the third from the same address is
		// closed unanswered; another address is still served.
		if !answered(conns[0]) || !answered(conns[1]) {
			t.Fatal("connections within the per-client limit not answered")
		}
		if answered(conns[2]) {
			t.Error("third connection from 127.0.0.1 answered, want it closed")
		}
		other, err := dialFrom("127.0.0.2")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, other)
		if !answered(other) {
			t.Error("a connection from 127.0.0.2 refused while 127.0.0.1 is at its limit")
		}
		if n := srv.tcpRefused[refusedPerClient].Load(); n != 1 {
			t.Errorf("per-client refusals counted %d, want 1", n)
		}
		// Closing one frees its slot.
		conns[0].Close()
		for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			c, err := dialFrom("127.0.0.1")
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if answered(c) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("slot of a closed connection never freed")
			}
		}
	})
	t.Run("slow drip", func(t *testing.T) {
		for deadline := time.Now().Add(3 * time.Second); srv.tcpOpen.Load() != 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		pkt, err := newQuery("www.example.com.", dns.TypeA).Pack()
		if err != nil {
			t.Fatal(err)
		}
		frame := append([]byte{byte(len(pkt) >> 8), byte(len(pkt))}, pkt...)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		// The frame, a byte every 50 ms, would take over 1.5 s; the
		// server must close at its idle timeout instead, which the
		// reader sees as EOF while the writer still drips.
		type result struct {
			n   int
			err error
			at  time.Duration
		}
		done := make(chan result, 1)
		go func() {
			c.SetReadDeadline(time.Now().Add(3 * time.Second))
			n, err := c.Read(make([]byte, 512))
			done <- result{n, err, time.Since(start)}
		}()
		var r result
	drip:
		for i := 0; i < len(frame); i++ {
			select {
			case r = <-done:
				break drip
			default:
			}
			c.Write(frame[i : i+1])
			time.Sleep(50 * time.Millisecond)
		}
		if r.at == 0 {
			r = <-done
		}
		if r.n != 0 || r.err == nil {
			t.Fatalf("dripped query answered (%d octets, %v)", r.n, r.err)
		}
		if d := r.at; d > time.Second {
			t.Errorf("connection held %v by a dripping client, want about the 300ms idle timeout", d)
		}
	})
}

// TestUDPWildcardReplySource checks that a server on a wildcard address
// answers from the address each query was sent to: a client (here a
// connected UDP socket, as resolvers use) drops a reply from any other.
func TestUDPWildcardReplySource(t *testing.T) {
	for _, tc := range []struct{ listen, dial string }{
		{"0.0.0.0:0", "127.0.0.1"},
		{"0.0.0.0:0", "127.0.0.2"},
		{"[::]:0", "127.0.0.3"},
		{"[::]:0", "::1"},
	} {
		t.Run(tc.listen+"/"+tc.dial, func(t *testing.T) {
			s, _ := startServerWith(t, Config{Listen: []string{tc.listen}, UDPWorkers: 1}, testSnapshot(t, 1), nil)
			port := s.Addrs()[0].(*net.UDPAddr).Port
			addr := net.JoinHostPort(tc.dial, strconv.Itoa(port))
			for i := 0; i < 3; i++ {
				r := exchange(t, "udp", addr, newQuery("www.example.com.", dns.TypeA))
				if len(r.Answer) != 1 {
					t.Fatalf("answer %v", r.Answer)
				}
			}
		})
	}
}
