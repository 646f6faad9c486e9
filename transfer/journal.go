package transfer

import (
	"hash/maphash"
	"slices"

	"github.com/miekg/dns"
)

// delta is the difference between two consecutive served versions of a
// zone, as IXFR carries it (RFC 1995 section 4): the records deleted
// from the version of from and those added to make the version of to.
type delta struct {
	from, to *dns.SOA
	del, add []dns.RR
}

// journal holds the latest deltas of one zone, oldest first, each
// starting where the one before ends. It is bounded in deltas and in
// records, so that it never outgrows the zone by much.
type journal struct {
	deltas  []*delta
	records int
}

// add appends d, dropping the oldest deltas beyond max, and beyond
// maxRecords records in all. A delta larger than maxRecords on its own
// empties the journal: a whole zone is then the cheaper reply.
func (j *journal) add(d *delta, max, maxRecords int) {
	n := len(d.del) + len(d.add)
	if n > maxRecords {
		j.deltas, j.records = nil, 0
		return
	}
	if k := len(j.deltas); k > 0 && j.deltas[k-1].to.Serial != d.from.Serial {
		j.deltas, j.records = nil, 0 // a gap: the old chain leads nowhere now
	}
	j.deltas = append(j.deltas, d)
	j.records += n
	for len(j.deltas) > max || j.records > maxRecords {
		j.records -= len(j.deltas[0].del) + len(j.deltas[0].add)
		j.deltas[0] = nil
		j.deltas = j.deltas[1:]
	}
}

// chain returns the deltas that lead from serial from to serial to, or
// nil when the journal does not hold that path.
func (j *journal) chain(from, to uint32) []*delta {
	for i, d := range j.deltas {
		if d.from.Serial != from {
			continue
		}
		if last := j.deltas[len(j.deltas)-1]; last.to.Serial != to {
			return nil
		}
		return j.deltas[i:]
	}
	return nil
}

// diff returns what to delete from old and add to it to make cur, both
// the records of a zone without its SOA. Records are equal when their
// owner, type, class, TTL and data are (a TTL change is a deletion and
// an addition, as IXFR has it); they are found by a hash of their wire
// form, then compared.
func diff(old, cur []dns.RR) (del, add []dns.RR) {
	h := newRRHasher()
	left := make(map[uint64][]dns.RR, len(old)) // old records not matched yet
	for _, rr := range old {
		k := h.sum(rr)
		left[k] = append(left[k], rr)
	}
	for _, rr := range cur {
		k := h.sum(rr)
		bucket := left[k]
		i := slices.IndexFunc(bucket, func(o dns.RR) bool { return sameRR(o, rr) })
		if i < 0 {
			add = append(add, rr)
			continue
		}
		if len(bucket) == 1 {
			delete(left, k)
		} else {
			left[k] = slices.Delete(bucket, i, i+1)
		}
	}
	if len(left) > 0 {
		for _, rr := range old { // in the zone's order
			k := h.sum(rr)
			bucket := left[k]
			if i := slices.IndexFunc(bucket, func(o dns.RR) bool { return o == rr }); i >= 0 {
				del = append(del, rr)
				left[k] = slices.Delete(bucket, i, i+1)
			}
		}
	}
	return del, add
}

// sameRR reports whether a and b are the same record, TTL included.
func sameRR(a, b dns.RR) bool {
	return a.Header().Ttl == b.Header().Ttl && dns.IsDuplicate(a, b)
}

// rrHasher hashes records by their wire form, owner in lower case.
type rrHasher struct {
	seed maphash.Seed
	buf  []byte
}

func newRRHasher() *rrHasher { return &rrHasher{seed: maphash.MakeSeed(), buf: make([]byte, 1024)} }

func (h *rrHasher) sum(rr dns.RR) uint64 {
	if n := dns.Len(rr) + 1; n > len(h.buf) {
		h.buf = make([]byte, 2*n)
	}
	// A copy: packing sets the record's Rdlength, and the records are
	// shared with the snapshot and the transfers running.
	off, err := dns.PackRR(dns.Copy(rr), h.buf, 0, nil, false)
	if err != nil {
		return maphash.String(h.seed, rr.String())
	}
	b := h.buf[:off]
	// Lower the owner's letters (RFC 4343): its labels come first.
	for i := 0; i < len(b) && b[i] != 0; i += int(b[i]) + 1 {
		for j := i + 1; j <= i+int(b[i]) && j < len(b); j++ {
			if 'A' <= b[j] && b[j] <= 'Z' {
				b[j] += 'a' - 'A'
			}
		}
	}
	return maphash.Bytes(h.seed, b)
}

// ixfrRecords lays out an incremental reply (RFC 1995 section 4): the
// current SOA, then per delta the old SOA, the deletions, the new SOA and
// the additions, then the current SOA again.
func ixfrRecords(cur *dns.SOA, ds []*delta) []dns.RR {
	n := 2
	for _, d := range ds {
		n += 2 + len(d.del) + len(d.add)
	}
	out := make([]dns.RR, 0, n)
	out = append(out, cur)
	for _, d := range ds {
		out = append(out, d.from)
		out = append(out, d.del...)
		out = append(out, d.to)
		out = append(out, d.add...)
	}
	return append(out, cur)
}
