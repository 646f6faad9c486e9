package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meridiandns/meridian/internal/logbuf"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/store/postgres/pgtest"
)

// chromiumPath is where scripts/test.sh installs Chromium.
const chromiumPath = "/usr/bin/chromium"

// requireChromium fails the test when Chromium is missing: the status
// page's test is what a real browser does with it.
func requireChromium(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat(chromiumPath); err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Fatalf("Chromium not found at %s (%v): install it (scripts/test.sh does: apt-get install chromium)", chromiumPath, err)
	}
	return chromiumPath
}

// browser is a headless Chromium for one test, with nothing of its own
// on the network (no background fetches, no extensions) and a throwaway
// profile.
type browser struct {
	t    *testing.T
	ctx  context.Context
	logs logbuf.Buffer
}

func newBrowser(t *testing.T, timeout time.Duration) *browser {
	t.Helper()
	path := requireChromium(t)
	b := &browser{t: t}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	logf := func(format string, args ...any) { fmt.Fprintf(&b.logs, format+"\n", args...) }
	ctx, cancelBrowser := chromedp.NewContext(ctx, chromedp.WithErrorf(logf), chromedp.WithLogf(logf))
	t.Cleanup(func() {
		cancelBrowser() // closes Chromium
		cancelAlloc()
		cancelTimeout()
		if t.Failed() && b.logs.String() != "" {
			t.Logf("chromedp log:\n%s", b.logs.String())
		}
	})
	if err := chromedp.Do(ctx); err != nil { // starts Chromium
		t.Fatalf("starting Chromium: %v", err)
	}
	b.ctx = ctx
	return b
}

// do runs actions, failing the test (with the page) on error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("%s: %v\npage:\n%s", what, err, b.html())
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("%s: %v\npage:\n%s", what, err, b.html())
	}
	return v
}

// html returns the page's text, for failure messages.
func (b *browser) html() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		return fmt.Sprintf("(unreadable: %v)", err)
	}
	return s
}

// rowState is what the page's row of addr shows: its state and reason.
func (b *browser) rowState(addr string) (state, reason string) {
	b.t.Helper()
	out := eval[[]string](b, "read row "+addr, fmt.Sprintf(`(() => {
		const r = document.querySelector('tr.endpoint[data-address=%q]');
		return r ? [r.dataset.state, r.querySelector('td.reason').innerText] : ["", ""];
	})()`, addr))
	return out[0], out[1]
}

// waitPage reloads url until ok accepts what the page shows, for at
// most 15 s.
func (b *browser) waitPage(what, url string, ok func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b.do("load "+url, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("body")))
		if ok() {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not within 15s; page:\n%s", what, b.html())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitText waits until the element sel (already on the page or after a
// navigation) contains text.
func (b *browser) waitText(what, sel, text string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e ? e.innerText : ""; })()`, sel)))
		cancel()
		if err == nil && strings.Contains(s, text) {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: %s never showed %q (last %q, %v); page:\n%s", what, sel, text, s, err, b.html())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestE2EStatusPage runs PostgreSQL, meridian serve, two checkers (one
// serving the status page) and three HTTP backends, and drives the
// page with headless Chromium: it shows a backend failing its health
// URL as down with the reason and the others up; an operator signs in
// with a token and drains an endpoint, which leaves the dig answers, and
// enables it again.
func TestE2EStatusPage(t *testing.T) {
	requireDig(t)
	requireChromium(t)
	bs, port := backends(t, 3)
	url := pgtest.NewDB(t)
	if _, _, err := postgres.Migrate(context.Background(), url); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/status.test.yaml", []byte(checkedZone("status.test.", port, 3)), 0o644); err != nil {
		t.Fatal(err)
	}
	meridianctl(t, url, "apply", "-f", dir+"/status.test.yaml")
	web := freeAddr(t)
	checkerProcess(t, url, "c1", "--listen", web)
	checkerProcess(t, url, "c2")
	m := startMeridian(t, dir, nil, "--listen", "127.0.0.1:0", "--database", url)
	answers := func(want ...string) func(*digResult) bool {
		return func(r *digResult) bool {
			a := data(r.Answer, "A")
			slices.Sort(a)
			return slices.Equal(a, want)
		}
	}
	m.waitDig(t, "three endpoints", answers("127.0.0.11", "127.0.0.12", "127.0.0.13"), "www.status.test", "A")
	opToken := ctlToken(t, url, "--operator", "--label", "alice")

	// .12's health URL stops saying UP: it leaves the answers.
	bs[1].up.Store(false)
	m.waitDig(t, ".12 leaves", answers("127.0.0.11", "127.0.0.13"), "www.status.test", "A")

	b := newBrowser(t, 2*time.Minute)
	page := "http://" + web + "/status"

	// (a) The page shows the live state: .12 down with its reason, the
	// others up, each checker's verdict.
	b.waitPage("the page shows .12 down and the others up", page, func() bool {
		s11, _ := b.rowState("127.0.0.11")
		s12, why := b.rowState("127.0.0.12")
		s13, _ := b.rowState("127.0.0.13")
		return s11 == "up" && s13 == "up" && s12 == "down" && strings.Contains(why, `body lacks "UP"`)
	})
	b.waitText("verdicts of both checkers", `tr[data-address="127.0.0.12"]`, "c2: down")
	b.waitText("verdicts of both checkers", `tr[data-address="127.0.0.12"]`, "c1: down")
	b.waitText("checkers listed", "#checkers", "c2")
	if dots := eval[int](b, "map", `document.querySelectorAll('svg g.dc-point[data-name="dc"]').length`); dots != 1 {
		t.Errorf("map: %d dots for datacenter dc, want 1", dots)
	}
	// Not signed in: no drain buttons.
	if forms := eval[int](b, "forms", `document.querySelectorAll('form.act').length`); forms != 0 {
		t.Errorf("%d admin forms before signing in", forms)
	}

	// (b) An operator signs in with a token and drains .11.
	b.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#token"), opToken),
		chromedp.Click(chromedp.CSS("#signin-button")),
	)
	b.waitText("signed in", "#signin", "token:alice")
	row11 := `tr[data-address="127.0.0.11"]`
	b.do("drain .11",
		chromedp.SendKeys(chromedp.CSS(row11+` input[name="reason"]`), "kernel upgrade"),
		chromedp.Click(chromedp.CSS(row11+` button.drain`)),
	)
	b.waitText("drain confirmed", "#notice", "Drained 127.0.0.11 of www.status.test.")
	if st, why := b.rowState("127.0.0.11"); st != "drain" || why != "kernel upgrade" {
		t.Errorf("after the drain the page shows %s %q", st, why)
	}
	m.waitDig(t, ".11 drained", answers("127.0.0.13"), "www.status.test", "A")
	if audit := meridianctl(t, url, "audit"); !strings.Contains(audit, "token:alice") || !strings.Contains(audit, "kernel upgrade") {
		t.Errorf("audit log lacks the drain by token:alice:\n%s", audit)
	}

	// Enable brings it back.
	b.do("enable .11", chromedp.Click(chromedp.CSS(row11+` button.enable`)))
	b.waitText("enable confirmed", "#notice", "Enabled 127.0.0.11 of www.status.test.")
	m.waitDig(t, ".11 enabled", answers("127.0.0.11", "127.0.0.13"), "www.status.test", "A")
	if st, _ := b.rowState("127.0.0.11"); st != "up" {
		t.Errorf("after enabling the page shows %s", st)
	}

	// .12 recovers, and the page follows.
	bs[1].up.Store(true)
	m.waitDig(t, ".12 returns", answers("127.0.0.11", "127.0.0.12", "127.0.0.13"), "www.status.test", "A")
	b.waitPage("the page shows .12 up again", page, func() bool { s, _ := b.rowState("127.0.0.12"); return s == "up" })
	m.stop(t)
}
