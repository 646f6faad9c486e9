package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/signing/keyseal"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// TestE2EPostgresKeys signs a zone of the database with keys made by
// "meridianctl keys generate": a server with the key secret answers
// DNSKEY, and RRSIGs with dig +dnssec, for the key whose DS meridianctl
// printed, and follows a rollover; a server with another secret never
// serves the zone, says why in its log, and serves the other zones.
func TestE2EPostgresKeys(t *testing.T) {
	requireDig(t)
	url := pgtest.NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, meridianBinary(t), "migrate", "--database", url).CombinedOutput(); err != nil {
		t.Fatalf("meridian migrate: %v\n%s", err, out)
	}
	applyExamples(t, url, nil)
	secret, wrong := keyseal.NewSecret(), keyseal.NewSecret()
	t.Setenv("MERIDIAN_STORE_KEY_SECRET", secret) // for meridianctl and server a

	out := meridianctl(t, url, "keys", "generate", "--zone", "example.com")
	_, dsText, ok := strings.Cut(out, "DS for the parent: ")
	if !ok {
		t.Fatalf("generate printed no DS:\n%s", out)
	}
	ds, err := dns.NewRR(strings.TrimSpace(dsText))
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	a := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--database", url)
	b := startMeridian(t, dir, []string{"MERIDIAN_STORE_KEY_SECRET=" + wrong}, "--listen", "127.0.0.1:0", "--database", url)

	signed := func(typ string) func(*digResult) bool {
		return func(r *digResult) bool {
			return r.Status == "NOERROR" && len(data(r.Answer, typ)) > 0 && len(data(r.Answer, "RRSIG")) > 0
		}
	}
	r := a.waitDig(t, "a answers DNSKEY signed", signed("DNSKEY"), "example.com", "DNSKEY", "+dnssec")
	keys := dnskeys(t, r)
	if len(keys) != 1 || keys[0].ToDS(dns.SHA256).String() != ds.String() {
		t.Errorf("a serves DNSKEY %v, want the key of DS %s", keys, ds)
	}
	r = a.mustDig(t, "www.example.com", "A", "+dnssec")
	if !signed("A")(r) || !strings.Contains(strings.Join(data(r.Answer, "RRSIG"), " "), "A 13 3 ") {
		t.Errorf("a's signed A answer:\n%s", r.Raw)
	}
	if r := a.mustDig(t, "www.example.com", "A"); len(data(r.Answer, "RRSIG")) != 0 || !isNOERROR(r) {
		t.Errorf("without +dnssec a answers:\n%s", r.Raw)
	}

	// b cannot open the key: it never serves example.com, and says why.
	b.waitDig(t, "b serves example.net", isNOERROR, "example.net", "MX")
	if r := b.mustDig(t, "www.example.com", "A"); r.Status != "REFUSED" {
		t.Errorf("b answers example.com without its keys:\n%s", r.Raw)
	}
	line := b.waitLog(t, 0, 10*time.Second, func(l logLine) bool {
		return strings.Contains(lineText(l), "example.com.") && strings.Contains(lineText(l), "sealed with a secret that is not configured")
	})
	if line.Level != "ERROR" && line.Level != "WARN" {
		t.Errorf("the reason is logged at level %s: %s", line.Level, lineText(line))
	}
	for _, m := range []*meridian{a, b} {
		for _, s := range []string{secret, wrong} {
			if strings.Contains(m.logs.String(), s) {
				t.Errorf("a log holds a key secret:\n%s", m.logs.String())
			}
		}
	}

	// A rollover reaches a at once: both keys, then the new one alone.
	meridianctl(t, url, "keys", "rollover", "start", "--zone", "example.com")
	a.waitDig(t, "a publishes both keys", func(r *digResult) bool { return len(data(r.Answer, "DNSKEY")) == 2 }, "example.com", "DNSKEY", "+dnssec")
	if r := a.mustDig(t, "www.example.com", "A", "+dnssec"); len(data(r.Answer, "RRSIG")) != 2 {
		t.Errorf("during the rollover, www.example.com A has signatures %v, want two", data(r.Answer, "RRSIG"))
	}
	meridianctl(t, url, "keys", "rollover", "finish", "--zone", "example.com", "--force")
	r = a.waitDig(t, "a publishes the new key alone", func(r *digResult) bool { return len(data(r.Answer, "DNSKEY")) == 1 }, "example.com", "DNSKEY", "+dnssec")
	if keys := dnskeys(t, r); len(keys) != 1 || keys[0].ToDS(dns.SHA256).String() == ds.String() {
		t.Errorf("after the rollover a serves %v", keys)
	}
	a.stop(t)
	b.stop(t)
}

// dnskeys parses the DNSKEY records of an answer.
func dnskeys(t *testing.T, r *digResult) []*dns.DNSKEY {
	t.Helper()
	var out []*dns.DNSKEY
	for _, rr := range r.Answer {
		if rr.Type != "DNSKEY" {
			continue
		}
		k, err := dns.NewRR(rr.Name + " " + rr.TTL + " IN DNSKEY " + rr.Data)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.(*dns.DNSKEY))
	}
	return out
}

// lineText is a log line's message and attributes as text.
func lineText(l logLine) string {
	var b strings.Builder
	b.WriteString(l.Msg)
	for k, v := range l.attrs {
		fmt.Fprintf(&b, " %s=%v", k, v)
	}
	return b.String()
}
