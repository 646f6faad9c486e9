package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/zones"
)

// fakePublisher records published snapshots and, like the real server,
// refuses one older than the one it serves.
type fakePublisher struct {
	mu    sync.Mutex
	snaps []*zones.Snapshot
}

func (p *fakePublisher) Publish(s *zones.Snapshot) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.snaps); n > 0 && s.Version < p.snaps[n-1].Version {
		return false
	}
	p.snaps = append(p.snaps, s)
	return true
}

func (p *fakePublisher) published() []*zones.Snapshot {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*zones.Snapshot(nil), p.snaps...)
}

// testZone returns a minimal valid zone; extra records are added as given.
func testZone(t *testing.T, origin string, extra ...string) *zones.Zone {
	t.Helper()
	z := &zones.Zone{Origin: origin, Source: origin + "zone"}
	rrs := append([]string{
		"@ 300 IN SOA ns1 hostmaster 1 7200 3600 1209600 300",
		"@ 300 IN NS ns1",
		"ns1 300 IN A 192.0.2.1",
	}, extra...)
	for i, s := range rrs {
		rr, err := dns.NewRR("$ORIGIN " + origin + "\n" + s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		z.Records = append(z.Records, zones.Record{RR: rr, Line: i + 1})
	}
	return z
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReloader(t *testing.T) {
	a := testZone(t, "a.test.")
	b := testZone(t, "b.test.")
	outside := testZone(t, "c.test.", "x.other.test. 300 IN A 192.0.2.9") // line 4

	tests := []struct {
		name string
		// change is applied to the store once the reloader runs;
		// request, when set, is passed to requestReload afterwards.
		change  func(m *store.Memory)
		request string
		// want is the zones of the snapshot served at the end.
		want    []string
		wantLog string // substring of the log
	}{
		{
			name:    "store change is published",
			change:  func(m *store.Memory) { m.Set(a, b) },
			want:    []string{"a.test.", "b.test."},
			wantLog: "zones=2",
		},
		{
			name:    "an invalid new zone is left out, the others served",
			change:  func(m *store.Memory) { m.Set(a, outside) },
			want:    []string{"a.test."},
			wantLog: "c.test.zone:4: out-of-zone record x.other.test.",
		},
		{
			name:    "a new zone without records is left out",
			change:  func(m *store.Memory) { m.Set(a, &zones.Zone{Origin: "d.test.", Source: "d.test.zone"}) },
			want:    []string{"a.test."},
			wantLog: "Zone invalid and not served",
		},
		{
			name:    "a duplicate zone keeps its last good version",
			change:  func(m *store.Memory) { m.Set(a, a) },
			want:    []string{"a.test."},
			wantLog: "defined twice",
		},
		{
			name:    "requested reload",
			request: "SIGHUP",
			want:    []string{"a.test."},
			wantLog: "reason=SIGHUP",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs logbuf.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			m := store.NewMemory(a)
			pub := &fakePublisher{}
			r := newReloader(m, pub, logger)
			if err := r.reload(t.Context()); err != nil {
				t.Fatalf("initial reload: %v", err)
			}

			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- r.run(ctx) }()

			// Memory.Watch registers asynchronously; repeat the change
			// (harmless: Set is idempotent) until the log shows it seen.
			want := tt.wantLog
			waitFor(t, fmt.Sprintf("log %q", want), func() bool {
				if tt.change != nil {
					tt.change(m)
				}
				if tt.request != "" {
					r.requestReload(tt.request)
				}
				time.Sleep(20 * time.Millisecond)
				snaps := pub.published()
				served := strings.Join(snaps[len(snaps)-1].Zones(), " ")
				return strings.Contains(logs.String(), want) && served == strings.Join(tt.want, " ")
			})
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("run = %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("run did not return after cancel")
			}

			snaps := pub.published()
			last := snaps[len(snaps)-1]
			if got, want := strings.Join(last.Zones(), " "), strings.Join(tt.want, " "); got != want {
				t.Errorf("serving zones %q, want %q", got, want)
			}
			for i := 1; i < len(snaps); i++ {
				if snaps[i].Version < snaps[i-1].Version {
					t.Errorf("version went back: %d then %d", snaps[i-1].Version, snaps[i].Version)
				}
			}
		})
	}
}

// TestReloaderInvalidZone follows a zone that turns invalid and is fixed:
// each transition is logged once, the other zone keeps updating, and
// meridian_zone_invalid shows the zone while it is invalid.
func TestReloaderInvalidZone(t *testing.T) {
	a := testZone(t, "a.test.")
	b := testZone(t, "b.test.")
	m := store.NewMemory(a, b)
	pub := &fakePublisher{}
	var logs logbuf.Buffer
	r := newReloader(m, pub, slog.New(slog.NewTextHandler(&logs, nil)))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(invalidZones{lastPublished{pub}})
	invalid := func() []string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, mf := range mfs {
			for _, mt := range mf.GetMetric() {
				out = append(out, fmt.Sprintf("%s{%s} %v", mf.GetName(), mt.GetLabel()[0].GetValue(), mt.GetGauge().GetValue()))
			}
		}
		return out
	}
	count := func(msg string) int { return strings.Count(logs.String(), msg) }

	steps := []struct {
		name    string
		zs      []*zones.Zone
		served  string // the address of www.a.test., when checked
		metric  string
		invalid int // "Zone invalid" lines logged so far
		valid   int // "Zone valid again" lines logged so far
	}{
		{"both valid", []*zones.Zone{a, b}, "", "", 0, 0},
		{"b broken, a changes", []*zones.Zone{testZone(t, "a.test.", "www 300 IN A 192.0.2.7"), broken(b)}, "192.0.2.7", "meridian_zone_invalid{b.test.} 1", 1, 0},
		{"still broken: not logged again", nil, "192.0.2.7", "meridian_zone_invalid{b.test.} 1", 1, 0},
		{"fixed", []*zones.Zone{a, testZone(t, "b.test.", "www 300 IN A 192.0.2.8")}, "", "", 1, 1},
	}
	for _, st := range steps {
		if st.zs != nil {
			m.Set(st.zs...)
		}
		if err := r.reload(t.Context()); err != nil {
			t.Fatalf("%s: reload: %v", st.name, err)
		}
		snap := pub.published()[len(pub.published())-1]
		if got := strings.Join(snap.Zones(), " "); got != "a.test. b.test." {
			t.Errorf("%s: serving %q", st.name, got)
		}
		if st.served != "" {
			w, _ := zones.WireName("www.a.test.")
			if ans := snap.Lookup(w, dns.TypeA); ans == nil || len(ans.Answer) != 1 || ans.Answer[0].(*dns.A).A.String() != st.served {
				t.Errorf("%s: www.a.test. answer %v, want %s", st.name, ans, st.served)
			}
		}
		if got := strings.Join(invalid(), ","); got != st.metric {
			t.Errorf("%s: metric %q, want %q", st.name, got, st.metric)
		}
		if n := count("Zone invalid: serving its last good version"); n != st.invalid {
			t.Errorf("%s: %d invalid lines, want %d\n%s", st.name, n, st.invalid, logs.String())
		}
		if n := count("Zone valid again"); n != st.valid {
			t.Errorf("%s: %d valid-again lines, want %d", st.name, n, st.valid)
		}
	}
	if !strings.Contains(logs.String(), "reason=\"record broken by hand\"") {
		t.Errorf("the reason is not logged:\n%s", logs.String())
	}
}

// broken returns a copy of z that its store could not read whole.
func broken(z *zones.Zone) *zones.Zone {
	c := *z
	c.Invalid = errors.New("record broken by hand")
	return &c
}

// lastPublished gives the snapshot last published, as the server does.
type lastPublished struct{ p *fakePublisher }

func (l lastPublished) Snapshot() *zones.Snapshot {
	snaps := l.p.published()
	if len(snaps) == 0 {
		return nil
	}
	return snaps[len(snaps)-1]
}

func TestReloaderInitialLoadFails(t *testing.T) {
	m := store.NewMemory(testZone(t, "c.test.", "x.other.test. 300 IN A 192.0.2.9"))
	pub := &fakePublisher{}
	err := newReloader(m, pub, nil).reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), "c.test.zone") {
		t.Errorf("reload = %v, want an error naming the source", err)
	}
	if n := len(pub.published()); n != 0 {
		t.Errorf("published %d snapshots, want 0", n)
	}
}

// staleStore returns a version older than the one served.
type staleStore struct{ *store.Memory }

func (s staleStore) Load(ctx context.Context) (*store.Data, error) {
	d, err := s.Memory.Load(ctx)
	if err != nil {
		return nil, err
	}
	d.Version = 0
	return d, nil
}

func TestReloaderRefusedSnapshot(t *testing.T) {
	pub := &fakePublisher{}
	if !pub.Publish(&zones.Snapshot{Version: 5}) {
		t.Fatal("setup: publish refused")
	}
	err := newReloader(staleStore{store.NewMemory()}, pub, nil).reload(t.Context())
	if err == nil || !strings.Contains(err.Error(), "older") {
		t.Errorf("reload = %v, want an error about an older snapshot", err)
	}
}
