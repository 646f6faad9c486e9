package health

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultMaxConcurrent is the default cap on probes in flight.
const DefaultMaxConcurrent = 256

// ErrRunning is returned by Run when the scheduler already runs.
var ErrRunning = errors.New("health: scheduler already running")

// SchedulerOptions configures a Scheduler. The zero value is usable.
type SchedulerOptions struct {
	// MaxConcurrent caps the probes in flight (default 256). It is also
	// the number of worker goroutines.
	MaxConcurrent int
	Logger        *slog.Logger // nil discards
	// Probe runs one probe (default Probe). It must honour ctx and return
	// within about the check's timeout.
	Probe func(context.Context, Target) Result
}

// Transition is a change of an endpoint's state.
type Transition struct {
	Key    string
	Up     bool
	Reason string
	At     time.Time // when the deciding probe finished
	Last   Result    // the deciding probe
}

// Status is one target's state, for a status page.
type Status struct {
	Key   string
	State State
	// Reason and Since describe the last change; both are zero while the
	// state is Unknown.
	Reason string
	Since  time.Time
	Last   Result // zero before the first probe
}

// Scheduler probes a changing set of targets, each every Check.Interval,
// and reports state changes. Its methods are safe for concurrent use.
//
// One goroutine dispatches probes from a min-heap of due times driven by a
// single timer, to a fixed pool of MaxConcurrent workers; a probe that
// finishes schedules the next one for its target. Probes are spread over
// time: the first one comes at a random point within the interval, then
// each follows its predecessor's due time by the interval ±10%.
type Scheduler struct {
	maxConc int
	log     *slog.Logger
	probe   func(context.Context, Target) Result

	mu       sync.Mutex
	entries  map[string]*entry
	due      dueHeap
	inFlight int
	running  bool
	pending  []delivery // transitions not yet handed to the callback

	wake   chan struct{} // to the dispatcher: the heap top or capacity changed
	notify chan struct{} // to the deliverer: pending is not empty
}

// entry is one target's schedule and state; Scheduler.mu guards it.
type entry struct {
	target  Target // with check defaults applied
	tracker Tracker
	next    time.Time // when the next probe is due
	index   int       // in the heap; -1 while a probe is in flight
	// gen changes when the target's check or address does, so that a
	// probe started before the change is not counted.
	gen     uint64
	cancel  context.CancelFunc // of the probe in flight
	removed bool

	last   Result
	since  time.Time
	reason string
}

type job struct {
	e      *entry
	gen    uint64
	due    time.Time
	target Target
	ctx    context.Context
	cancel context.CancelFunc
}

type delivery struct {
	target Target
	from   State
	tr     Transition
}

// NewScheduler returns a scheduler with no targets.
func NewScheduler(opts SchedulerOptions) *Scheduler {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Probe == nil {
		opts.Probe = Probe
	}
	return &Scheduler{
		maxConc: opts.MaxConcurrent,
		log:     opts.Logger,
		probe:   opts.Probe,
		entries: make(map[string]*entry),
		wake:    make(chan struct{}, 1),
		notify:  make(chan struct{}, 1),
	}
}

// SetTargets replaces the set of targets, at any time. New targets are
// first probed at a random point within their interval; removed ones stop
// (a probe in flight is canceled and its result dropped). A target whose
// check changed is probed with the new check from then on but keeps its
// state, so that editing, say, the interval causes no transition; one
// whose address changed starts over as Unknown. Unchanged targets are not
// disturbed.
//
// Invalid targets (empty key, invalid address, check failing Validate,
// duplicate key) are left out and reported in the error; the others are
// applied regardless, so that one bad row does not stop all checking.
func (s *Scheduler) SetTargets(targets []Target) error {
	var errs []error
	want := make(map[string]Target, len(targets))
	for _, t := range targets {
		t.Check = t.Check.WithDefaults()
		var err error
		switch _, dup := want[t.Key]; {
		case t.Key == "":
			err = errors.New("empty key")
		case dup:
			err = errors.New("duplicate key")
		case !t.Addr.IsValid():
			err = errors.New("invalid address")
		default:
			err = t.Check.Validate()
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("target %q: %w", t.Key, err))
			continue
		}
		want[t.Key] = t
	}

	s.mu.Lock()
	now := time.Now()
	for k, e := range s.entries {
		if _, ok := want[k]; !ok {
			s.remove(e)
		}
	}
	for k, t := range want {
		e, ok := s.entries[k]
		switch {
		case !ok:
			e = &entry{target: t, index: -1, next: now.Add(offset(t.Check.Interval))}
			s.entries[k] = e
			heap.Push(&s.due, e)
		case e.target.Addr != t.Addr:
			e.tracker, e.last, e.since, e.reason = Tracker{}, Result{}, time.Time{}, ""
			s.retarget(e, t, now)
		case !e.target.Check.equal(t.Check):
			s.retarget(e, t, now)
		}
	}
	s.mu.Unlock()
	s.kick(s.wake)

	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("health: set targets: %w", err)
	}
	return nil
}

// retarget makes e probe t from now on.
func (s *Scheduler) retarget(e *entry, t Target, now time.Time) {
	e.target = t
	e.gen++
	if e.cancel != nil {
		e.cancel() // its result would be dropped anyway
	}
	if e.index >= 0 {
		e.next = now.Add(offset(t.Check.Interval))
		heap.Fix(&s.due, e.index)
	}
}

func (s *Scheduler) remove(e *entry) {
	e.removed = true
	if e.index >= 0 {
		heap.Remove(&s.due, e.index)
	}
	if e.cancel != nil {
		e.cancel()
	}
	delete(s.entries, e.target.Key)
}

// Snapshot returns every target's status, sorted by key.
func (s *Scheduler) Snapshot() []Status {
	s.mu.Lock()
	out := make([]Status, 0, len(s.entries))
	for _, e := range s.entries {
		out = append(out, Status{
			Key: e.target.Key, State: e.tracker.State(),
			Reason: e.reason, Since: e.since, Last: e.last,
		})
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Run probes the targets until ctx ends, then waits for the probes in
// flight (whose results it drops) and for onTransition, and returns nil.
// onTransition, which may be nil, is called for each state change, in
// order, from one goroutine at a time; a slow callback delays later
// transitions but not probing. Run may be called again after it returned.
func (s *Scheduler) Run(ctx context.Context, onTransition func(Target, Transition)) error {
	s.mu.Lock()
	if s.running {
		s.mu.Unlock()
		return ErrRunning
	}
	s.running = true
	// Targets set before Run would all be overdue at once.
	now := time.Now()
	for _, e := range s.due {
		e.next = now.Add(offset(e.target.Check.Interval))
	}
	heap.Init(&s.due)
	s.mu.Unlock()

	jobs := make(chan job, s.maxConc) // never blocks: inFlight <= maxConc
	var workers sync.WaitGroup
	for range s.maxConc {
		workers.Go(func() {
			for j := range jobs {
				r := s.probe(j.ctx, j.target)
				j.cancel()
				s.complete(ctx, j, r)
			}
		})
	}
	delivered := make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(delivered)
		s.deliver(stop, onTransition)
	}()

	s.dispatch(ctx, jobs)
	close(jobs)
	workers.Wait()
	close(stop)
	<-delivered

	s.mu.Lock()
	s.running = false
	s.mu.Unlock()
	return nil
}

// dispatch starts the probes that are due, as capacity allows, until ctx
// ends.
func (s *Scheduler) dispatch(ctx context.Context, jobs chan<- job) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		now := time.Now()
		for s.inFlight < s.maxConc && len(s.due) > 0 && !s.due[0].next.After(now) {
			e := heap.Pop(&s.due).(*entry)
			pctx, cancel := context.WithCancel(ctx)
			e.cancel = cancel
			s.inFlight++
			jobs <- job{e: e, gen: e.gen, due: e.next, target: e.target, ctx: pctx, cancel: cancel}
		}
		wait := time.Duration(-1)
		if s.inFlight < s.maxConc && len(s.due) > 0 {
			wait = s.due[0].next.Sub(now)
		}
		s.mu.Unlock()

		// At capacity, or with nothing scheduled, only a completion or
		// SetTargets (through wake) can make work.
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-s.wake:
		}
	}
}

// complete records a probe's result and schedules the target's next probe.
func (s *Scheduler) complete(ctx context.Context, j job, r Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	wasFull := s.inFlight == s.maxConc
	s.inFlight--
	e := j.e
	if e.removed {
		return
	}
	e.cancel = nil
	now := time.Now()
	iv := e.target.Check.Interval
	switch {
	case ctx.Err() != nil:
		// Shutting down: r is likely "canceled", not a verdict. Keep the
		// entry for a later Run, which reschedules everything.
		e.next = now
	case e.gen == j.gen:
		e.last = r
		from := e.tracker.State()
		if changed, up, reason := e.tracker.Observe(r, e.target.Check); changed {
			e.since, e.reason = r.At, reason
			s.pending = append(s.pending, delivery{target: e.target, from: from, tr: Transition{
				Key: e.target.Key, Up: up, Reason: reason, At: r.At, Last: r,
			}})
			s.kick(s.notify)
		}
		// Keep the cadence of due times rather than of completions, so
		// that probe duration does not stretch the interval; a target
		// that fell behind is probed as soon as possible, oldest first.
		e.next = j.due.Add(jitter(iv))
		if e.next.Before(now) {
			e.next = now
		}
	default:
		// The check changed while this probe ran.
		e.next = now.Add(offset(iv))
	}
	heap.Push(&s.due, e)
	if wasFull || e.index == 0 {
		s.kick(s.wake)
	}
}

// deliver hands pending transitions to fn, in order, until stop is closed
// and nothing is pending.
func (s *Scheduler) deliver(stop <-chan struct{}, fn func(Target, Transition)) {
	for {
		var done bool
		select {
		case <-s.notify:
		case <-stop:
			done = true
		}
		s.mu.Lock()
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, d := range batch {
			s.log.Info("Health state changed", "key", d.tr.Key, "from", d.from,
				"to", stateOf(d.tr.Up), "reason", d.tr.Reason)
			if fn != nil {
				fn(d.target, d.tr)
			}
		}
		if done {
			return
		}
	}
}

func stateOf(up bool) State {
	if up {
		return Up
	}
	return Down
}

func (s *Scheduler) kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// offset is a random point within the interval, for a first probe.
func offset(iv time.Duration) time.Duration {
	return rand.N(iv)
}

// jitter is the interval ±10%, so that targets set up together drift apart.
func jitter(iv time.Duration) time.Duration {
	return iv - iv/10 + rand.N(iv/5+1)
}

// dueHeap orders entries by due time.
type dueHeap []*entry

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *dueHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *dueHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
