package zones

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// ParseMaster reads a zone in the RFC 1035 master file format (section
// 5): $ORIGIN and $TTL directives, relative names, "@", comments and
// records spread over several lines with parentheses. $INCLUDE and
// $GENERATE are refused: a zone is exactly one file, with one line per
// record to point errors at.
//
// origin is the zone apex. When it is empty the apex is taken from the
// first $ORIGIN directive or, failing that, from the owner of the first
// record, which must then be an SOA with an absolute owner name.
//
// Every record remembers the line it starts on. Owner names keep the case
// they were written in. ParseMaster does not validate the zone (Parse
// does); errors in the file are returned as Errors.
func ParseMaster(r io.Reader, source, origin string) (*Zone, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("zones: read %s: %w", source, err)
	}
	z, _, err := parseMaster(data, source, origin)
	return z, err
}

// parseMaster is ParseMaster on bytes. placed reports whether every record
// was matched to the entry it came from; tests and fuzzing require it.
func parseMaster(data []byte, source, origin string) (z *Zone, placed bool, err error) {
	es := scanEntries(data)
	origin, start, fromSOA, oerr := masterOrigin(es, origin)
	if oerr != nil {
		oerr.Source = source
		return nil, false, Errors{oerr}
	}
	z = &Zone{Origin: CanonicalName(origin), Source: source}
	placed, errs := z.readRecords(data, es, start)
	if len(errs) > 0 {
		return nil, false, errs
	}
	if fromSOA && (len(z.Records) == 0 || z.Records[0].RR.Header().Rrtype != dns.TypeSOA) {
		return nil, false, Errors{{Source: source, Line: es.firstRecord().line, Msg: errNoOrigin}}
	}
	return z, placed, nil
}

const errNoOrigin = "cannot tell the zone origin: start the file with $ORIGIN or with an SOA record whose owner name is absolute"

// readRecords runs the miekg parser over data, starting with origin, and
// appends what it finds to z, placing each record on the line of its entry.
func (z *Zone) readRecords(data []byte, es entries, origin string) (placed bool, errs Errors) {
	defer func() {
		// The parser is fed untrusted files; a bug in it must not take the
		// process down (the fuzz corpus keeps any crasher found).
		if p := recover(); p != nil {
			placed, errs = false, Errors{{Source: z.Source, Msg: fmt.Sprintf("cannot parse zone file: parser failure: %v", p)}}
		}
	}()
	cr := &byteCounter{data: data}
	zp := dns.NewZoneParser(cr, origin, "")
	zp.SetIncludeAllowed(false)
	placed = true
	k := 0 // entries before k end before the current read position
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		for k < len(es) && es[k].end < cr.off {
			k++
		}
		// Normally the parser stops at the end of the entry; on some
		// malformed input it stops inside it, without an error.
		in := k < len(es) && es[k].start < cr.off
		var line int
		switch {
		case in && es[k].directive == "$GENERATE":
			return false, Errors{{Source: z.Source, Line: es[k].line, Msg: "$GENERATE is not supported: write the records out"}}
		case in && es[k].directive == "" && !es[k].used:
			es[k].used = true
			line = es[k].line
		default:
			// The scanner and the parser disagree on where records
			// start; the line the record ends on is the best guess.
			placed = false
			line = 1 + bytes.Count(data[:max(cr.off-1, 0)], []byte{'\n'})
		}
		if c := rr.Header().Class; c != dns.ClassINET {
			errs = append(errs, &Error{Source: z.Source, Line: line, Msg: fmt.Sprintf("class %s is not supported, only IN", dns.Class(c))})
			continue
		}
		z.Records = append(z.Records, Record{RR: rr, Line: line})
	}
	if err := zp.Err(); err != nil {
		line, msg := parserMessage(err)
		errs = append(errs, &Error{Source: z.Source, Line: line, Msg: msg})
	}
	return placed, errs
}

// masterOrigin decides the zone origin and the origin the parser starts
// with. fromSOA reports that they were taken from the owner of the first
// record.
func masterOrigin(es entries, origin string) (zone, start string, fromSOA bool, err *Error) {
	if origin != "" {
		if _, ok := dns.IsDomainName(origin); !ok {
			return "", "", false, &Error{Msg: fmt.Sprintf("bad origin %q", origin)}
		}
		return dns.Fqdn(origin), dns.Fqdn(origin), false, nil
	}
	for _, e := range es {
		switch {
		case e.directive == "$ORIGIN" && len(e.tokens) > 1:
			// The parser starts at the root, where a relative $ORIGIN
			// resolves as if it were absolute.
			if e.tokens[1] == "@" {
				return ".", ".", false, nil
			}
			return dns.Fqdn(e.tokens[1]), ".", false, nil
		case e.directive == "$ORIGIN":
			return ".", ".", false, nil // the parser reports the missing name
		case e.directive != "":
			continue
		case e.owner && len(e.tokens) > 0 && dns.IsFqdn(e.tokens[0]):
			if _, ok := dns.IsDomainName(e.tokens[0]); ok {
				return e.tokens[0], e.tokens[0], true, nil
			}
		}
		return "", "", false, &Error{Line: e.line, Msg: errNoOrigin}
	}
	return "", "", false, &Error{Msg: "zone file has no records"}
}

// byteCounter feeds the parser one byte at a time. miekg's lexer reads
// through io.ByteReader when it can instead of buffering, so off is
// exactly how far the parser has read: after each record, within (in
// practice at the end of) the entry the record came from.
type byteCounter struct {
	data []byte
	off  int
}

func (b *byteCounter) ReadByte() (byte, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	b.off++
	return b.data[b.off-1], nil
}

func (b *byteCounter) Read(p []byte) (int, error) {
	if b.off >= len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

// parserMessage turns a miekg parse error, such as
//
//	dns: bad A A: "999.1.1.1" at line: 7:13
//
// into its line and a message for operators: bad A record "999.1.1.1".
func parserMessage(err error) (int, string) {
	s := err.Error()
	i := strings.LastIndex(s, " at line: ")
	if i < 0 {
		return 0, strings.TrimPrefix(s, "dns: ")
	}
	pos := s[i+len(" at line: "):]
	if j := strings.IndexByte(pos, ':'); j >= 0 {
		pos = pos[:j]
	}
	line, _ := strconv.Atoi(pos)
	what, token := strings.TrimPrefix(s[:i], "dns: "), ""
	// The token is quoted with every '"' escaped, so the last `: "` opens it.
	if j := strings.LastIndex(what, `: "`); j >= 0 {
		if t, uerr := strconv.Unquote(what[j+2:]); uerr == nil {
			what, token = what[:j], t
		}
	}
	return line, friendlyMessage(what, token)
}

// lexerErrors are the errors of miekg's lexer, which it reports as the
// token of another error ("garbage after rdata").
var lexerErrors = map[string]bool{
	"extra closing brace": true, "unbalanced brace": true, "unknown RR type": true,
	"unknown class": true, "comment length insufficient for parsing": true,
}

func friendlyMessage(what, token string) string {
	if token == what || lexerErrors[token] {
		return token
	}
	switch what {
	case "$INCLUDE directive not allowed":
		return "$INCLUDE is not supported: a zone is one file"
	case "missing TTL with no previous value":
		return "record has no TTL, and no $TTL or earlier record gives one"
	}
	what = strings.Replace(what, ", not this...", ", got", 1)
	quoted := ""
	switch strings.TrimSpace(token) {
	case "":
		if token == "\n" {
			quoted = " at end of line"
		}
	default:
		quoted = " " + strconv.Quote(token)
	}
	// miekg says "bad <TYPE> <field>"; name the record type instead.
	if f := strings.SplitN(what, " ", 3); len(f) == 3 && f[0] == "bad" {
		if _, ok := dns.StringToType[f[1]]; ok {
			if f[2] == f[1] {
				return "bad " + f[1] + " record" + quoted
			}
			return "bad " + f[1] + " record" + quoted + " (" + strings.ToLower(f[2]) + ")"
		}
	}
	if strings.HasSuffix(what, ", got") && quoted == "" {
		quoted = " nothing"
	}
	return what + quoted
}

// entry is one logical line of a master file: a record or a directive,
// which parentheses may spread over several physical lines (RFC 1035
// section 5.1).
type entry struct {
	line      int      // line of its first token
	start     int      // offset of its first token
	end       int      // offset just past its terminating newline, or len(data)
	owner     bool     // its first token starts the line: an owner or a directive
	directive string   // "$ORIGIN", "$TTL", "$INCLUDE" or "$GENERATE", upper case; "" for records
	tokens    []string // its first maxTokens tokens, as written
	used      bool     // a record has been placed on it
}

const maxTokens = 2

type entries []entry

// firstRecord returns the first entry that is not a directive.
func (es entries) firstRecord() entry {
	for _, e := range es {
		if e.directive == "" {
			return e
		}
	}
	return entry{}
}

// scanEntries splits data into entries. miekg's parser does not say
// where a record starts, so this lexer follows the byte-level rules of its
// own (dns/scan.go, zlexer.Next): quotes, backslash escapes, ';' comments
// and parentheses, with a newline ending an entry outside quotes and
// parentheses. Parentheses and carriage returns outside quotes vanish
// without splitting a token, as they do there. Scanning stops where the
// parser will stop with an error (an extra ')').
func scanEntries(data []byte) entries {
	var (
		es                   entries
		cur                  entry
		content              bool // cur has a token or a quote
		tok                  []byte
		inTok                bool
		quote, commt, escape bool
		ownerPos             = true // no blank yet in this entry
		brace                int
		line                 = 1
	)
	i := 0 // offset of the byte being scanned
	startContent := func() {
		if !content {
			content = true
			cur.line, cur.start, cur.owner = line, i, ownerPos
		}
	}
	addTok := func(c byte) {
		startContent()
		tok, inTok = append(tok, c), true
	}
	endTok := func() {
		if inTok && len(cur.tokens) < maxTokens {
			cur.tokens = append(cur.tokens, string(tok))
		}
		tok, inTok = tok[:0], false
	}
	endEntry := func(end int) {
		endTok()
		if content {
			cur.end = end
			if cur.owner && len(cur.tokens) > 0 {
				switch d := strings.ToUpper(cur.tokens[0]); d {
				case "$ORIGIN", "$TTL", "$INCLUDE", "$GENERATE":
					cur.directive = d
				}
			}
			es = append(es, cur)
		}
		cur, content, ownerPos = entry{}, false, true
	}
	for ; i < len(data); i++ {
		c := data[i]
		switch c {
		case ' ', '\t':
			switch {
			case escape || quote:
				escape = false
				addTok(c)
			case !commt:
				endTok()
				ownerPos = false
			}
		case ';':
			if escape || quote {
				escape = false
				addTok(c)
				break
			}
			endTok()
			commt = true
		case '\r':
			escape = false
			if quote {
				addTok(c)
			}
		case '\n':
			// Inside parentheses a newline neither ends the entry nor,
			// outside a comment, the token: "(1\n2)" is the token "12".
			escape = false
			switch {
			case quote:
				addTok(c)
			case brace == 0:
				commt = false
				endEntry(i + 1)
			case commt:
				commt = false
			}
		case '\\':
			switch {
			case commt:
			case escape:
				escape = false
				addTok(c)
			default:
				escape = true
				addTok(c)
			}
		case '"':
			switch {
			case commt:
			case escape:
				escape = false
				addTok(c)
			default:
				endTok()
				startContent()
				quote = !quote
			}
		case '(', ')':
			switch {
			case commt:
			case escape || quote:
				escape = false
				addTok(c)
			case c == '(':
				brace++
			default:
				if brace--; brace < 0 {
					endEntry(i + 1)
					return es
				}
			}
		default:
			escape = false
			if !commt {
				addTok(c)
			}
		}
		if c == '\n' {
			line++
		}
	}
	endEntry(len(data))
	return es
}
