package agentapi

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/meridiandns/meridian/store/postgres"
)

// Status is a parsed "status" field.
type Status struct {
	State         string // postgres.AgentUp, AgentDown or AgentDrain
	WeightPercent *int   // "75%"
	MaxConn       *int   // "maxconn:30"
	Note          string // after "#", or "maint"
}

// ParseStatus reads the "status" of a report: one of up, down or drain,
// or words of HAProxy's agent-check vocabulary, separated by spaces, tabs
// or commas, case-insensitive:
//
//   - up, ready: up. down, fail, stopped: down. drain: drain.
//   - maint: drain, noted "maint" (HAProxy's maintenance takes a server
//     out of the farm; for DNS that is what drain does).
//   - N%: the weight, as a percentage of the configured one; alone, 0%
//     means drain (as in HAProxy) and any other percentage up.
//   - maxconn:N: the capacity. Alone, it means up.
//   - # and what follows: a note, the message when none is given.
//
// HAProxy's operational words (up, down, fail, stopped) and admin words
// (ready, drain, maint) combine: down wins, then drain or maint, then up;
// so "up 75%" is up at weight 75% and "up drain" is drain. Two different
// words of one kind ("up down") are an error.
func ParseStatus(s string) (Status, error) {
	var st Status
	if i := strings.IndexByte(s, '#'); i >= 0 {
		st.Note = strings.TrimSpace(s[i+1:])
		s = s[:i]
	}
	var op, adm string
	set := func(kind *string, word string) error {
		if *kind != "" && *kind != word {
			return fmt.Errorf("status %q: %s and %s contradict each other", s, *kind, word)
		}
		*kind = word
		return nil
	}
	words := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == ' ' || r == '\t' || r == ',' })
	if len(words) == 0 {
		return Status{}, errors.New("status is empty: want up, down or drain")
	}
	for _, w := range words {
		var err error
		switch w {
		case "up":
			err = set(&op, "up")
		case "down", "fail", "stopped":
			err = set(&op, "down")
		case "ready":
			err = set(&adm, "ready")
		case "drain":
			err = set(&adm, "drain")
		case "maint":
			err = set(&adm, "maint")
		default:
			var n int
			switch {
			case strings.HasSuffix(w, "%"):
				if n, err = number(w[:len(w)-1], 100000); err != nil {
					return Status{}, fmt.Errorf("status word %q: want a percentage such as 75%%", w)
				}
				if st.WeightPercent != nil && *st.WeightPercent != n {
					return Status{}, fmt.Errorf("status %q: two weights", s)
				}
				st.WeightPercent = &n
			case strings.HasPrefix(w, "maxconn:"):
				if n, err = number(w[len("maxconn:"):], 1<<31-1); err != nil {
					return Status{}, fmt.Errorf("status word %q: want maxconn:N with N 0 or more", w)
				}
				if st.MaxConn != nil && *st.MaxConn != n {
					return Status{}, fmt.Errorf("status %q: two maxconn values", s)
				}
				st.MaxConn = &n
			default:
				return Status{}, fmt.Errorf("status word %q: want up, down, drain, or HAProxy's ready, maint, fail, stopped, N%% or maxconn:N", w)
			}
		}
		if err != nil {
			return Status{}, err
		}
	}
	switch {
	case op == "down":
		st.State = postgres.AgentDown
	case adm == "drain" || adm == "maint":
		st.State = postgres.AgentDrain
	case op == "up" || adm == "ready":
		st.State = postgres.AgentUp
	case st.WeightPercent != nil && *st.WeightPercent == 0:
		st.State = postgres.AgentDrain
	default: // a weight or maxconn alone
		st.State = postgres.AgentUp
	}
	if adm == "maint" && st.Note == "" {
		st.Note = "maint"
	}
	return st, nil
}

// number reads a decimal integer from 0 to max: digits only, so that
// neither a sign ("+5", "-0") nor anything else strconv takes passes.
func number(s string, max int) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errors.New("bad number")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > max {
		return 0, errors.New("bad number")
	}
	return n, nil
}
