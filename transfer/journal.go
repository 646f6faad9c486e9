package transfer

import (
	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
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
// the records of a zone without its SOA. Records compare by their
// presentation form, so a TTL change is a deletion and an addition, as
// IXFR has it.
func diff(old, cur []dns.RR) (del, add []dns.RR) {
	seen := make(map[string]int, len(old))
	for _, rr := range old {
		seen[rrKey(rr)]++
	}
	for _, rr := range cur {
		k := rrKey(rr)
		if seen[k] > 0 {
			seen[k]--
			continue
		}
		add = append(add, rr)
	}
	for _, rr := range old {
		k := rrKey(rr)
		if seen[k] > 0 {
			seen[k]--
			del = append(del, rr)
		}
	}
	return del, add
}

// rrKey is an RR's identity for diff: its presentation form with the
// owner in canonical case.
func rrKey(rr dns.RR) string {
	h := rr.Header()
	if name := zones.CanonicalName(h.Name); name != h.Name {
		rr = dns.Copy(rr)
		rr.Header().Name = name
	}
	return rr.String()
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
