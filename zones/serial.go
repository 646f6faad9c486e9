package zones

import (
	"encoding/binary"
	"hash/maphash"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"
)

// The SOA serial a zone is served with (in SOA answers, negative answers
// and transfers) is its file's serial until the zone's served content
// changes without the file's serial moving past the one served: a pool's
// endpoint going down changes what a secondary must hold (see
// TransferRecords), and so does an edit whose author forgot the serial.
// Secondaries only transfer when the serial grows (RFC 1996 section 4.7,
// RFC 1034 section 4.3.5), so every change of content must advance it.
//
// The rules, with greater in the sense of RFC 1982 serial arithmetic:
//
//   - a zone served for the first time gets its file's serial, or, when
//     it has pools, the greater of that and the current Unix time, so
//     that a restart does not step back below the serials that health
//     changes produced before it (they track the clock, see below);
//   - a zone whose content and file serial are those of the tree served
//     before keeps its serial (a rebuild for slow start or signatures,
//     a file touched but not changed);
//   - otherwise it gets the greatest of its file's serial, the served
//     serial plus one and, for a zone with pools, the Unix time.

// SerialLess reports whether serial a is less than b in the sense of RFC
// 1982 section 3.2: b is ahead of a by less than half the number space.
// Serials 2^31 apart compare neither way.
func SerialLess(a, b uint32) bool {
	return a != b && b-a < 1<<31
}

// serialMax returns the greater of a and b in RFC 1982 terms, a when
// they are equal or incomparable.
func serialMax(a, b uint32) uint32 {
	if SerialLess(a, b) {
		return b
	}
	return a
}

// servedSerial decides the serial of zone z compiled now, whose file
// serial is file and content digest d, given prev, the tree of the
// same origin served before (nil when none).
func servedSerial(prev *zoneTree, z *Zone, file uint32, d uint64, now time.Time) uint32 {
	clock := uint32(0)
	if len(z.Pools) > 0 {
		clock = uint32(now.Unix())
	}
	if prev == nil {
		return serialMax(file, clock)
	}
	if prev.digest == d && prev.fileSerial == file {
		return prev.serial
	}
	s := serialMax(prev.serial+1, file)
	return serialMax(s, clock)
}

// contentDigest hashes what a transfer of z would hold but the SOA
// serial: its records and its pools' addresses as transferred. Two
// versions of a zone with the same digest are served the same.
func contentDigest(z *Zone) uint64 {
	var h maphash.Hash
	h.SetSeed(digestSeed)
	for _, r := range z.Records {
		rr := r.RR
		if soa, ok := rr.(*dns.SOA); ok {
			c := *soa
			c.Serial = 0
			rr = &c
		}
		b, err := packCopy(rr) // a copy: records are shared with other readers
		if err != nil {
			h.WriteString(rr.String())
			continue
		}
		h.Write(b)
	}
	for i := range z.Pools {
		p := &z.Pools[i]
		h.WriteString(p.Name)
		var ttl [4]byte
		binary.BigEndian.PutUint32(ttl[:], p.TTL)
		h.Write(ttl[:])
		for _, a := range transferAddrs(z, p) {
			b := a.As16()
			h.Write(b[:])
		}
	}
	return h.Sum64()
}

// digestSeed is fixed per process: digests are only compared within one.
var digestSeed = maphash.MakeSeed()

// transferAddrs returns the addresses pool p is transferred with: its
// eligible endpoints (admin active and healthy), the answer every client
// gets some of; when none is, what the pool answers then (RFC-wise a
// secondary cannot choose per client, so it gets the whole set): every
// active endpoint (fail open), the fallback pool's addresses, or none.
// Sorted, IPv4 first.
func transferAddrs(z *Zone, p *Pool) []netip.Addr {
	for range 8 { // fallback chains are short; validation refuses loops
		var out []netip.Addr
		for i := range p.Endpoints {
			if e := &p.Endpoints[i]; p.Eligible(e) {
				out = append(out, e.Addr)
			}
		}
		if len(out) == 0 {
			switch p.WhenAllDown {
			case FailOpen:
				for i := range p.Endpoints {
					if e := &p.Endpoints[i]; e.Admin == AdminActive {
						out = append(out, e.Addr)
					}
				}
			case Fallback:
				if next := findPool(z, p.FallbackTo); next != nil {
					p = next
					continue
				}
			}
		}
		slices.SortFunc(out, netip.Addr.Compare)
		return slices.Compact(out)
	}
	return nil
}

func findPool(z *Zone, name string) *Pool {
	for i := range z.Pools {
		if z.Pools[i].Name == name {
			return &z.Pools[i]
		}
	}
	return nil
}
