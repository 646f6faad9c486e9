package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeProbe records calls and answers as told, after an optional delay.
type fakeProbe struct {
	delay time.Duration

	mu    sync.Mutex
	calls map[string][]call
	fail  map[string]bool

	inFlight, maxInFlight atomic.Int32
}

type call struct {
	at    time.Time
	check Check
}

func newFake(delay time.Duration) *fakeProbe {
	return &fakeProbe{delay: delay, calls: map[string][]call{}, fail: map[string]bool{}}
}

func (f *fakeProbe) probe(ctx context.Context, t Target) Result {
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for m := f.maxInFlight.Load(); n > m && !f.maxInFlight.CompareAndSwap(m, n); m = f.maxInFlight.Load() {
	}
	f.mu.Lock()
	f.calls[t.Key] = append(f.calls[t.Key], call{time.Now(), t.Check})
	failing := f.fail[t.Key]
	f.mu.Unlock()
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-ctx.Done():
		}
	}
	r := Result{OK: !failing, At: time.Now()}
	if failing {
		r.Reason = "fake failure"
	}
	return r
}

func (f *fakeProbe) setFail(key string, fail bool) {
	f.mu.Lock()
	f.fail[key] = fail
	f.mu.Unlock()
}

func (f *fakeProbe) callsOf(key string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls[key])
}

// startRun runs s until the returned stop is called (or the test ends).
func startRun(t *testing.T, s *Scheduler, fn func(Target, Transition)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, fn) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastCheck(iv time.Duration) Check {
	return Check{Type: "tcp", Port: 1, Interval: iv, Timeout: iv / 2}
}

func targets(n int, c Check) []Target {
	ts := make([]Target, n)
	for i := range ts {
		ts[i] = Target{Key: fmt.Sprintf("t%03d", i), Addr: loopback, Check: c}
	}
	return ts
}

func stateOfKey(s *Scheduler, key string) State {
	for _, st := range s.Snapshot() {
		if st.Key == key {
			return st.State
		}
	}
	return 255
}

func TestSchedulerInterval(t *testing.T) {
	const iv, slack = 100 * time.Millisecond, 25 * time.Millisecond
	f := newFake(0)
	s := NewScheduler(SchedulerOptions{Probe: f.probe})
	if err := s.SetTargets(targets(20, fastCheck(iv))); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	stop := startRun(t, s, nil)
	time.Sleep(10*iv + iv/2)
	stop()

	var firsts, gaps []time.Duration
	for i := range 20 {
		calls := f.callsOf(fmt.Sprintf("t%03d", i))
		if len(calls) < 8 || len(calls) > 12 {
			t.Errorf("t%03d probed %d times in 10.5 intervals", i, len(calls))
			continue
		}
		firsts = append(firsts, calls[0].at.Sub(start))
		for j := 1; j < len(calls); j++ {
			gaps = append(gaps, calls[j].at.Sub(calls[j-1].at))
		}
	}
	slices.Sort(firsts)
	slices.Sort(gaps)
	t.Logf("first probes %v to %v after start; gaps %v to %v", firsts[0], firsts[len(firsts)-1], gaps[0], gaps[len(gaps)-1])
	if firsts[len(firsts)-1] > iv+slack {
		t.Errorf("a first probe came %v after start, want within the interval", firsts[len(firsts)-1])
	}
	if spread := firsts[len(firsts)-1] - firsts[0]; spread < iv/3 {
		t.Errorf("first probes spread over %v only: lockstep", spread)
	}
	if gaps[0] < iv*9/10-slack/2 || gaps[len(gaps)-1] > iv*11/10+slack {
		t.Errorf("gaps %v to %v, want interval ±10%%", gaps[0], gaps[len(gaps)-1])
	}
	if gaps[0] > iv*97/100 || gaps[len(gaps)-1] < iv*103/100 {
		t.Errorf("gaps %v to %v: no jitter", gaps[0], gaps[len(gaps)-1])
	}
}

func TestSchedulerConcurrencyCap(t *testing.T) {
	const limit = 4
	f := newFake(30 * time.Millisecond) // 60 targets want ~18 probes in flight
	s := NewScheduler(SchedulerOptions{MaxConcurrent: limit, Probe: f.probe})
	s.SetTargets(targets(60, fastCheck(100*time.Millisecond)))
	before := runtime.NumGoroutine()
	stop := startRun(t, s, nil)
	time.Sleep(300 * time.Millisecond)
	during := runtime.NumGoroutine()
	time.Sleep(300 * time.Millisecond)
	stop()

	if m := f.maxInFlight.Load(); m != limit {
		t.Errorf("at most %d probes in flight, want exactly %d (saturated)", m, limit)
	}
	// Run's goroutine, the deliverer and the workers, whatever the load.
	if extra := during - before; extra > limit+2 {
		t.Errorf("%d more goroutines while running, want at most %d", extra, limit+2)
	}
	total := 0
	for i := range 60 {
		total += len(f.callsOf(fmt.Sprintf("t%03d", i)))
	}
	// 0.6 s at 4 probes per 30 ms is at most 80 probes.
	if total < 50 {
		t.Errorf("only %d probes in 0.6 s at capacity", total)
	}
}

func TestSchedulerSetTargets(t *testing.T) {
	const iv = 50 * time.Millisecond
	check := fastCheck(iv)
	check.Rise, check.Fall = 2, 2
	f := newFake(0)
	s := NewScheduler(SchedulerOptions{Probe: f.probe})
	var mu sync.Mutex
	var got []string
	startRun(t, s, func(tg Target, tr Transition) {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s %v", tr.Key, tr.Up))
		mu.Unlock()
	})
	transitions := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}

	a, b, c := Target{Key: "a", Addr: loopback, Check: check}, Target{Key: "b", Addr: loopback, Check: check}, Target{Key: "c", Addr: loopback, Check: check}
	if err := s.SetTargets([]Target{a, b, c}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "a, b and c up", func() bool { return len(transitions()) == 3 })

	// Remove a, keep b, change c's check, add d.
	c2 := c
	c2.Check.Path = "/new"
	d := Target{Key: "d", Addr: loopback, Check: check}
	if err := s.SetTargets([]Target{b, c2, d}); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	if st := stateOfKey(s, "c"); st != Up {
		t.Errorf("c is %s after a check change, want it to stay up", st)
	}
	waitFor(t, time.Second, "d up", func() bool { return stateOfKey(s, "d") == Up })
	time.Sleep(2 * iv)

	for _, k := range []string{"a", "b", "c", "d"} {
		var after []call
		for _, cl := range f.callsOf(k) {
			if cl.at.After(changed.Add(5 * time.Millisecond)) {
				after = append(after, cl)
			}
		}
		switch k {
		case "a":
			if len(after) > 0 {
				t.Errorf("a probed %d times after removal", len(after))
			}
		case "c":
			if len(after) == 0 {
				t.Errorf("c not probed after its change")
			}
			for _, cl := range after {
				if cl.check.Path != "/new" {
					t.Fatalf("c probed with path %q after the change", cl.check.Path)
				}
			}
		default:
			if len(after) == 0 {
				t.Errorf("%s not probed after the change", k)
			}
		}
	}
	var keys []string
	for _, st := range s.Snapshot() {
		keys = append(keys, st.Key)
	}
	if !slices.Equal(keys, []string{"b", "c", "d"}) {
		t.Errorf("snapshot keys %q, want b c d", keys)
	}
	if want := []string{"a true", "b true", "c true", "d true"}; !sameSet(transitions(), want) {
		t.Errorf("transitions %q, want %q (no new ones for b and c)", transitions(), want)
	}

	// A new address is a new endpoint: it starts over.
	c3 := c2
	c3.Addr = netip.MustParseAddr("127.0.0.2")
	s.SetTargets([]Target{b, c3, d})
	if st := stateOfKey(s, "c"); st != Unknown {
		t.Errorf("c is %s after an address change, want unknown", st)
	}
	waitFor(t, time.Second, "c up again", func() bool { return len(transitions()) == 5 })
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestSetTargetsInvalid(t *testing.T) {
	s := NewScheduler(SchedulerOptions{})
	good := Target{Key: "good", Addr: loopback, Check: Check{Type: "tcp", Port: 80}}
	err := s.SetTargets([]Target{
		good,
		{Key: "", Addr: loopback, Check: good.Check},
		{Key: "noaddr", Check: good.Check},
		{Key: "badcheck", Addr: loopback, Check: Check{Type: "tcp"}},
		{Key: "good", Addr: loopback, Check: good.Check},
	})
	for _, want := range []string{`target "": empty key`, `"noaddr": invalid address`, `"badcheck": health: check: port required`, `"good": duplicate key`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if snap := s.Snapshot(); len(snap) != 1 || snap[0].Key != "good" || snap[0].State != Unknown {
		t.Errorf("snapshot %+v, want the good target, unknown", snap)
	}
}

func TestSchedulerTransitions(t *testing.T) {
	const iv = 30 * time.Millisecond
	check := fastCheck(iv)
	check.Rise, check.Fall = 2, 2
	f := newFake(0)
	s := NewScheduler(SchedulerOptions{Probe: f.probe})
	s.SetTargets(targets(5, check))

	var (
		mu          sync.Mutex
		byKey       = map[string][]Transition{}
		inCallback  atomic.Int32
		overlapping atomic.Bool
	)
	stop := startRun(t, s, func(tg Target, tr Transition) {
		if inCallback.Add(1) > 1 {
			overlapping.Store(true)
		}
		defer inCallback.Add(-1)
		if tg.Key != tr.Key || tr.Last.At != tr.At || tr.Last.OK != tr.Up {
			t.Errorf("inconsistent transition %+v for %s", tr, tg.Key)
		}
		time.Sleep(2 * time.Millisecond) // widen the window for overlap
		mu.Lock()
		byKey[tr.Key] = append(byKey[tr.Key], tr)
		mu.Unlock()
	})
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range byKey {
			n += len(v)
		}
		return n
	}
	waitFor(t, time.Second, "all up", func() bool { return count() == 5 })
	f.setFail("t000", true)
	f.setFail("t001", true)
	waitFor(t, time.Second, "two down", func() bool { return count() == 7 })
	f.setFail("t000", false)
	f.setFail("t001", false)
	waitFor(t, time.Second, "two up again", func() bool { return count() == 9 })
	time.Sleep(3 * iv)
	stop()

	if overlapping.Load() {
		t.Error("onTransition ran concurrently")
	}
	for i := range 5 {
		k := fmt.Sprintf("t%03d", i)
		var seq []string
		for _, tr := range byKey[k] {
			seq = append(seq, fmt.Sprintf("%v %s", tr.Up, tr.Reason))
		}
		want := []string{"true 2 consecutive successes"}
		if i < 2 {
			want = append(want, "false fake failure", "true 2 consecutive successes")
		}
		if !slices.Equal(seq, want) {
			t.Errorf("%s: transitions %q, want %q", k, seq, want)
		}
	}
	snap := s.Snapshot()
	if js, err := json.Marshal(snap[0]); err != nil || !strings.Contains(string(js), `"State":"up"`) {
		t.Errorf("status JSON %s (%v) lacks the state as text", js, err)
	}
	if snap[0].State != Up || snap[0].Reason != "2 consecutive successes" || snap[0].Since.IsZero() || !snap[0].Last.OK {
		t.Errorf("snapshot %+v", snap[0])
	}
}

func TestSchedulerRunTwice(t *testing.T) {
	f := newFake(0)
	s := NewScheduler(SchedulerOptions{Probe: f.probe})
	s.SetTargets(targets(3, fastCheck(20*time.Millisecond)))
	stop := startRun(t, s, nil)
	time.Sleep(10 * time.Millisecond)
	if err := s.Run(context.Background(), nil); !errors.Is(err, ErrRunning) {
		t.Errorf("second Run: %v, want ErrRunning", err)
	}
	waitFor(t, time.Second, "probes", func() bool { return len(f.callsOf("t002")) > 0 })
	stop()

	// Run again after it returned: every target is probed again.
	before := map[string]int{}
	for _, k := range []string{"t000", "t001", "t002"} {
		before[k] = len(f.callsOf(k))
	}
	startRun(t, s, nil)
	for k, n := range before {
		waitFor(t, time.Second, k+" probed after a restart", func() bool { return len(f.callsOf(k)) > n+1 })
	}
}

// TestSchedulerHTTP runs the real probe against a real server taken down
// and brought back, and checks that each change is seen after about fall,
// then rise, intervals.
func TestSchedulerHTTP(t *testing.T) {
	const iv, rise, fall = 100 * time.Millisecond, 3, 3
	f, ts := startFlip(t, false)
	check := Check{Type: "http", Port: portOf(t, ts.Listener.Addr()), ExpectBody: "UP",
		Interval: iv, Timeout: 50 * time.Millisecond, Rise: rise, Fall: fall}
	s := NewScheduler(SchedulerOptions{})
	s.SetTargets([]Target{{Key: "web", Addr: loopback, Check: check}})
	trs := make(chan Transition, 10)
	startRun(t, s, func(_ Target, tr Transition) { trs <- tr })

	next := func(what string) Transition {
		t.Helper()
		select {
		case tr := <-trs:
			return tr
		case <-time.After(2 * time.Second):
			t.Fatalf("no transition %s", what)
			return Transition{}
		}
	}
	if tr := next("to up"); !tr.Up {
		t.Fatalf("first transition %+v, want up", tr)
	}

	// The first probe after a flip comes within one (jittered) interval,
	// the deciding one threshold-1 intervals later.
	within := func(d time.Duration, n int) bool {
		return d >= time.Duration(n-1)*iv*9/10 && d <= time.Duration(n)*iv*11/10+30*time.Millisecond
	}
	f.mode.Store(wrongBody)
	flipped := time.Now()
	down := next("to down")
	if down.Up || down.Reason != `body lacks "UP"` {
		t.Fatalf("transition %+v, want down for the body", down)
	}
	d := down.At.Sub(flipped)
	t.Logf("down %v after the flip (fall %d × interval %v)", d, fall, iv)
	if !within(d, fall) {
		t.Errorf("down %v after the flip, want about %d intervals", d, fall)
	}

	f.mode.Store(healthy)
	flipped = time.Now()
	up := next("back up")
	if !up.Up || up.Reason != "3 consecutive successes" {
		t.Fatalf("transition %+v, want up", up)
	}
	d = up.At.Sub(flipped)
	t.Logf("up %v after the flip (rise %d × interval %v)", d, rise, iv)
	if !within(d, rise) {
		t.Errorf("up %v after the flip, want about %d intervals", d, rise)
	}
}
