// Command httpprobe is the health check of Meridian's container image,
// which has no shell, curl or wget (distroless): it fetches a URL and
// exits 0 when the answer is 200 OK, 1 otherwise.
//
// Usage:
//
//	httpprobe [--timeout 2s] URL
//
// docker-compose.yml probes "meridian serve" at /readyz (200 once the
// first snapshot is loaded) and meridian-checker at /healthz.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run probes the URL in args and returns the exit code: 0 for 200 OK,
// 1 for any other answer or none, 2 for bad usage.
func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("httpprobe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("timeout", 2*time.Second, "give up after this long")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: httpprobe [--timeout 2s] URL\n\nExit 0 when GET URL answers 200 OK.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 1 || *timeout <= 0 {
		fs.Usage()
		return 2
	}
	url := fs.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "httpprobe: %v\n", err)
		return 2
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "httpprobe: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "httpprobe: %s: %s\n", url, resp.Status)
		return 1
	}
	return 0
}
