package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/meridiandns/meridian/internal/cli"
	"github.com/meridiandns/meridian/internal/httpserve"
	"github.com/meridiandns/meridian/mgmtapi"
	"github.com/meridiandns/meridian/mgmtapi/pgbackend"
	"github.com/meridiandns/meridian/store"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/zones"
)

// apiConfig is the "api" section: the management API (docs/api.md). Off
// unless listen is set.
type apiConfig struct {
	// Listen (api.listen) serves the API on this host:port.
	Listen string `mapstructure:"listen"`
	// TLSCertFile and TLSKeyFile (api.tls_cert_file, api.tls_key_file)
	// serve HTTPS instead of HTTP.
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
	// MaxBodyBytes (api.max_body_bytes) bounds a request's body: 413
	// beyond it.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes"`
	// Rate and Burst (api.rate, api.burst) bound the requests per second
	// of one token, and of one client address: 429 beyond them.
	Rate  float64 `mapstructure:"rate"`
	Burst int     `mapstructure:"burst"`
	// Tokens (api.tokens) are the API's tokens without a database, by
	// hash ("meridian api-token" makes one); with PostgreSQL, tokens are
	// made by "meridianctl token create --api".
	Tokens []apiToken `mapstructure:"tokens"`
}

// apiToken is one token of api.tokens.
type apiToken struct {
	SHA256 string   `mapstructure:"sha256"`
	Scopes []string `mapstructure:"scopes"`
	Label  string   `mapstructure:"label"`
}

func setAPIDefaults(v interface{ SetDefault(string, any) }) {
	v.SetDefault("api.listen", "")
	v.SetDefault("api.tls_cert_file", "")
	v.SetDefault("api.tls_key_file", "")
	v.SetDefault("api.max_body_bytes", mgmtapi.DefaultMaxBody)
	v.SetDefault("api.rate", mgmtapi.DefaultRate)
	v.SetDefault("api.burst", mgmtapi.DefaultBurst)
	v.SetDefault("api.tokens", []apiToken{})
}

// check validates the section.
func (a apiConfig) check(database string) error {
	if a.Listen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		return fmt.Errorf("api.listen: %w", err)
	}
	if (a.TLSCertFile == "") != (a.TLSKeyFile == "") {
		return errors.New("api: give both tls_cert_file and tls_key_file, or neither")
	}
	if a.MaxBodyBytes <= 0 || a.Rate <= 0 || a.Burst <= 0 {
		return errors.New("api: max_body_bytes, rate and burst must be positive")
	}
	if database != "" && len(a.Tokens) > 0 {
		return errors.New("api.tokens: with a database, tokens are in it (meridianctl token create --api)")
	}
	_, err := fileTokens(a.Tokens)
	return err
}

// fileTokens checks api.tokens and returns their hashes.
func fileTokens(ts []apiToken) ([][]byte, error) {
	var out [][]byte
	for i, t := range ts {
		b, ok := tokenHash(t.SHA256)
		if !ok {
			return nil, fmt.Errorf("api.tokens[%d]: sha256 must be 64 hex digits", i)
		}
		if len(t.Scopes) == 0 {
			return nil, fmt.Errorf("api.tokens[%d]: give at least one scope", i)
		}
		for _, s := range t.Scopes {
			if _, err := mgmtapi.ParseScope(s); err != nil {
				return nil, fmt.Errorf("api.tokens[%d]: %w", i, err)
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// managementAPI listens for the management API and returns the actor
// serving it, a function that frees what it holds, and the API's metrics.
func managementAPI(ctx context.Context, cfg *config, files *store.Files, logger *slog.Logger) (func(context.Context) error, func(), prometheus.Collector, error) {
	var b mgmtapi.Backend
	done := func() {}
	if dsn := cfg.Store.writeDatabase(); dsn != "" {
		pcfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("api: store.write_database: %w", err)
		}
		postgres.ConfigureWriter(pcfg.ConnConfig)
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("api: store.write_database: %w", err)
		}
		var standby bool
		if err := pool.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil {
			pool.Close()
			return nil, nil, nil, fmt.Errorf("api: store.write_database: %w", err)
		}
		if standby {
			pool.Close()
			return nil, nil, nil, errors.New("api: the database written to is a standby, which takes no writes: set store.write_database to the primary")
		}
		pb, err := pgbackend.New(ctx, pool)
		if err != nil {
			pool.Close()
			return nil, nil, nil, err
		}
		b, done = pb, pool.Close
	} else {
		fb, err := newFileAPI(cfg.API.Tokens, files, logger)
		if err != nil {
			return nil, nil, nil, err
		}
		b = fb
	}
	api := mgmtapi.New(mgmtapi.Options{Backend: b, Logger: logger, MaxBody: cfg.API.MaxBodyBytes, Rate: cfg.API.Rate, Burst: cfg.API.Burst})
	ln, err := net.Listen("tcp", cfg.API.Listen)
	if err != nil {
		done()
		return nil, nil, nil, fmt.Errorf("api.listen: %w", err)
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute,
		WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	scheme := "http"
	if cfg.API.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.API.TLSCertFile, cfg.API.TLSKeyFile)
		if err != nil {
			ln.Close()
			done()
			return nil, nil, nil, fmt.Errorf("api: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		ln, scheme = tls.NewListener(ln, srv.TLSConfig), "https"
	}
	logger.Info("Management API listening", "url", scheme+"://"+ln.Addr().String()+mgmtapi.Prefix)
	return func(ctx context.Context) error { return httpserve.Serve(ctx, srv, ln) }, done, api, nil
}

// fileAPI is the API's Backend without a database: the zone files. Its
// writes are those of dynamic updates, to the zone file's journal, so
// only records change; datacenters, pools and zones are the files'.
type fileAPI struct {
	files  *store.Files
	tokens []apiToken
	hashes [][]byte
	logger *slog.Logger
}

func newFileAPI(tokens []apiToken, files *store.Files, logger *slog.Logger) (*fileAPI, error) {
	hashes, err := fileTokens(tokens)
	if err != nil {
		return nil, err
	}
	return &fileAPI{files: files, tokens: tokens, hashes: hashes, logger: logger}, nil
}

// errFileMode says what zone-file mode cannot do.
func errFileMode(what string) error {
	return fmt.Errorf("%w: without a database, %s", mgmtapi.ErrUnsupported, what)
}

func (f *fileAPI) Zones(ctx context.Context) ([]mgmtapi.ZoneSummary, error) {
	d, err := f.files.Load(ctx)
	if err != nil {
		return nil, err
	}
	var out []mgmtapi.ZoneSummary
	for _, z := range d.Zones {
		s := mgmtapi.ZoneSummary{Name: z.Origin, Records: len(z.Records), Datacenters: len(z.Datacenters), Pools: len(z.Pools)}
		if soa := z.SOA(); soa != nil {
			s.Serial = soa.Serial
		}
		for _, p := range z.Pools {
			s.Endpoints += len(p.Endpoints)
		}
		out = append(out, s)
	}
	return out, nil
}

func (f *fileAPI) Zone(ctx context.Context, origin string) (*zones.Zone, error) {
	d, err := f.files.Load(ctx)
	if err != nil {
		return nil, err
	}
	for _, z := range d.Zones {
		if z.Origin == origin {
			return z, nil
		}
	}
	return nil, mgmtapi.ErrNotFound
}

// errDryRun stops a dry run's update before it writes.
var errDryRun = errors.New("dry run")

func (f *fileAPI) Change(ctx context.Context, origin string, change func(*zones.Zone) (*zones.Zone, error), w mgmtapi.Write) (*mgmtapi.Result, error) {
	var diff []string
	err := f.files.Update(ctx, origin, func(z *zones.Zone) ([]dns.RR, error) {
		before := mgmtapi.ZoneOf(z)
		old := z.Records
		// The API changes the zone it is given; z's records must stay as
		// they were, for the journal's diff.
		cp := *z
		cp.Records, cp.Datacenters, cp.Pools = slices.Clone(z.Records), slices.Clone(z.Datacenters), slices.Clone(z.Pools)
		next, err := change(&cp)
		if err != nil {
			return nil, err
		}
		if next == nil {
			return nil, errFileMode("a zone is deleted by removing its file from zones.files")
		}
		after := mgmtapi.ZoneOf(next)
		if jsonOf(before.Datacenters) != jsonOf(after.Datacenters) || jsonOf(before.Pools) != jsonOf(after.Pools) {
			return nil, errFileMode("datacenters and pools change in the zone file " + z.Source)
		}
		diff = recordDiff(old, next.Records)
		if len(diff) == 0 || w.DryRun {
			return nil, errDryRun
		}
		// The serial goes up, as for an RFC 2136 update, unless the
		// change set it: the journal's entries follow the serial.
		rrs := make([]dns.RR, len(next.Records))
		for i, r := range next.Records {
			rrs[i] = r.RR
			if soa, ok := r.RR.(*dns.SOA); ok && zones.CanonicalName(soa.Hdr.Name) == z.Origin {
				if old := z.SOA(); old != nil && soa.Serial == old.Serial {
					bumped := *soa
					bumped.Serial++ // RFC 1982 serial arithmetic wraps
					rrs[i] = &bumped
				}
			}
		}
		final := make([]zones.Record, len(rrs))
		for i, rr := range rrs {
			final[i] = zones.Record{RR: rr}
		}
		diff = recordDiff(old, final)
		return rrs, nil
	})
	switch {
	case errors.Is(err, store.ErrNoZone):
		return nil, fmt.Errorf("%w: no zone %s (without a database, a zone is added as a file in zones.files)", mgmtapi.ErrNotFound, origin)
	case errors.Is(err, errDryRun):
		return &mgmtapi.Result{Diff: diff}, nil
	case errors.Is(err, store.ErrInvalidUpdate):
		return nil, fmt.Errorf("%w: %v", mgmtapi.ErrUnsupported, err)
	case err != nil:
		return nil, err
	}
	f.logger.Info("Management API: zone changed", "zone", origin, "actor", w.Actor, "changes", len(diff), "diff", diff)
	return &mgmtapi.Result{Applied: true, Diff: diff}, nil
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// recordDiff lists the records removed and added, "- rr" and "+ rr".
func recordDiff(old, next []zones.Record) []string {
	set := func(rs []zones.Record) map[string]bool {
		m := map[string]bool{}
		for _, r := range rs {
			m[r.RR.String()] = true
		}
		return m
	}
	o, n := set(old), set(next)
	var out []string
	for s := range o {
		if !n[s] {
			out = append(out, "- "+s)
		}
	}
	for s := range n {
		if !o[s] {
			out = append(out, "+ "+s)
		}
	}
	slices.Sort(out)
	return out
}

func (f *fileAPI) SetAdmin(context.Context, string, string, netip.Addr, zones.AdminState, string, string) (zones.AdminState, error) {
	return 0, errFileMode("admin states are set in the zone file, or through the health-agent API (health.agent_listen)")
}

func (f *fileAPI) Checkers(context.Context) ([]mgmtapi.Checker, error) { return nil, nil }

func (f *fileAPI) Audit(context.Context, mgmtapi.AuditQuery) ([]mgmtapi.AuditEntry, error) {
	return nil, errFileMode("there is no audit log: each change is in the server's log and the zone file's journal")
}

// Authenticate finds the token among api.tokens (matchToken: in constant
// time).
func (f *fileAPI) Authenticate(_ context.Context, token string) (mgmtapi.Principal, error) {
	found := matchToken(f.hashes, token)
	if found < 0 {
		return mgmtapi.Principal{}, mgmtapi.ErrBadToken
	}
	t := f.tokens[found]
	p := mgmtapi.Principal{Name: "token:" + cmp.Or(t.Label, fmt.Sprintf("#%d", found))}
	for _, s := range t.Scopes {
		c, _ := mgmtapi.ParseScope(s)
		p.Scopes = append(p.Scopes, c)
	}
	return p, nil
}

// apiTokenCmd implements "meridian api-token": a token for api.tokens.
func apiTokenCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("api-token", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	scopes := fs.StringSlice("scope", nil, "what the token may do: read, admin or zone:ORIGIN (repeatable)")
	label := fs.String("label", "", "a name for the token, in the log")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: meridian api-token --scope SCOPE... [--label L]\n\nMake a token for the management API of \"meridian serve\" without a database.\n\nFlags:\n%s", fs.FlagUsages())
	}
	if code, ok := cli.ParseFlags(fs, "meridian api-token", args, stderr); !ok {
		return code
	}
	if len(*scopes) == 0 || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	var canon []string
	for _, s := range *scopes {
		c, err := mgmtapi.ParseScope(s)
		if err != nil {
			fmt.Fprintf(stderr, "meridian api-token: %v\n", err)
			return 2
		}
		canon = append(canon, fmt.Sprintf("%q", c))
	}
	token, sum, err := postgres.NewToken()
	if err != nil {
		fmt.Fprintf(stderr, "meridian api-token: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "token: %s\n\n# Add to api.tokens in the configuration (the token itself is not kept):\n", token)
	fmt.Fprintf(stdout, "- {sha256: %s, scopes: [%s], label: %q}\n", hex.EncodeToString(sum), strings.Join(canon, ", "), *label)
	return 0
}
