package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/meridiandns/meridian/dnsserver"
	"github.com/meridiandns/meridian/geo"
	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/zones"
)

// explainCmd implements "meridian explain NAME --client ADDR[/PREFIX]":
// it loads the same configuration, zones and GeoIP database as serve and
// prints how the server would answer NAME for that client, with the
// reason for every endpoint left out.
func explainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newServeFlags()
	fs.String("client", "", "client address or subnet, as an ECS option would carry it (required)")
	fs.String("type", "A", "query type: A or AAAA (any type works for static names)")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian explain NAME --client ADDR[/PREFIX] [--type A|AAAA] [flags]\n\n"+
			"Show how NAME is answered for a client: location, datacenter order, answer, and why\n"+
			"each endpoint is left out. Takes the same configuration flags as serve.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, ok := cli.ParseFlags(fs, "meridian explain", args, stderr); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "meridian explain: want exactly one NAME")
		fs.Usage()
		return 2
	}
	clientArg, _ := fs.GetString("client")
	client, err := parseClient(clientArg)
	if err != nil {
		fmt.Fprintf(stderr, "meridian explain: --client: %v\n", err)
		return 2
	}
	typeArg, _ := fs.GetString("type")
	qtype, ok := dns.StringToType[strings.ToUpper(typeArg)]
	if !ok {
		fmt.Fprintf(stderr, "meridian explain: --type: unknown type %q\n", typeArg)
		return 2
	}
	cfg, err := loadConfig(fs)
	if err != nil {
		fmt.Fprintf(stderr, "meridian explain: %v\n", err)
		return 1
	}
	e, err := explain(ctx, cfg, fs.Arg(0), qtype, client)
	if err != nil {
		fmt.Fprintf(stderr, "meridian explain: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, e.String())
	return 0
}

// explain builds the server state serve would build, without sockets,
// and asks it.
func explain(ctx context.Context, cfg *config, name string, qtype uint16, client netip.Prefix) (*dnsserver.Explanation, error) {
	st, closeStore, err := openStore(cfg, nil)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	d, err := st.Load(ctx)
	if err != nil {
		return nil, err
	}
	snap, err := build(nil, d)
	if err != nil {
		return nil, err
	}
	if err := invalidFor(snap, name); err != nil {
		return nil, err
	}
	srv, err := dnsserver.New(cfg.server(), nil)
	if err != nil {
		return nil, err
	}
	srv.Publish(snap)
	if cfg.Geo.Database != "" {
		db, err := geo.Open(cfg.Geo.Database)
		if err != nil {
			return nil, err
		}
		srv.SetGeo(db)
	}
	return srv.Explain(name, qtype, client)
}

// invalidFor returns why name is not answered when the zone it falls in
// is invalid and so left out of snap: otherwise the name would look like
// one of no zone served.
func invalidFor(snap *zones.Snapshot, name string) error {
	name = zones.CanonicalName(name)
	served := ""
	for _, o := range snap.Zones() {
		if dns.IsSubDomain(o, name) && len(o) > len(served) {
			served = o
		}
	}
	for _, iz := range snap.Invalid() {
		if dns.IsSubDomain(iz.Origin, name) && len(iz.Origin) > len(served) {
			return fmt.Errorf("zone %s is invalid and not served: %w", iz.Origin, iz.Err)
		}
	}
	return nil
}

// parseClient reads ADDR or ADDR/PREFIX; host bits beyond the prefix are
// cleared, as an ECS option would carry them.
func parseClient(s string) (netip.Prefix, error) {
	if s == "" {
		return netip.Prefix{}, errors.New("required")
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
