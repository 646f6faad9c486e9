package zones

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"go.yaml.in/yaml/v3"
)

// Defaults of the YAML format: the TTL of records that give none, and the
// SOA timers. minimum is the negative-caching TTL (RFC 2308 section 4),
// kept short so that a name just added is not hidden for long.
const (
	yamlDefaultTTL = 3600
	yamlRefresh    = 7200
	yamlRetry      = 3600
	yamlExpire     = 1209600
	yamlMinimum    = 300
)

// ParseYAML reads a zone in Meridian's declarative format:
//
//	origin: example.com.   # required, the apex
//	ttl: 3600              # default TTL of records without one (3600)
//	soa:                   # required unless records hold an SOA
//	  ns: ns1              # names are relative to origin unless they end in "."
//	  mbox: hostmaster     # the RNAME
//	  serial: 2026112201
//	  refresh: 7200        # optional, as are retry (3600), expire (1209600),
//	  minimum: 300         # minimum (300) and ttl (the zone's)
//	records:
//	  - name: "@"          # "@" is the apex; "*" and "*.foo" are wildcards
//	    type: NS
//	    data: [ns1, ns2]   # RDATA in presentation format, one RR per item
//	  - name: www
//	    type: A
//	    ttl: 60
//	    data: 192.0.2.1
//
// data is the RDATA exactly as a master file would have it, so TXT strings
// need their quotes inside the YAML string: data: '"v=spf1 -all"'.
// Unknown keys are errors; anchors and aliases are not supported. Each
// record remembers the line of its item, or of its data item when data is
// a list. ParseYAML does not validate the
// zone (Parse does); errors in the file are returned as Errors.
func ParseYAML(data []byte, source string) (*Zone, error) {
	root, err := decodeYAML(data, source)
	if err != nil {
		return nil, err
	}
	y := &yamlZone{z: &Zone{Source: source}, ttl: yamlDefaultTTL}
	y.load(root)
	if len(y.errs) > 0 {
		sort.SliceStable(y.errs, func(i, j int) bool { return y.errs[i].Line < y.errs[j].Line })
		return nil, y.errs
	}
	return y.z, nil
}

// yamlSections are the top-level keys, in the order they are applied:
// records need the origin and default TTL whatever order the file gives.
// A new section is one more entry here.
var yamlSections = []struct {
	key      string
	required bool
	load     func(*yamlZone, *yaml.Node)
}{
	{"origin", true, (*yamlZone).loadOrigin},
	{"ttl", false, (*yamlZone).loadTTL},
	{"soa", false, (*yamlZone).loadSOA},
	{"records", false, (*yamlZone).loadRecords},
	{"datacenters", false, (*yamlZone).loadDatacenters},
	{"pools", false, (*yamlZone).loadPools},
}

// yamlZone is the state of one YAML zone being read.
type yamlZone struct {
	z    *Zone
	ttl  uint32
	errs Errors
}

func (y *yamlZone) errorf(n *yaml.Node, format string, args ...any) {
	y.errs = append(y.errs, &Error{Source: y.z.Source, Line: n.Line, Msg: fmt.Sprintf(format, args...)})
}

func (y *yamlZone) load(root *yaml.Node) {
	keys := make([]string, len(yamlSections))
	for i, s := range yamlSections {
		keys[i] = s.key
	}
	fields := y.mapping(root, "zone", keys)
	if fields == nil {
		return
	}
	for _, s := range yamlSections {
		n := fields[s.key]
		switch {
		case n != nil:
			s.load(y, n)
		case s.required:
			y.errorf(root, "missing key %s", s.key)
		}
		if y.z.Origin == "" {
			return // nothing else can be read without it
		}
	}
}

// mapping returns the values of a mapping node by key, reporting keys
// not in allowed, repeated keys and anything that is not a mapping. A
// null node is an empty mapping.
func (y *yamlZone) mapping(n *yaml.Node, what string, allowed []string) map[string]*yaml.Node {
	if !y.plain(n) {
		return nil
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return map[string]*yaml.Node{}
	}
	if n.Kind != yaml.MappingNode {
		y.errorf(n, "%s: want a mapping, got %s", what, describe(n))
		return nil
	}
	fields := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		switch key := k.Value; {
		case k.Kind != yaml.ScalarNode:
			y.errorf(k, "%s: keys must be strings", what)
		case !contains(allowed, key):
			y.errorf(k, "%s: unknown key %s", what, key)
		case fields[key] != nil:
			y.errorf(k, "%s: key %s given twice (first at line %d)", what, key, fields[key].Line)
		default:
			fields[key] = val
		}
	}
	return fields
}

// plain reports whether n can be read: aliases and merge keys are not
// supported, so that each value has exactly one place in the file.
func (y *yamlZone) plain(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode {
		y.errorf(n, "aliases are not supported")
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describe names the kind of a node for error messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "an alias"
}

// str reads a non-empty scalar.
func (y *yamlZone) str(n *yaml.Node, what string) (string, bool) {
	if !y.plain(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" || n.Value == "" {
		y.errorf(n, "%s: want a value, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

// uint32 reads a decimal number of at most 32 bits: a TTL, serial or timer.
func (y *yamlZone) uint32(n *yaml.Node, what string) (uint32, bool) {
	s, ok := y.str(n, what)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		y.errorf(n, "%s: want a number from 0 to 4294967295, got %q", what, s)
		return 0, false
	}
	return uint32(v), true
}

// name reads a domain name as written, "@" or relative names included;
// the RR parser resolves it against the origin. Characters that would
// end a token of the master-file line it is placed in are refused.
func (y *yamlZone) name(n *yaml.Node, what string) (string, bool) {
	s, ok := y.str(n, what)
	if !ok {
		return "", false
	}
	if strings.ContainsAny(s, " \t\r\n;()\"") || strings.HasPrefix(s, "$") {
		y.errorf(n, "%s: bad name %q", what, s)
		return "", false
	}
	return s, true
}

func (y *yamlZone) loadOrigin(n *yaml.Node) {
	s, ok := y.name(n, "origin")
	if !ok {
		return
	}
	if _, ok := dns.IsDomainName(s); !ok || s == "@" {
		y.errorf(n, "origin: bad name %q", s)
		return
	}
	y.z.Origin = CanonicalName(s)
}

func (y *yamlZone) loadTTL(n *yaml.Node) {
	if v, ok := y.uint32(n, "ttl"); ok {
		y.ttl = v
	}
}

func (y *yamlZone) loadSOA(n *yaml.Node) {
	f := y.mapping(n, "soa", []string{"ns", "mbox", "serial", "refresh", "retry", "expire", "minimum", "ttl"})
	if f == nil {
		return
	}
	var names [2]string
	for i, key := range []string{"ns", "mbox"} {
		if f[key] == nil {
			y.errorf(n, "soa: missing key %s", key)
			return
		}
		s, ok := y.name(f[key], "soa "+key)
		if !ok {
			return
		}
		names[i] = s
	}
	if f["serial"] == nil {
		y.errorf(n, "soa: missing key serial")
		return
	}
	nums := []struct {
		key string
		def uint32
	}{{"serial", 0}, {"refresh", yamlRefresh}, {"retry", yamlRetry}, {"expire", yamlExpire}, {"minimum", yamlMinimum}, {"ttl", y.ttl}}
	vals := make([]uint32, len(nums))
	for i, num := range nums {
		vals[i] = num.def
		if f[num.key] == nil {
			continue
		}
		v, ok := y.uint32(f[num.key], "soa "+num.key)
		if !ok {
			return
		}
		vals[i] = v
	}
	rdata := fmt.Sprintf("%s %s %d %d %d %d %d", names[0], names[1], vals[0], vals[1], vals[2], vals[3], vals[4])
	y.addRR(n, n, "@", vals[5], "SOA", rdata)
}

func (y *yamlZone) loadRecords(n *yaml.Node) {
	if !y.plain(n) || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
		return
	}
	if n.Kind != yaml.SequenceNode {
		y.errorf(n, "records: want a list, got %s", describe(n))
		return
	}
	for _, item := range n.Content {
		y.loadRecord(item)
	}
}

func (y *yamlZone) loadRecord(n *yaml.Node) {
	f := y.mapping(n, "record", []string{"name", "type", "ttl", "data"})
	if f == nil {
		return
	}
	for _, key := range []string{"name", "type", "data"} {
		if f[key] == nil {
			y.errorf(n, "record: missing key %s", key)
			return
		}
	}
	name, ok := y.name(f["name"], "record name")
	if !ok {
		return
	}
	typ, ok := y.str(f["type"], "record type")
	if !ok {
		return
	}
	if _, known := dns.StringToType[strings.ToUpper(typ)]; !known {
		y.errorf(f["type"], "record %s: unknown type %q", name, typ)
		return
	}
	ttl := y.ttl
	if f["ttl"] != nil {
		if ttl, ok = y.uint32(f["ttl"], "record ttl"); !ok {
			return
		}
	}
	data := f["data"]
	if !y.plain(data) {
		return
	}
	items := []*yaml.Node{data}
	if data.Kind == yaml.SequenceNode {
		items = data.Content
		if len(items) == 0 {
			y.errorf(data, "record %s %s: empty data list", name, typ)
		}
	}
	for _, d := range items {
		rdata, ok := y.str(d, "record data")
		if !ok {
			continue
		}
		item := n
		if d != data {
			item = d
		}
		y.addRR(item, d, name, ttl, typ, rdata)
	}
}

// addRR parses one record written as a master-file line, so that the
// RDATA syntax is exactly that of zone files and relative names resolve
// against the origin. The record takes the line of item; errors point at
// the data.
func (y *yamlZone) addRR(item, data *yaml.Node, name string, ttl uint32, typ, rdata string) {
	typ = strings.ToUpper(typ)
	if strings.ContainsAny(rdata, "\r\n") {
		y.errorf(data, "%s %s: data must be on one line", name, typ)
		return
	}
	text := fmt.Sprintf("%s %d IN %s %s\n", name, ttl, typ, rdata)
	rr, err := parseOneRR(text, y.z.Origin)
	if err != nil {
		_, msg := parserMessage(err)
		y.errorf(data, "%s %s: %s", name, typ, msg)
		return
	}
	y.z.Records = append(y.z.Records, Record{RR: rr, Line: item.Line})
}

// parseOneRR parses text, which must hold exactly one record.
func parseOneRR(text, origin string) (rr dns.RR, err error) {
	defer func() {
		if p := recover(); p != nil {
			rr, err = nil, fmt.Errorf("parser failure: %v", p)
		}
	}()
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	zp.SetIncludeAllowed(false)
	rr, ok := zp.Next()
	if err := zp.Err(); err != nil {
		return nil, err
	}
	if !ok || rdataEmpty(rr) {
		return nil, errors.New("no data")
	}
	if _, more := zp.Next(); more || zp.Err() != nil {
		return nil, errors.New("data holds more than one record")
	}
	return rr, nil
}

// yamlLine finds the line in the errors of the YAML library, which only
// say it in their text ("yaml: line 3: did not find expected key").
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decodeYAML parses data into its one document's root node.
func decodeYAML(data []byte, source string) (*yaml.Node, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&doc)
	if err == nil && len(doc.Content) == 1 {
		var next yaml.Node
		switch err2 := dec.Decode(&next); {
		case err2 == io.EOF:
			return doc.Content[0], nil
		case err2 == nil:
			return nil, Errors{{Source: source, Line: next.Line, Msg: "more than one YAML document"}}
		default:
			err = err2
		}
	}
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return nil, Errors{{Source: source, Msg: "empty zone file"}}
	case yamlLine.MatchString(err.Error()):
		m := yamlLine.FindStringSubmatch(err.Error())
		line, _ := strconv.Atoi(m[1])
		return nil, Errors{{Source: source, Line: line, Msg: m[2]}}
	}
	return nil, Errors{{Source: source, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
}
