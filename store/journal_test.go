package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/zones"
)

const journalZone = `$ORIGIN example.com.
$TTL 300
@    IN SOA ns1 hostmaster 10 7200 3600 1209600 60
@    IN NS  ns1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.1
`

// addRR is a change adding rr and raising the serial by one.
func addRR(rr string) func(*zones.Zone) ([]dns.RR, error) {
	return func(z *zones.Zone) ([]dns.RR, error) {
		var out []dns.RR
		for _, r := range z.Records {
			c := dns.Copy(r.RR)
			if soa, ok := c.(*dns.SOA); ok {
				soa.Serial++
			}
			out = append(out, c)
		}
		n, err := dns.NewRR(rr)
		if err != nil {
			return nil, err
		}
		return append(out, n), nil
	}
}

func loadOne(t *testing.T, f *Files) *zones.Zone {
	t.Helper()
	d, err := f.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d.Zones[0]
}

func has(z *zones.Zone, s string) bool {
	for _, r := range z.Records {
		if r.RR.String() == s {
			return true
		}
	}
	return false
}

func TestFilesUpdate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := filepath.Join(dir, "example.com.zone")
	if err := os.WriteFile(p, []byte(journalZone), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewFiles([]string{p}, nil)
	txt := "_acme-challenge.example.com.\t60\tIN\tTXT\t\"token\""
	if err := f.Update(ctx, "Example.COM.", addRR(txt)); err != nil {
		t.Fatal(err)
	}
	z := loadOne(t, f)
	if !has(z, txt) || soaSerial(z.Records) != 11 {
		t.Fatalf("after an update: serial %d, records %v", soaSerial(z.Records), z.Records)
	}
	if b, _ := os.ReadFile(p); string(b) != journalZone {
		t.Error("the zone file was rewritten")
	}

	// A change that fails, and one that makes the zone invalid, write
	// nothing.
	before, _ := os.ReadFile(p + ".jnl")
	boom := errors.New("boom")
	if err := f.Update(ctx, "example.com.", func(*zones.Zone) ([]dns.RR, error) { return nil, boom }); err != boom {
		t.Errorf("failing change: %v", err)
	}
	if err := f.Update(ctx, "example.com.", addRR("www.example.com. 60 IN CNAME ns1.example.com.")); !errors.Is(err, ErrInvalidUpdate) {
		t.Errorf("invalid change: %v", err)
	}
	if err := f.Update(ctx, "example.net.", addRR("www.example.net. 60 IN A 192.0.2.1")); !errors.Is(err, ErrNoZone) {
		t.Errorf("another zone: %v", err)
	}
	if after, _ := os.ReadFile(p + ".jnl"); string(after) != string(before) {
		t.Errorf("the journal changed:\n%s", after)
	}

	// An entry cut short by a crash is ignored, and the next one applies.
	fh, err := os.OpenFile(p+".jnl", os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString("; update 11 12\n+ cut.example.com. 60 IN A 192.0.2.")
	fh.Close()
	a := "host.example.com.\t60\tIN\tA\t192.0.2.7"
	if err := f.Update(ctx, "example.com.", addRR(a)); err != nil {
		t.Fatal(err)
	}
	z = loadOne(t, f)
	if !has(z, txt) || !has(z, a) || soaSerial(z.Records) != 12 || len(z.Records) != 6 {
		t.Fatalf("after a cut entry and an update: serial %d, records %v", soaSerial(z.Records), z.Records)
	}

	// The file edited, its serial raised: the journal is stale.
	if err := os.WriteFile(p, []byte(strings.Replace(journalZone, " 10 ", " 20 ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	z = loadOne(t, f)
	if has(z, txt) || soaSerial(z.Records) != 20 {
		t.Errorf("a stale journal was replayed: %v", z.Records)
	}
}

func TestFilesJournalBroken(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "example.com.zone")
	os.WriteFile(p, []byte(journalZone), 0o644)
	os.WriteFile(p+".jnl", []byte("; update 10 11\n+ www.example.com. 60 IN BOGUS x\n; end\n"), 0o644)
	_, err := NewFiles([]string{p}, nil).Load(context.Background())
	if err == nil || !strings.Contains(err.Error(), ".jnl:2") {
		t.Errorf("a broken journal: %v", err)
	}
}
