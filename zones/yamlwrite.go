package zones

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"
)

// FormatYAML renders z in the YAML zone format that ParseYAML reads, for
// exports and for caching a server's last good data. Reading the result
// back with Parse gives z again, apart from Line and Source fields and
// the case of the SOA owner, which the soa mapping puts at the origin.
// Names are written as they are, except for characters the loader
// refuses in names (blanks, ';', '(', ')', '"', a leading '$', bytes
// that are not UTF-8), which become \DDD escapes of the same name.
//
// The output depends on nothing but the zone's content: the SOA is the
// soa mapping; every other record is in records, in DNS canonical name
// order (RFC 4034 section 6.1), then by type and data, each with its TTL
// and a fully qualified name; datacenters and pools keep their order, and
// pool settings are all written, defaults included. Every string that
// YAML 1.1 or 1.2 would read as something else is quoted.
//
// FormatYAML refuses, with an error, a zone it cannot write so that it
// reads back the same: one without an origin or SOA, an SOA owner that
// is not the origin, names that are not fully qualified, records of a
// type without a mnemonic (TYPE65280: the format cannot name it) or whose
// presentation format does not parse back to them, and pool settings the
// loader would reject.
func FormatYAML(z *Zone) ([]byte, error) {
	if z == nil {
		return nil, errors.New("zones: format: nil zone")
	}
	if z.Origin == "" {
		return nil, fmt.Errorf("zones: format %s: zone has no origin", z.Source)
	}
	root, err := yamlDocument(z)
	if err != nil {
		return nil, fmt.Errorf("zones: format %s: %w", z.Origin, err)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("zones: format %s: %w", z.Origin, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("zones: format %s: %w", z.Origin, err)
	}
	return buf.Bytes(), nil
}

// yamlDocument builds the top-level mapping, its keys in the order the
// loader documents them.
func yamlDocument(z *Zone) (*yaml.Node, error) {
	canon := CanonicalName(z.Origin)
	if _, ok := dns.IsDomainName(canon); !ok {
		return nil, fmt.Errorf("bad origin %q", z.Origin)
	}
	nm := namer{canon: canon}
	origin, err := nm.spell(canon)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	// The loader makes its origin canonical: origin is what it will have.
	origin = CanonicalName(origin)
	doc := mappingNode(false)
	addPair(doc, "origin", strNode(origin))

	soa := -1
	for i, r := range z.Records {
		if s, ok := r.RR.(*dns.SOA); ok && CanonicalName(s.Hdr.Name) == canon {
			soa = i
			break
		}
	}
	if soa < 0 {
		return nil, errors.New("zone has no SOA record")
	}
	soaNode, err := yamlSOA(nm, z.Records[soa].RR.(*dns.SOA), origin)
	if err != nil {
		return nil, err
	}
	addPair(doc, "soa", soaNode)

	records, err := yamlRecords(nm, z.Records, soa, origin)
	if err != nil {
		return nil, err
	}
	if len(records.Content) > 0 {
		addPair(doc, "records", records)
	}
	if len(z.Datacenters) > 0 {
		dcs := sequenceNode(false)
		for _, dc := range z.Datacenters {
			n, err := yamlDatacenter(dc)
			if err != nil {
				return nil, err
			}
			dcs.Content = append(dcs.Content, n)
		}
		addPair(doc, "datacenters", dcs)
	}
	if len(z.Pools) > 0 {
		pools := sequenceNode(false)
		for i := range z.Pools {
			n, err := yamlPool(nm, &z.Pools[i])
			if err != nil {
				return nil, err
			}
			pools.Content = append(pools.Content, n)
		}
		addPair(doc, "pools", pools)
	}
	return doc, nil
}

// yamlSOA writes the SOA as the soa mapping, checking that the loader's
// reading of it, an SOA at origin (the loader's), is the record.
func yamlSOA(nm namer, soa *dns.SOA, origin string) (*yaml.Node, error) {
	// The mapping puts the SOA at the origin, which must then be its
	// owner up to ASCII case. CanonicalName also lowers non-ASCII letters
	// and replaces bytes that are not UTF-8, making the origin another
	// name than the SOA owner it was taken from.
	owner, err1 := canonicalLabels(soa.Hdr.Name)
	apex, err2 := canonicalLabels(nm.canon)
	if err1 != nil || err2 != nil || compareLabels(owner, apex) != 0 {
		return nil, fmt.Errorf("SOA owner %q is not the origin %q", soa.Hdr.Name, nm.canon)
	}
	var names [2]string
	for i, n := range []string{soa.Ns, soa.Mbox} {
		var err error
		if names[i], err = nm.fqdn(n); err != nil {
			return nil, fmt.Errorf("SOA: %w", err)
		}
	}
	text := fmt.Sprintf("@ %d IN SOA %s %s %d %d %d %d %d\n", soa.Hdr.Ttl,
		names[0], names[1], soa.Serial, soa.Refresh, soa.Retry, soa.Expire, soa.Minttl)
	want := dns.Copy(soa)
	want.Header().Name = origin
	if err := sameAfterParse(want, text, origin); err != nil {
		return nil, fmt.Errorf("SOA: %w", err)
	}
	m := mappingNode(false)
	addPair(m, "ns", strNode(names[0]))
	addPair(m, "mbox", strNode(names[1]))
	addPair(m, "serial", uintNode(uint64(soa.Serial)))
	addPair(m, "refresh", uintNode(uint64(soa.Refresh)))
	addPair(m, "retry", uintNode(uint64(soa.Retry)))
	addPair(m, "expire", uintNode(uint64(soa.Expire)))
	addPair(m, "minimum", uintNode(uint64(soa.Minttl)))
	addPair(m, "ttl", uintNode(uint64(soa.Hdr.Ttl)))
	return m, nil
}

// yamlRecord is one record as written, with what it is sorted by.
type yamlRecord struct {
	labels []string // owner labels, root first, lower case: canonical order
	name   string   // owner as written
	rtype  uint16
	typ    string // type mnemonic
	ttl    uint32
	data   string // RDATA in presentation format
}

// yamlRecords writes every record but the one at skip (the SOA), one
// item per run of records sharing owner, type and TTL: an RRset, as a
// valid zone has one TTL per RRset.
func yamlRecords(nm namer, records []Record, skip int, origin string) (*yaml.Node, error) {
	rs := make([]yamlRecord, 0, len(records))
	for i, r := range records {
		if i == skip {
			continue
		}
		yr, err := newYAMLRecord(nm, r.RR, origin)
		if err != nil {
			if r.Line > 0 {
				return nil, fmt.Errorf("record at line %d: %w", r.Line, err)
			}
			return nil, fmt.Errorf("record %d: %w", i+1, err)
		}
		rs = append(rs, yr)
	}
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := &rs[i], &rs[j]
		if c := compareLabels(a.labels, b.labels); c != 0 {
			return c < 0
		}
		if a.rtype != b.rtype {
			return a.rtype < b.rtype
		}
		if a.data != b.data {
			return a.data < b.data
		}
		if a.ttl != b.ttl {
			return a.ttl < b.ttl
		}
		return a.name < b.name
	})
	seq := sequenceNode(false)
	for i := 0; i < len(rs); {
		j := i + 1
		for j < len(rs) && rs[j].name == rs[i].name && rs[j].rtype == rs[i].rtype && rs[j].ttl == rs[i].ttl {
			j++
		}
		r := rs[i]
		m := mappingNode(false)
		addPair(m, "name", strNode(r.name))
		addPair(m, "type", strNode(r.typ))
		addPair(m, "ttl", uintNode(uint64(r.ttl)))
		if j == i+1 {
			addPair(m, "data", strNode(r.data))
		} else {
			data := sequenceNode(false)
			for _, o := range rs[i:j] {
				data.Content = append(data.Content, strNode(o.data))
			}
			addPair(m, "data", data)
		}
		seq.Content = append(seq.Content, m)
		i = j
	}
	return seq, nil
}

func newYAMLRecord(nm namer, rr dns.RR, origin string) (yamlRecord, error) {
	if rr == nil {
		return yamlRecord{}, errors.New("record without data")
	}
	if rr.Header().Name == "" {
		// The root, as fqdn says; packed as it is, the owner would be
		// missing from the wire form.
		rr = dns.Copy(rr)
		rr.Header().Name = "."
	}
	h := rr.Header()
	if h.Class != dns.ClassINET {
		return yamlRecord{}, fmt.Errorf("%s: class %s cannot be written, only IN", h.Name, dns.Class(h.Class))
	}
	typ, ok := dns.TypeToString[h.Rrtype]
	if _, known := dns.StringToType[typ]; !ok || !known {
		return yamlRecord{}, fmt.Errorf("%s: type %s has no mnemonic to write it with", h.Name, dns.Type(h.Rrtype))
	}
	name, err := nm.fqdn(h.Name)
	if err != nil {
		return yamlRecord{}, err
	}
	labels, err := canonicalLabels(name)
	if err != nil {
		return yamlRecord{}, err
	}
	s, head := rr.String(), h.String()
	if !strings.HasPrefix(s, head) {
		return yamlRecord{}, fmt.Errorf("%s %s: presentation format %q does not start with its header", h.Name, typ, s)
	}
	data := s[len(head):]
	// The loader takes data as one line of a master file; a record the
	// parser would read differently is refused here, not written wrong.
	if !utf8.ValidString(data) {
		return yamlRecord{}, fmt.Errorf("%s %s: data %q is not UTF-8", h.Name, typ, data)
	}
	if err := sameAfterParse(rr, fmt.Sprintf("%s %d IN %s %s\n", name, h.Ttl, typ, data), origin); err != nil {
		return yamlRecord{}, fmt.Errorf("%s %s: %w", h.Name, typ, err)
	}
	return yamlRecord{labels: labels, name: name, rtype: h.Rrtype, typ: typ, ttl: h.Ttl, data: data}, nil
}

// sameAfterParse checks that text, a master-file line as the loader
// builds it, parses back to rr. Records are compared in wire form, where
// escapes spelled differently (\036 and $) are the same name; String()
// keeps such escapes as they were given.
func sameAfterParse(rr dns.RR, text, origin string) error {
	if strings.ContainsAny(strings.TrimSuffix(text, "\n"), "\r\n") {
		return fmt.Errorf("%q does not fit on one line", text)
	}
	got, err := parseOneRR(text, origin)
	if err != nil {
		return fmt.Errorf("%q does not parse back: %w", strings.TrimSpace(text), err)
	}
	want, werr := wireForm(rr)
	have, herr := wireForm(got)
	switch {
	case werr == nil && herr == nil && bytes.Equal(want, have):
		return nil
	case werr != nil && got.String() == rr.String():
		return nil // a record that cannot be packed at all, written as it is
	}
	return fmt.Errorf("%q parses back as %q", rr.String(), got.String())
}

// wireForm packs rr uncompressed: owner name case kept, TTL included. It
// packs a copy, as the zone may be shared with other goroutines.
func wireForm(rr dns.RR) ([]byte, error) { return packCopy(rr) }

// namer spells the names of one zone for the loader.
type namer struct {
	canon string // the zone's origin, canonical
}

// fqdn checks that name is fully qualified and spells it. "" is the
// root, as for CanonicalName and the wire format: the master file parser
// gives it to a first record without an owner when the origin is ".".
func (nm namer) fqdn(name string) (string, error) {
	if name == "" {
		name = "."
	}
	if !dns.IsFqdn(name) {
		return "", fmt.Errorf("name %q is not fully qualified", name)
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", fmt.Errorf("bad name %q", name)
	}
	return nm.spell(name)
}

// spell returns name as written for the loader (yamlName). A '$' is
// escaped only where it starts a name, so when the origin starts with
// one, the part of a name that is the origin is spelled on its own, as
// the origin is: validation compares names with the origin as strings.
func (nm namer) spell(name string) (string, error) {
	if strings.HasPrefix(nm.canon, "$") && dns.IsSubDomain(nm.canon, name) {
		labels := dns.Split(name)
		if k := len(labels) - dns.CountLabel(nm.canon); k > 0 {
			head, err := yamlName(name[:labels[k]])
			if err != nil {
				return "", err
			}
			tail, err := yamlName(name[labels[k]:])
			return head + tail, err
		}
	}
	return yamlName(name)
}

// yamlName spells name so that the loader accepts it and reads the same
// name. Names are kept as they are wherever possible, because the loader
// and validation compare them as strings, escapes and all. What the loader
// refuses becomes a \DDD escape: blanks, ';', '(', ')' and '"', also when
// escaped with a backslash; a '$' at the start (a directive); and bytes
// that are not UTF-8, which YAML cannot hold.
func yamlName(name string) (string, error) {
	const refused = " \t\r\n;()\""
	var b strings.Builder
	ddd := func(c byte) { fmt.Fprintf(&b, "\\%03d", c) }
	for i := 0; i < len(name); {
		c := name[i]
		switch {
		case c == '\\' && i+1 == len(name):
			return "", fmt.Errorf("name %q ends in a lone backslash", name)
		case c == '\\' && i+3 < len(name) && isDigit(name[i+1]) && isDigit(name[i+2]) && isDigit(name[i+3]):
			b.WriteString(name[i : i+4])
			i += 4
		case c == '\\':
			// An escape and the character it escapes, copied together.
			x := name[i+1]
			r, n := utf8.DecodeRuneInString(name[i+1:])
			if strings.IndexByte(refused, x) >= 0 || (r == utf8.RuneError && n <= 1) {
				ddd(x)
				i += 2
			} else {
				b.WriteString(name[i : i+1+n])
				i += 1 + n
			}
		case strings.IndexByte(refused, c) >= 0 || (i == 0 && c == '$'):
			ddd(c)
			i++
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRuneInString(name[i:])
			if r == utf8.RuneError && n <= 1 {
				ddd(c)
			} else {
				b.WriteString(name[i : i+n])
			}
			i += n
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// canonicalLabels returns the labels of name, root first, with ASCII
// letters lowered: the keys of the canonical order of RFC 4034 section 6.1.
func canonicalLabels(name string) ([]string, error) {
	buf := make([]byte, 512)
	end, err := dns.PackDomainName(name, buf, 0, nil, false)
	if err != nil {
		return nil, fmt.Errorf("bad name %q: %w", name, err)
	}
	var labels []string
	for i := 0; i < end && buf[i] != 0; i += 1 + int(buf[i]) {
		l := buf[i+1 : i+1+int(buf[i])]
		for k, c := range l {
			if 'A' <= c && c <= 'Z' {
				l[k] = c + 'a' - 'A'
			}
		}
		labels = append(labels, string(l))
	}
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return labels, nil
}

func compareLabels(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := strings.Compare(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func yamlDatacenter(dc Datacenter) (*yaml.Node, error) {
	if dc.Name == "" || !utf8.ValidString(dc.Name) {
		return nil, fmt.Errorf("bad datacenter name %q", dc.Name)
	}
	what := "datacenter " + dc.Name
	if !inRange(dc.Lat, 90) || !inRange(dc.Lon, 180) {
		return nil, fmt.Errorf("%s: coordinates %g,%g out of range", what, dc.Lat, dc.Lon)
	}
	m := mappingNode(true)
	addPair(m, "name", strNode(dc.Name))
	addPair(m, "lat", floatNode(dc.Lat))
	addPair(m, "lon", floatNode(dc.Lon))
	for _, f := range []struct{ key, code string }{{"country", dc.Country}, {"continent", dc.Continent}} {
		if f.code == "" {
			continue
		}
		// The loader takes two bytes and upper-cases them.
		if len(f.code) != 2 || strings.ToUpper(f.code) != f.code {
			return nil, fmt.Errorf("%s: %s %q is not a two-letter upper-case code", what, f.key, f.code)
		}
		addPair(m, f.key, strNode(f.code))
	}
	return m, nil
}

func inRange(v, limit float64) bool { return !math.IsNaN(v) && math.Abs(v) <= limit }

func yamlPool(nm namer, p *Pool) (*yaml.Node, error) {
	name, err := nm.spell(CanonicalName(p.Name))
	if err != nil {
		return nil, fmt.Errorf("pool: %w", err)
	}
	what := "pool " + name
	switch {
	case p.MaxAnswers < 0 || p.MaxAnswers > math.MaxInt32:
		return nil, fmt.Errorf("%s: max_answers %d out of range", what, p.MaxAnswers)
	case p.Spill < 0 || p.Spill > math.MaxInt32:
		return nil, fmt.Errorf("%s: spill %d out of range", what, p.Spill)
	case int(p.Geo) >= len(geoNames):
		return nil, fmt.Errorf("%s: unknown geo mode %d", what, p.Geo)
	}
	var allDown string
	switch p.WhenAllDown {
	case FailOpen, Empty:
		if p.FallbackTo != "" {
			return nil, fmt.Errorf("%s: fallback pool %s set without when_all_down fallback", what, p.FallbackTo)
		}
		allDown = map[AllDownMode]string{FailOpen: "fail_open", Empty: "empty"}[p.WhenAllDown]
	case Fallback:
		to, err := nm.spell(CanonicalName(p.FallbackTo))
		if err != nil || p.FallbackTo == "" || strings.TrimSpace(to) != to {
			return nil, fmt.Errorf("%s: bad fallback pool %q", what, p.FallbackTo)
		}
		allDown = "fallback:" + to
	default:
		return nil, fmt.Errorf("%s: unknown when_all_down mode %d", what, p.WhenAllDown)
	}
	m := mappingNode(false)
	addPair(m, "name", strNode(name))
	addPair(m, "ttl", uintNode(uint64(p.TTL)))
	addPair(m, "max_answers", uintNode(uint64(p.MaxAnswers)))
	addPair(m, "geo", strNode(p.Geo.String()))
	addPair(m, "sticky", boolNode(p.Sticky))
	addPair(m, "spill", uintNode(uint64(p.Spill)))
	addPair(m, "unknown_is_up", boolNode(p.UnknownIsUp))
	addPair(m, "when_all_down", strNode(allDown))
	addPair(m, "quorum", strNode(cmp.Or(p.Quorum, DefaultQuorum)))
	if p.ShedLoad != 0 {
		if !inRange(p.ShedLoad, 1) || p.ShedLoad < 0 || p.ShedLoad >= 1 {
			return nil, fmt.Errorf("%s: shed_load %g out of range", what, p.ShedLoad)
		}
		addPair(m, "shed_load", floatNode(p.ShedLoad))
	}
	if p.Check != nil {
		n, err := yamlHealthCheck(p.Check, nil)
		if err != nil {
			return nil, fmt.Errorf("%s health_check: %w", what, err)
		}
		addPair(m, "health_check", n)
	}
	if len(p.Bias) > 0 {
		keys := make([]string, 0, len(p.Bias))
		for k := range p.Bias {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		bias := mappingNode(true)
		for _, k := range keys {
			// Half the Earth's circumference, as the loader allows.
			if !utf8.ValidString(k) || !inRange(p.Bias[k], 20037) {
				return nil, fmt.Errorf("%s: bad bias %q: %g", what, k, p.Bias[k])
			}
			addPair(bias, k, floatNode(p.Bias[k]))
		}
		addPair(m, "bias", bias)
	}
	if len(p.Rules) > 0 {
		rules := sequenceNode(false)
		for i, r := range p.Rules {
			n, err := yamlRule(r)
			if err != nil {
				return nil, fmt.Errorf("%s rule %d: %w", what, i+1, err)
			}
			rules.Content = append(rules.Content, n)
		}
		addPair(m, "rules", rules)
	}
	eps := sequenceNode(false)
	for _, e := range p.Endpoints {
		n, err := yamlEndpoint(e, p.Check)
		if err != nil {
			return nil, fmt.Errorf("%s endpoint %s: %w", what, e.Addr, err)
		}
		eps.Content = append(eps.Content, n)
	}
	addPair(m, "endpoints", eps)
	return m, nil
}

// yamlRule writes the matchers a rule has; datacenters is required, even
// when empty.
func yamlRule(r Rule) (*yaml.Node, error) {
	m := mappingNode(true)
	if len(r.CIDRs) > 0 {
		cidrs := sequenceNode(true)
		for _, c := range r.CIDRs {
			if !c.IsValid() {
				return nil, errors.New("invalid CIDR")
			}
			cidrs.Content = append(cidrs.Content, strNode(c.String()))
		}
		addPair(m, "cidr", cidrs)
	}
	for _, f := range []struct {
		key   string
		codes []string
	}{{"country", r.Countries}, {"continent", r.Continents}} {
		if len(f.codes) == 0 {
			continue
		}
		codes := sequenceNode(true)
		for _, c := range f.codes {
			// The loader upper-cases codes.
			if c == "" || !utf8.ValidString(c) || strings.ToUpper(c) != c {
				return nil, fmt.Errorf("%s %q is not an upper-case code", f.key, c)
			}
			codes.Content = append(codes.Content, strNode(c))
		}
		addPair(m, f.key, codes)
	}
	dcs := sequenceNode(true)
	for _, dc := range r.Datacenters {
		if dc == "" || !utf8.ValidString(dc) {
			return nil, fmt.Errorf("bad datacenter name %q", dc)
		}
		dcs.Content = append(dcs.Content, strNode(dc))
	}
	addPair(m, "datacenters", dcs)
	return m, nil
}

func yamlEndpoint(e Endpoint, poolCheck *HealthCheck) (*yaml.Node, error) {
	switch {
	case !e.Addr.IsValid():
		return nil, errors.New("no address")
	case e.Datacenter == "" || !utf8.ValidString(e.Datacenter):
		return nil, fmt.Errorf("bad datacenter name %q", e.Datacenter)
	case e.Weight == 0:
		return nil, errors.New("weight 0 (the loader wants at least 1)")
	case int(e.Admin) >= len(adminNames):
		return nil, fmt.Errorf("unknown admin state %d", e.Admin)
	case int(e.Health) >= len(healthNames):
		return nil, fmt.Errorf("unknown health state %d", e.Health)
	}
	m := mappingNode(true)
	addPair(m, "address", strNode(e.Addr.String()))
	addPair(m, "datacenter", strNode(e.Datacenter))
	addPair(m, "weight", uintNode(uint64(e.Weight)))
	addPair(m, "admin", strNode(e.Admin.String()))
	addPair(m, "health", strNode(e.Health.String()))
	if e.Check != nil {
		if poolCheck == nil {
			return nil, errors.New("health_check override without a pool check")
		}
		n, err := yamlHealthCheck(e.Check, poolCheck)
		if err != nil {
			return nil, fmt.Errorf("health_check: %w", err)
		}
		addPair(m, "health_check", n)
	}
	return m, nil
}

// yamlHealthCheck writes c: every set field, or, for an endpoint's
// override (base is the pool's check), the fields that differ from base.
// The loader cannot set a field back to zero, so an override that does
// (but for tls_insecure) cannot be written.
func yamlHealthCheck(c, base *HealthCheck) (*yaml.Node, error) {
	if p := c.Problems(); len(p) > 0 {
		return nil, errors.New(p[0])
	}
	if base == nil {
		base = &HealthCheck{}
	}
	m := mappingNode(true)
	var err error
	str := func(key, v, b string) {
		switch {
		case v == b:
		case v == "" || !utf8.ValidString(v) || strings.ContainsAny(v, "\r\n"):
			err = cmp.Or(err, fmt.Errorf("%s %q cannot be written", key, v))
		default:
			addPair(m, key, strNode(v))
		}
	}
	num := func(key string, v, b int) {
		switch {
		case v == b:
		case v <= 0:
			err = cmp.Or(err, fmt.Errorf("%s %d cannot be written", key, v))
		default:
			addPair(m, key, uintNode(uint64(v)))
		}
	}
	dur := func(key string, v, b time.Duration) {
		switch {
		case v == b:
		case v <= 0:
			err = cmp.Or(err, fmt.Errorf("%s %s cannot be written", key, v))
		default:
			addPair(m, key, strNode(v.String()))
		}
	}
	str("type", c.Type, base.Type)
	num("port", int(c.Port), int(base.Port))
	str("host", c.Host, base.Host)
	str("method", c.Method, base.Method)
	str("path", c.Path, base.Path)
	if !slices.Equal(c.ExpectStatus, base.ExpectStatus) {
		if len(c.ExpectStatus) == 0 {
			err = cmp.Or(err, errors.New("an empty expect_status cannot be written"))
		}
		codes := sequenceNode(true)
		for _, v := range c.ExpectStatus {
			codes.Content = append(codes.Content, uintNode(uint64(v)))
		}
		addPair(m, "expect_status", codes)
	}
	str("expect_body", c.ExpectBody, base.ExpectBody)
	if c.TLSInsecure != base.TLSInsecure {
		addPair(m, "tls_insecure", boolNode(c.TLSInsecure))
	}
	str("ca_file", c.CAFile, base.CAFile)
	str("dns_name", c.DNSName, base.DNSName)
	str("dns_type", c.DNSType, base.DNSType)
	str("expect_rcode", c.ExpectRcode, base.ExpectRcode)
	dur("interval", c.Interval, base.Interval)
	dur("timeout", c.Timeout, base.Timeout)
	num("rise", c.Rise, base.Rise)
	num("fall", c.Fall, base.Fall)
	num("ok", c.OK, base.OK)
	num("degraded_ttl", int(c.DegradedTTL), int(base.DegradedTTL))
	dur("slow_start", c.SlowStart, base.SlowStart)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Node builders. Strings carry the !!str tag, so that the encoder quotes
// those YAML 1.2 would read as another type; strNode also quotes those of
// YAML 1.1 (yes, no, on, off, y, n, numbers like 1:20), since other tools
// read exports too.

func mappingNode(flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func sequenceNode(flow bool) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
	if flow {
		n.Style = yaml.FlowStyle
	}
	return n
}

func addPair(m *yaml.Node, key string, value *yaml.Node) {
	m.Content = append(m.Content, strNode(key), value)
}

// strNode is a string scalar, plain only when no YAML version reads it as
// anything but a string: it starts with a letter or '_' and is not one of
// YAML 1.1's boolean or null words. Anything else is quoted; the encoder
// switches to double quotes where single quotes cannot hold the value.
func strNode(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	if !plainSafe(s) {
		n.Style = yaml.SingleQuotedStyle
	}
	return n
}

func plainSafe(s string) bool {
	if s == "" {
		return false
	}
	c := s[0]
	if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_') {
		return false
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "on", "off", "true", "false", "null":
		return false
	}
	return true
}

func uintNode(v uint64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatUint(v, 10)}
}

// floatNode writes the shortest decimal that reads back as v, without an
// exponent.
func floatNode(v float64) *yaml.Node {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	tag := "!!int"
	if strings.Contains(s, ".") {
		tag = "!!float"
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: s}
}

func boolNode(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}
