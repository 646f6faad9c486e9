package health

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// run feeds seq ('+' success, '-' failure) to tr and returns the changes as
// "index state reason". Failure i has reason "f<i>".
func run(tr *Tracker, c Check, seq string) []string {
	var got []string
	for i, ch := range strings.ReplaceAll(seq, " ", "") {
		r := Result{OK: ch == '+'}
		if !r.OK {
			r.Reason = fmt.Sprintf("f%d", i)
		}
		before := tr.State()
		changed, up, reason := tr.Observe(r, c)
		if up != (tr.State() == Up) {
			panic("up disagrees with State")
		}
		if changed {
			got = append(got, fmt.Sprintf("%d %s %s", i, tr.State(), reason))
		} else if tr.State() != before || reason != "" {
			panic("state changed silently")
		}
	}
	return got
}

func TestTracker(t *testing.T) {
	tests := []struct {
		name           string
		rise, fall, ok int
		seq            string
		want           []string
	}{
		{"starts unknown, up after rise", 2, 3, 2, "++", []string{"1 up 2 consecutive successes"}},
		{"starts unknown, down after fall", 2, 3, 2, "---", []string{"2 down f2"}},
		{"alternating stays unknown", 2, 3, 2, "+-+-+-+-+-", nil},
		{"unknown needs consecutive successes", 2, 3, 2, "+-++", []string{"3 up 2 consecutive successes"}},
		{"unknown needs consecutive failures", 3, 3, 2, "--+---", []string{"5 down f5"}},
		{"up forgives after ok successes", 2, 3, 2, "++ -++ -++ -++ -++", []string{"1 up 2 consecutive successes"}},
		{"up counts failures between single successes", 2, 3, 2, "++ -+-+-",
			[]string{"1 up 2 consecutive successes", "6 down f6"}},
		{"ok 3: two successes do not forgive", 2, 3, 3, "++ -++-++-",
			[]string{"1 up 2 consecutive successes", "8 down f8"}},
		{"ok 3: three successes forgive", 2, 3, 3, "++ -+++-++-", []string{"1 up 2 consecutive successes"}},
		{"down needs rise consecutive successes", 2, 3, 2, "--- +-+-++",
			[]string{"2 down f2", "8 up 2 consecutive successes"}},
		{"back up starts counting afresh", 2, 2, 2, "-- ++ - + -",
			[]string{"1 down f1", "3 up 2 consecutive successes", "6 down f6"}},
		{"thresholds of one follow every result", 1, 1, 1, "+-+-",
			[]string{"0 up 1 consecutive success", "1 down f1", "2 up 1 consecutive success", "3 down f3"}},
		{"defaults: up after 20", 0, 0, 0, strings.Repeat("+", 19), nil},
		{"defaults: 20th success", 0, 0, 0, strings.Repeat("+", 20), []string{"19 up 20 consecutive successes"}},
		{"defaults: down after 3", 0, 0, 0, strings.Repeat("+", 20) + "-+-+-", []string{"19 up 20 consecutive successes", "24 down f24"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tr Tracker
			got := run(&tr, Check{Rise: tc.rise, Fall: tc.fall, OK: tc.ok}, tc.seq)
			if !slices.Equal(got, tc.want) {
				t.Errorf("%q: got %q, want %q", tc.seq, got, tc.want)
			}
		})
	}
}

// flapChanges feeds n results failing at random with probability 1/2 and
// counts the state changes.
func flapChanges(tr Tracker, c Check, n int, rng *rand.Rand) int {
	changes := 0
	for range n {
		if changed, _, _ := tr.Observe(Result{OK: rng.IntN(2) == 0, Reason: "flap"}, c); changed {
			changes++
		}
	}
	return changes
}

// TestFlappingRandom: with the default thresholds, an endpoint failing
// half of its probes changes state at most once in 100 probes, whether it
// starts unknown, up or down. The bound is probabilistic, as a run of 20
// successes is possible: TestFlappingProbability puts the odds of an
// exception at 3.5e-5 to 3.9e-5 per run, so the 30,000 runs here expect
// about one (these seeds give 3) and fail above 5.
func TestFlappingRandom(t *testing.T) {
	const seeds, probes = 10_000, 100
	var c Check
	starts := []Tracker{{}, {state: Up}, {state: Down}}
	exceptions := 0
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 0x6d65726964696e))
		for _, start := range starts {
			if n := flapChanges(start, c, probes, rng); n > 1 {
				exceptions++
				t.Logf("seed %d, start %s: %d changes", seed, start.State(), n)
			}
		}
	}
	t.Logf("%d of %d runs changed state more than once", exceptions, seeds*len(starts))
	if exceptions > 5 {
		t.Errorf("%d of %d runs changed state more than once", exceptions, seeds*len(starts))
	}
}

// flapProbability is the exact probability that a tracker starting as
// start changes state twice or more within n results that fail with
// probability 1/2. It walks the distribution of Tracker values, so it
// checks the real state machine rather than a model of it.
func flapProbability(start Tracker, c Check, n int) float64 {
	type node struct {
		tr      Tracker
		changes int
	}
	dist := map[node]float64{{start, 0}: 1}
	for range n {
		next := make(map[node]float64, len(dist))
		for nd, p := range dist {
			for _, ok := range []bool{true, false} {
				tr := nd.tr
				changed, _, _ := tr.Observe(Result{OK: ok}, c)
				ch := nd.changes
				if changed {
					ch = min(ch+1, 2)
				}
				next[node{tr, ch}] += p / 2
			}
		}
		dist = next
	}
	var p float64
	for nd, q := range dist {
		if nd.changes >= 2 {
			p += q
		}
	}
	return p
}

// TestFlappingProbability shows why DefaultRise is 20: it is the one
// threshold that matters (a down endpoint comes back only through rise
// consecutive successes), and smaller values flap.
func TestFlappingProbability(t *testing.T) {
	tests := []struct {
		rise int
		max  float64 // bound on the probability, from any start
	}{
		{2, 1},
		{10, 0.05},
		{12, 0.012},
		{16, 7e-4},
		{0, 5e-5}, // the default, 20
	}
	for _, tc := range tests {
		c := Check{Rise: tc.rise}
		worst := 0.0
		for _, start := range []Tracker{{}, {state: Up}, {state: Down}} {
			p := flapProbability(start, c, 100)
			t.Logf("rise %2d, start %-7s: P(>1 change in 100 probes) = %.2g", tc.rise, start.State(), p)
			worst = max(worst, p)
		}
		if worst > tc.max {
			t.Errorf("rise %d: probability %.3g above %.3g", tc.rise, worst, tc.max)
		}
	}
	if p := flapProbability(Tracker{}, Check{Rise: 2, Fall: 3, OK: 2}, 100); p < 0.99 {
		t.Errorf("rise 2 flaps with probability %.3g only; the argument for 20 is wrong", p)
	}
}
