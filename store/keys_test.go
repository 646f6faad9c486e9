package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/zones"
)

func keyFiles(t *testing.T, dir, zone string, flags uint16) *signing.KeyFile {
	t.Helper()
	k, err := signing.Generate(zone, dns.ECDSAP256SHA256, flags)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := signing.WriteKeyFiles(dir, k, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return kf
}

func TestWithKeysLoad(t *testing.T) {
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	os.Mkdir(keyDir, 0o700)
	a := filepath.Join(dir, "example.org.zone")
	b := filepath.Join(dir, "example.net.zone")
	writeFile(t, a, goodZone)
	writeFile(t, b, otherZone)
	ksk := keyFiles(t, keyDir, "example.org.", signing.FlagKSK)
	zsk := keyFiles(t, keyDir, "example.org.", signing.FlagZSK)
	keyFiles(t, keyDir, "example.edu.", signing.FlagKSK) // no such zone: ignored
	st := WithKeys(NewFiles([]string{a, b}, nil), keyDir, signing.DefaultPolicy(), nil)

	d, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byOrigin := map[string]*zones.Zone{}
	for _, z := range d.Zones {
		byOrigin[z.Origin] = z
	}
	org, net := byOrigin["example.org."], byOrigin["example.net."]
	if org == nil || org.Keys == nil || len(org.Keys.Keys) != 2 {
		t.Fatalf("example.org. keys: %+v", org)
	}
	if net == nil || net.Keys != nil {
		t.Errorf("example.net. has no keys, got %+v", net.Keys)
	}
	snap, err := zones.Build(d.Zones, d.Version)
	if err != nil {
		t.Fatal(err)
	}
	if snap == nil {
		t.Fatal("no snapshot")
	}

	// The keys are read again: a broken one fails the load, naming it.
	b2, _ := os.ReadFile(zsk.PrivateFile())
	writeFile(t, ksk.PrivateFile(), string(b2))
	if _, err := st.Load(context.Background()); err == nil || !strings.Contains(err.Error(), ksk.PrivateFile()) {
		t.Errorf("Load with a mismatched private key: %v, want an error naming %s", err, ksk.PrivateFile())
	}
	os.Remove(ksk.PublicFile())
	os.Remove(ksk.PrivateFile())
	if _, err := st.Load(context.Background()); err == nil || !strings.Contains(err.Error(), "no key signing key") {
		t.Errorf("Load with a ZSK alone: %v, want refused", err)
	}
}

func TestWithKeysWatch(t *testing.T) {
	dir := t.TempDir()
	keyDir := filepath.Join(dir, "keys")
	os.Mkdir(keyDir, 0o700)
	a := filepath.Join(dir, "example.org.zone")
	writeFile(t, a, goodZone)
	st := WithKeys(NewFiles([]string{a}, nil), keyDir, signing.DefaultPolicy(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 100)
	var wg sync.WaitGroup
	var werr error
	wg.Go(func() { werr = st.Watch(ctx, func() { calls <- struct{}{} }) })
	defer func() {
		cancel()
		wg.Wait()
		if werr != nil {
			t.Errorf("Watch: %v", werr)
		}
	}()
	// Keep making keys until the watch (started asynchronously) sees one.
	deadline := time.After(5 * time.Second)
	for seen := false; !seen; {
		keyFiles(t, keyDir, "example.org.", signing.FlagKSK)
		select {
		case <-calls:
			seen = true
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("a new key file was not reported")
		}
	}
	// Zone files are still watched.
	deadline = time.After(5 * time.Second)
	for seen := false; !seen; {
		writeFile(t, a, goodZone+"www IN A 192.0.2.9\n")
		select {
		case <-calls:
			seen = true
		case <-time.After(time.Second):
		case <-deadline:
			t.Fatal("a changed zone file was not reported")
		}
	}
}
