package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// withRR is a change that adds rr (when set), drops the records named
// drop and raises the serial.
func withRR(t *testing.T, rr, drop string) func(*zones.Zone) ([]dns.RR, error) {
	return func(z *zones.Zone) ([]dns.RR, error) {
		var out []dns.RR
		for _, r := range z.Records {
			c := dns.Copy(r.RR)
			if soa, ok := c.(*dns.SOA); ok {
				soa.Serial++
			}
			if drop != "" && c.Header().Name == drop {
				continue
			}
			out = append(out, c)
		}
		if rr != "" {
			n, err := dns.NewRR(rr)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		return out, nil
	}
}

func TestUpdateRecords(t *testing.T) {
	ctx := context.Background()
	conn := applyDB(t)
	if _, err := postgres.Apply(ctx, conn, []*zones.Zone{yamlZone(t, baseYAML)}, postgres.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	read := func() *zones.Zone {
		t.Helper()
		zs, err := postgres.ReadZones(ctx, conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, z := range zs {
			return z
		}
		t.Fatal("no zone")
		return nil
	}
	var v0, v1 int64
	conn.QueryRow(ctx, "SELECT version FROM meridian_version").Scan(&v0)
	before := len(read().Records)

	txt := `_acme-challenge.example.org. 60 IN TXT "token"`
	if err := postgres.UpdateRecords(ctx, conn, "Example.ORG", "test", withRR(t, txt, "")); err != nil {
		t.Fatal(err)
	}
	z := read()
	found := false
	for _, r := range z.Records {
		if r.RR.Header().Rrtype == dns.TypeTXT && r.RR.Header().Name == "_acme-challenge.example.org." {
			found = true
		}
	}
	if !found || len(z.Records) != before+1 || len(z.Pools) != 1 {
		t.Errorf("after the update: %d records (want %d), TXT found %v, %d pools", len(z.Records), before+1, found, len(z.Pools))
	}
	conn.QueryRow(ctx, "SELECT version FROM meridian_version").Scan(&v1)
	if v1 <= v0 {
		t.Errorf("version %d -> %d: the change was not logged", v0, v1)
	}
	// The change is audited, with its diff and the version it made.
	log, err := postgres.ReadAudit(ctx, conn, postgres.AuditQuery{Zone: "example.org."})
	if err != nil {
		t.Fatal(err)
	}
	if len(log) == 0 || log[0].Actor != "test" || log[0].Version != v1 || !strings.Contains(log[0].Diff, "+ _acme-challenge.example.org. 60 IN TXT") {
		t.Errorf("audit log after the update: %+v", log)
	}

	// Failures write nothing.
	boom := errors.New("boom")
	if err := postgres.UpdateRecords(ctx, conn, "example.org.", "test", func(*zones.Zone) ([]dns.RR, error) { return nil, boom }); err != boom {
		t.Errorf("failing change: %v", err)
	}
	if err := postgres.UpdateRecords(ctx, conn, "example.org.", "test", withRR(t, "static.example.org. 60 IN CNAME mail.example.org.", "")); !errors.Is(err, postgres.ErrInvalidUpdate) {
		t.Errorf("invalid change: %v", err)
	}
	if err := postgres.UpdateRecords(ctx, conn, "example.net.", "test", withRR(t, "", "")); !errors.Is(err, postgres.ErrNoZone) {
		t.Errorf("another zone: %v", err)
	}
	var v2 int64
	conn.QueryRow(ctx, "SELECT version FROM meridian_version").Scan(&v2)
	if v2 != v1 || len(read().Records) != before+1 {
		t.Errorf("a failed update changed the database: version %d -> %d", v1, v2)
	}

	// Deleting it.
	if err := postgres.UpdateRecords(ctx, conn, "example.org.", "test", withRR(t, "", "_acme-challenge.example.org.")); err != nil {
		t.Fatal(err)
	}
	if n := len(read().Records); n != before {
		t.Errorf("after the deletion: %d records, want %d", n, before)
	}
}
