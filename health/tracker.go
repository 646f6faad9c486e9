package health

import "strconv"

// State is what the Tracker concluded about an endpoint.
type State uint8

// States. Unknown lasts until the first verdict.
const (
	Unknown State = iota
	Up
	Down
)

// String returns "up", "down" or "unknown".
func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// MarshalText makes a State read "up", "down" or "unknown" in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Tracker turns one endpoint's probe results into a state, with
// hysteresis as in gdnsd (libgdnsd/mon.c, gdnsd_mon_state_updater):
//
//   - Unknown (the zero value) becomes Up after Rise consecutive successes,
//     or Down after Fall consecutive failures.
//   - Up counts failures and forgets them only after OK consecutive
//     successes; it becomes Down when the count reaches Fall. A few
//     scattered failures therefore never take an endpoint down, but
//     failures that keep coming do, even between successes.
//   - Down becomes Up after Rise consecutive successes; any failure
//     restarts the count.
//
// A Tracker is not safe for concurrent use; the Scheduler keeps one per
// target and feeds it from one probe at a time.
type Tracker struct {
	state State
	succ  int // consecutive successes (Unknown, Down) or since the last failure (Up)
	fail  int // consecutive failures (Unknown) or not yet forgiven ones (Up)
}

// State returns the current state.
func (t *Tracker) State() State { return t.state }

// Observe feeds one result, judged with c's thresholds (zero means the
// default). changed tells whether the state changed; up is the state after
// r. reason explains a change: r's reason for a change to down, "N
// consecutive successes" for a change to up. It is "" when nothing changed.
func (t *Tracker) Observe(r Result, c Check) (changed bool, up bool, reason string) {
	rise, fall, ok := c.thresholds()
	switch t.state {
	case Unknown:
		if r.OK {
			t.succ, t.fail = t.succ+1, 0
			if t.succ >= rise {
				return t.become(Up, successes(rise))
			}
		} else {
			t.succ, t.fail = 0, t.fail+1
			if t.fail >= fall {
				return t.become(Down, r.Reason)
			}
		}
	case Up:
		if r.OK {
			if t.fail > 0 {
				t.succ++
				if t.succ >= ok {
					t.succ, t.fail = 0, 0
				}
			}
		} else {
			t.succ, t.fail = 0, t.fail+1
			if t.fail >= fall {
				return t.become(Down, r.Reason)
			}
		}
	case Down:
		if !r.OK {
			t.succ = 0
			break
		}
		t.succ++
		if t.succ >= rise {
			return t.become(Up, successes(rise))
		}
	}
	return false, t.state == Up, ""
}

func (t *Tracker) become(s State, reason string) (bool, bool, string) {
	*t = Tracker{state: s}
	return true, s == Up, reason
}

func successes(n int) string {
	if n == 1 {
		return "1 consecutive success"
	}
	return strconv.Itoa(n) + " consecutive successes"
}
