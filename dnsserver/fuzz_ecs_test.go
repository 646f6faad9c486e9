package dnsserver

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"slices"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

// ecsNames are the names FuzzECS asks for: pools answered by geography,
// by rules with CIDRs of both families, stickily, through a CNAME, and
// names whose answers do not depend on the client at all.
var ecsNames = []struct {
	name string
	pool bool // answered from a pool (for A and AAAA)
}{
	{"www.svc.example.", true},
	{"rules.svc.example.", true},
	{"sticky.svc.example.", true},
	{"alias.svc.example.", true},
	{"www.example.com.", false},
	{"nothere.example.com.", false},
	{"example.org.", false}, // not ours: REFUSED
}

var ecsTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeSOA, dns.TypeAXFR, 65280}

// Bits of FuzzECS's flags argument.
const (
	ecsTCP      = 1 << iota
	ecsDO       // set the DO bit
	ecsNoECS    // send no ECS option at all
	ecsFix      // make the option well formed: clamp the source, fit and mask the address
	ecsBadVers  // EDNS version 1: BADVERS, with the ECS option still echoed
	ecsFirst    // put the ECS option before the other options rather than after
	ecsTail     // append the bytes left over from opts: a truncated option
	ecsSmallUDP // advertise 512 octets rather than 1232
)

// ecsOpts turns raw bytes into well-formed EDNS options: a 2-octet code,
// a length octet (mod 32) and that much data. ECS codes are moved to a
// local-use code so that the query carries exactly the ECS option the
// fuzzer built. It returns the options, whether one was NSID, and the
// bytes left over.
func ecsOpts(raw []byte) (opts []byte, nsid bool, rest []byte) {
	for len(raw) >= 3 {
		code := binary.BigEndian.Uint16(raw)
		if code == optECS {
			code = 65001
		}
		l := min(int(raw[2])%32, len(raw)-3)
		nsid = nsid || code == optNSID
		opts = binary.BigEndian.AppendUint16(opts, code)
		opts = binary.BigEndian.AppendUint16(opts, uint16(l))
		opts = append(opts, raw[3:3+l]...)
		raw = raw[3+l:]
	}
	return opts, nsid, raw
}

// ecsValid says whether an ECS option with these fields is one a server
// must accept, from RFC 7871 section 6: a known FAMILY, a SOURCE
// PREFIX-LENGTH that fits the family's address, SCOPE PREFIX-LENGTH 0 in
// a query, exactly ceil(SOURCE/8) address octets and no address bit set
// beyond SOURCE.
func ecsValid(family uint16, source, scope uint8, addr []byte) bool {
	var full [16]byte
	var a netip.Addr
	switch family {
	case 1:
		copy(full[:4], addr)
		a = netip.AddrFrom4([4]byte(full[:4]))
	case 2:
		copy(full[:], addr)
		a = netip.AddrFrom16(full)
	default:
		return false
	}
	if int(source) > a.BitLen() || scope != 0 || len(addr) != (int(source)+7)/8 {
		return false
	}
	// Masking to the source prefix must change nothing.
	return netip.PrefixFrom(a, int(source)).Masked().Addr() == a
}

// ecsFixup makes the option's fields well formed.
func ecsFixup(family uint16, source uint8, addr []byte) (uint16, uint8, []byte) {
	family = 2 - family%2
	max := 32
	if family == 2 {
		max = 128
	}
	source = uint8(int(source) % (max + 1))
	var full [16]byte
	copy(full[:], addr)
	var a netip.Addr
	if family == 1 {
		a = netip.AddrFrom4([4]byte(full[:4]))
	} else {
		a = netip.AddrFrom16(full)
	}
	b := netip.PrefixFrom(a, int(source)).Masked().Addr().AsSlice()
	return family, source, b[:(int(source)+7)/8]
}

// ecsPacket builds a query for name/qtype with an OPT record holding opts.
func ecsPacket(id uint16, name string, qtype uint16, udpSize uint16, version uint8, do, rd bool, opts []byte) []byte {
	pkt := make([]byte, headerLen, 512)
	binary.BigEndian.PutUint16(pkt, id)
	if rd {
		binary.BigEndian.PutUint16(pkt[2:], flagRD)
	}
	binary.BigEndian.PutUint16(pkt[4:], 1)
	binary.BigEndian.PutUint16(pkt[10:], 1)
	buf := make([]byte, 256)
	n, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		panic(err)
	}
	pkt = append(pkt, buf[:n]...)
	pkt = append(pkt, byte(qtype>>8), byte(qtype), 0, 1)
	var doBit byte
	if do {
		doBit = 0x80
	}
	pkt = append(pkt, 0, 0, 41, byte(udpSize>>8), byte(udpSize), 0, version, doBit, 0, byte(len(opts)>>8), byte(len(opts)))
	return append(pkt, opts...)
}

// replyOptions returns the options of the OPT record of a reply that
// miekg/dns has already unpacked, as raw code and data pairs, or nil
// without an OPT.
func replyOptions(t *testing.T, reply []byte) (opts [][2][]byte, found bool) {
	t.Helper()
	if len(reply) < headerLen {
		t.Fatal("reply shorter than a header")
	}
	off, err := skipName(reply, headerLen)
	if err != nil {
		t.Fatal(err)
	}
	off += 4
	counts := int(binary.BigEndian.Uint16(reply[6:])) + int(binary.BigEndian.Uint16(reply[8:])) + int(binary.BigEndian.Uint16(reply[10:]))
	for i := 0; i < counts; i++ {
		start := off
		var typ uint16
		if off, typ, err = skipRR(reply, off); err != nil {
			t.Fatal(err)
		}
		if typ != dns.TypeOPT {
			continue
		}
		found = true
		rd := reply[start+11 : off]
		for len(rd) >= 4 {
			l := int(binary.BigEndian.Uint16(rd[2:]))
			opts = append(opts, [2][]byte{rd[:2], rd[4 : 4+l]})
			rd = rd[4+l:]
		}
	}
	return opts, found
}

// ecsServer is a server with the example.com test zone, pools in
// svc.example answered by geography, by CIDR rules and stickily, and the
// test GeoIP database.
func ecsServer(f testing.TB) *Server {
	rules := testPool("rules.svc.example.")
	rules.Geo = zones.GeoRules
	rules.Rules = []zones.Rule{
		{CIDRs: []netip.Prefix{netip.MustParsePrefix("193.99.144.0/24"), netip.MustParsePrefix("203.116.0.0/16"),
			netip.MustParsePrefix("2a00:1450:4001::/48")}, Datacenters: []string{"sa-east", "us-east"}},
		{CIDRs: []netip.Prefix{netip.MustParsePrefix("81.2.69.128/25"), netip.MustParsePrefix("2001:db8:8000::/33")}, Datacenters: []string{"ap-southeast"}},
		{Countries: []string{"DE"}, Datacenters: []string{"us-west"}},
	}
	sticky := testPool("sticky.svc.example.")
	sticky.Sticky = true
	sticky.MaxAnswers = 1
	zs := append(poolSnapshotZones(f, testPool("www.svc.example."), rules, sticky),
		parseZone(f, "example.com.", testZone))
	snap, err := zones.Build(zs, 1)
	if err != nil {
		f.Fatal(err)
	}
	s, err := New(Config{Listen: []string{"127.0.0.1:0"}, NSID: "fuzz", TCPIdleTimeout: 1, TCPMaxConns: 1}, nil)
	if err != nil {
		f.Fatal(err)
	}
	s.Publish(snap)
	s.SetGeo(worldDB(f))
	return s
}

// FuzzECS sends queries with arbitrary EDNS options, above all client
// subnet options (RFC 7871), to the responder, and checks what RFC 7871
// asks of an authoritative server:
//
//   - an ECS option with an unknown FAMILY, a SOURCE PREFIX-LENGTH over the
//     address length, a non-zero SCOPE PREFIX-LENGTH, too few or too many
//     address octets or bits set beyond the source prefix is answered
//     with FORMERR (section 6), header only;
//   - otherwise the reply unpacks, echoes FAMILY, SOURCE PREFIX-LENGTH and
//     ADDRESS octet for octet (section 7.2.1) in exactly one ECS option,
//     with a SCOPE PREFIX-LENGTH no longer than the source prefix, 0 when
//     the source prefix is 0 (section 7.1.2) and 0 for answers that do not
//     depend on the client (section 7.2.1);
//   - other options are not echoed, but for NSID when asked (RFC 6891
//     section 6.1.2, RFC 5001);
//   - with an ECS option the answer does not depend on the source address
//     of the query (section 7.1.1);
//   - an answer holds across the network its scope names: another address
//     inside it, sent with the same source prefix, gets the same records.
func FuzzECS(f *testing.F) {
	type seed struct {
		name, qtype, flags uint8
		family             uint16
		source, scope      uint8
		addr, opts         []byte
	}
	ip := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	for _, s := range []seed{
		{0, 0, 0, 1, 24, 0, ip("81.2.69.0")[:3], nil},
		{0, 1, ecsTCP, 2, 48, 0, ip("2a00:1450:4001::")[:6], nil},
		{1, 0, 0, 1, 24, 0, ip("193.99.144.0")[:3], []byte{0, 3, 0}},        // with NSID
		{1, 0, 0, 1, 32, 0, ip("81.2.69.200"), []byte{0xFD, 0xE9, 2, 1, 2}}, // CIDR rule, local option
		{1, 1, 0, 2, 64, 0, ip("2001:db8:8000::")[:8], nil},
		{2, 0, ecsDO, 1, 25, 0, ip("128.30.2.128")[:4], nil},
		{3, 0, ecsFirst, 1, 16, 0, ip("171.64.0.0")[:2], []byte{0, 3, 0}},
		{4, 0, 0, 1, 24, 0, ip("81.2.69.0")[:3], nil},
		{6, 0, 0, 1, 24, 0, ip("81.2.69.0")[:3], nil},
		{0, 0, 0, 1, 0, 0, nil, nil}, // source 0: do not use the client's address
		{0, 0, 0, 2, 0, 0, nil, nil},
		{0, 0, 0, 1, 33, 0, []byte{1, 2, 3, 4, 5}, nil}, // source over 32
		{0, 1, 0, 2, 129, 0, make([]byte, 17), nil},     // source over 128
		{0, 0, 0, 1, 20, 0, ip("81.2.69.0")[:3], nil},   // bits beyond the source
		{0, 0, 0, 1, 24, 0, ip("81.2.69.0"), nil},       // too many octets
		{0, 0, 0, 1, 24, 0, ip("81.2.0.0")[:2], nil},    // too few
		{0, 0, 0, 1, 24, 24, ip("81.2.69.0")[:3], nil},  // scope set in a query
		{0, 0, 0, 3, 0, 0, nil, nil},                    // unknown family
		{0, 0, 0, 0, 0, 0, nil, nil},
		{0, 0, ecsBadVers, 1, 24, 0, ip("81.2.69.0")[:3], nil},
		{0, 0, ecsNoECS, 0, 0, 0, nil, []byte{0, 3, 0}},
		{0, 0, ecsTail, 1, 24, 0, ip("81.2.69.0")[:3], []byte{0, 3, 0, 0, 8}},
		{0, 0, ecsSmallUDP | ecsFix, 2, 200, 0, ip("2a00:1450:4001:ff::1"), nil},
		{1, 0, ecsFix, 1, 31, 0, ip("81.2.69.255"), nil},
		{0, 0, 0, 2, 120, 0, ip("::ffff:81.2.69.0")[:15], nil}, // IPv4-mapped, in an IPv6 option
		{1, 0, 0, 2, 128, 0, ip("::ffff:193.99.144.1"), nil},
		{0, 0, 0, 2, 104, 0, ip("::ffff:171.64.0.0")[:13], nil},
	} {
		f.Add(s.name, s.qtype, s.flags, s.family, s.source, s.scope, s.addr, s.opts)
	}
	s := ecsServer(f)
	var q query
	out := make([]byte, 0, maxTCPSize)
	src4, src6 := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("2001:db8:ffff::7")
	respond := func(pkt []byte, tcp bool, src netip.Addr) []byte {
		q.rng = 0x9E3779B97F4A7C15 // the same random choices for every call
		r := s.respond(&q, out[:0], pkt, tcp, src)
		return bytes.Clone(r)
	}
	f.Fuzz(func(t *testing.T, nameSel, typeSel, flags uint8, family uint16, source, scope uint8, addr, rawOpts []byte) {
		qn := ecsNames[int(nameSel)%len(ecsNames)]
		qtype := ecsTypes[int(typeSel)%len(ecsTypes)]
		tcp := flags&ecsTCP != 0
		if flags&ecsFix != 0 {
			family, source, addr = ecsFixup(family, source, addr)
			scope = 0
		}
		if len(addr) > 64 {
			addr = addr[:64]
		}
		opts, nsid, rest := ecsOpts(rawOpts)
		var ecsOpt []byte
		withECS := flags&ecsNoECS == 0
		if withECS {
			ecsOpt = binary.BigEndian.AppendUint16(ecsOpt, optECS)
			ecsOpt = binary.BigEndian.AppendUint16(ecsOpt, uint16(4+len(addr)))
			ecsOpt = binary.BigEndian.AppendUint16(ecsOpt, family)
			ecsOpt = append(ecsOpt, source, scope)
			ecsOpt = append(ecsOpt, addr...)
			if flags&ecsFirst != 0 {
				opts = append(ecsOpt, opts...)
			} else {
				opts = append(opts, ecsOpt...)
			}
		}
		tail := flags&ecsTail != 0 && len(rest) > 0
		if tail {
			opts = append(opts, rest...)
		}
		udp := uint16(1232)
		if flags&ecsSmallUDP != 0 {
			udp = 512
		}
		var version uint8
		if flags&ecsBadVers != 0 {
			version = 1
		}
		id := uint16(nameSel)<<8 | uint16(source)
		pkt := ecsPacket(id, qn.name, qtype, udp, version, flags&ecsDO != 0, true, opts)

		reply := respond(pkt, tcp, src4)
		if reply == nil {
			t.Fatalf("no reply to %x", pkt)
		}
		var m dns.Msg
		if err := m.Unpack(reply); err != nil {
			t.Fatalf("reply %x to %x does not unpack: %v", reply, pkt, err)
		}
		if m.Id != id || !m.Response {
			t.Fatalf("reply id %d QR %v to query id %d", m.Id, m.Response, id)
		}
		valid := !withECS || ecsValid(family, source, scope, addr)
		if !valid || tail {
			// Section 6: a malformed option rejects the whole query. The
			// FORMERR carries an OPT, without the option, unless the OPT
			// itself was the malformation: options overrunning it (RFC
			// 6891 section 6.1.1).
			got, hasOPT := replyOptions(t, reply)
			if m.Rcode != dns.RcodeFormatError || len(m.Answer)+len(m.Ns) != 0 || hasOPT == tail || len(got) != 0 {
				t.Fatalf("ECS family %d source %d scope %d address %x (tail %v): rcode %s, OPT %v with %d options, %d records; want FORMERR, OPT %v without options",
					family, source, scope, addr, tail, dns.RcodeToString[m.Rcode], hasOPT, len(got), len(m.Answer)+len(m.Ns), !tail)
			}
			return
		}
		if m.Rcode == dns.RcodeFormatError {
			t.Fatalf("well-formed query %x answered FORMERR", pkt)
		}
		if version > 0 && m.Rcode != dns.RcodeBadVers {
			t.Fatalf("EDNS version 1 answered %s, want BADVERS", dns.RcodeToString[m.Rcode])
		}
		if !tcp && len(reply) > int(udp) {
			t.Fatalf("UDP reply of %d octets to a query offering %d", len(reply), udp)
		}

		got, hasOPT := replyOptions(t, reply)
		if !hasOPT {
			t.Fatal("no OPT in the reply to a query with one")
		}
		var echoed [][]byte
		sawNSID := false
		for _, o := range got {
			switch code := binary.BigEndian.Uint16(o[0]); code {
			case optECS:
				echoed = append(echoed, o[1])
			case optNSID:
				sawNSID = true
				if string(o[1]) != "fuzz" {
					t.Errorf("NSID %q, want fuzz", o[1])
				}
			default:
				t.Errorf("option %d echoed", code)
			}
		}
		if sawNSID != nsid {
			t.Errorf("NSID in reply %v, asked for %v", sawNSID, nsid)
		}
		if !withECS {
			if len(echoed) != 0 {
				t.Fatalf("ECS %x in the reply to a query without one", echoed)
			}
			return
		}
		if len(echoed) != 1 {
			t.Fatalf("%d ECS options in the reply, want 1", len(echoed))
		}
		e := echoed[0]
		if len(e) < 4 || binary.BigEndian.Uint16(e) != family || e[2] != source || !bytes.Equal(e[4:], addr) {
			t.Fatalf("ECS %x echoed as %x: family, source and address must be the query's", ecsOpt[4:], e)
		}
		gotScope := e[3]
		isPool := qn.pool && (qtype == dns.TypeA || qtype == dns.TypeAAAA) && version == 0
		switch {
		case gotScope > source:
			t.Fatalf("scope /%d beyond the source prefix /%d", gotScope, source)
		case source == 0 && gotScope != 0:
			t.Fatalf("scope /%d for source prefix 0", gotScope)
		case !isPool && gotScope != 0:
			t.Fatalf("scope /%d for %s %s, an answer that does not depend on the client", gotScope, qn.name, dns.TypeToString[qtype])
		}

		// The ECS subnet, not the source address, decides.
		if other := respond(pkt, tcp, src6); !bytes.Equal(other, reply) {
			t.Fatalf("reply differs by source address with ECS %x:\n%x\n%x", ecsOpt, reply, other)
		}

		// Another address inside the scope, with the same source prefix,
		// gets the same answer.
		if !isPool || len(m.Answer) == 0 || gotScope >= source || flags&ecsFirst != 0 {
			return
		}
		flip := rawOpts // which bits to change
		if len(flip) == 0 {
			flip = []byte{0xFF}
		}
		moved := slices.Clone(addr)
		for i := int(gotScope); i < int(source); i++ {
			if flip[i/8%len(flip)]>>(i%8)&1 != 0 {
				moved[i/8] ^= 0x80 >> (i % 8)
			}
		}
		if bytes.Equal(moved, addr) {
			return
		}
		copy(pkt[len(pkt)-len(addr):], moved) // the ECS option is last: neither first nor followed by a tail
		var m2 dns.Msg
		if err := m2.Unpack(respond(pkt, tcp, src4)); err != nil {
			t.Fatal(err)
		}
		if a, b := answerStrings(m.Answer), answerStrings(m2.Answer); !slices.Equal(a, b) {
			t.Fatalf("%s: address %x/%d got scope /%d, but %x/%d inside it is answered differently:\n%v\n%v",
				qn.name, addr, source, gotScope, moved, source, a, b)
		}
	})
}

// answerStrings renders records in their order, which is the preference.
func answerStrings(rrs []dns.RR) []string {
	out := make([]string, len(rrs))
	for i, rr := range rrs {
		out[i] = rr.String()
	}
	return out
}
