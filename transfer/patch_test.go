package transfer

import (
	"strings"
	"testing"

	"github.com/meridiandns/meridian/zones"
)

// TestPublishPatch publishes snapshots made by zones.Patch: only the zones
// they changed are looked at; a changed zone is journaled, the others keep
// their state, and a removed zone's state goes.
func TestPublishPatch(t *testing.T) {
	cfg := testConfig()
	cfg.Allow = append(cfg.Allow, Rule{Zones: []string{"example.net."}, Keys: []string{"xfr-key"}})
	x, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	parse := func(origin, text string) *zones.Zone {
		z, err := zones.ParseMaster(strings.NewReader(text), "test", origin)
		if err != nil {
			t.Fatal(err)
		}
		return z
	}
	net := parse("example.net.", strings.ReplaceAll(zoneText(7, 1, 3), "example.com.", "example.net."))
	s1, err := zones.Build([]*zones.Zone{parse("example.com.", zoneText(1, 1, 3)), net}, 1)
	if err != nil {
		t.Fatal(err)
	}
	x.Publish(s1)
	netState := x.zones["example.net."]
	s2, err := zones.Patch(s1, []*zones.Zone{parse("example.com.", zoneText(2, 2, 3))}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	x.Publish(s2)
	com := x.zones["example.com."]
	if com == nil || com.serial != 2 || len(com.j.deltas) != 1 || len(com.j.chain(1, 2)) != 1 {
		t.Fatalf("changed zone: %+v", com)
	}
	if x.zones["example.net."] != netState {
		t.Error("an unchanged zone's state was made again")
	}
	s3, err := zones.Patch(s2, nil, []string{"example.net."}, 3)
	if err != nil {
		t.Fatal(err)
	}
	x.Publish(s3)
	if _, ok := x.zones["example.net."]; ok || x.zones["example.com."] != com {
		t.Errorf("after removing example.net.: %v", x.zones)
	}
}
