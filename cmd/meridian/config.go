package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/meridiandns/meridian/dnsserver"
	"github.com/meridiandns/meridian/secondary"
	"github.com/meridiandns/meridian/signing"
	"github.com/meridiandns/meridian/signing/keyseal"
	"github.com/meridiandns/meridian/store/postgres"
	"github.com/meridiandns/meridian/transfer"
)

// This file is the only place that uses viper. It fills config from, in
// order of precedence: flags, MERIDIAN_* environment variables, the YAML
// config file, defaults. Other packages get plain structs
// (dnsserver.Config, a list of zone files).

// envPrefix prefixes every environment variable: key dns.nsid is read from
// MERIDIAN_DNS_NSID. List values in the environment are comma separated.
const envPrefix = "MERIDIAN"

// config is the configuration of "meridian serve". Every key is
// documented here and in examples/meridian.yaml.
type config struct {
	DNS    dnsConfig    `mapstructure:"dns"`
	Zones  zonesConfig  `mapstructure:"zones"`
	DNSSEC dnssecConfig `mapstructure:"dnssec"`
	Store  storeConfig  `mapstructure:"store"`
	Health healthConfig `mapstructure:"health"`
	Geo    geoConfig    `mapstructure:"geo"`
	HTTP   httpConfig   `mapstructure:"http"`
	Dnstap dnstapConfig `mapstructure:"dnstap"`
	// Transfer is in config_transfer.go.
	Transfer transferConfig `mapstructure:"transfer"`
	// Secondary is in config_secondary.go.
	Secondary secondaryConfig `mapstructure:"secondary"`
	// Update is in config_update.go.
	Update updateConfig `mapstructure:"update"`
	// API is in config_api.go.
	API apiConfig `mapstructure:"api"`
	Log logConfig `mapstructure:"log"`

	// file is the config file read, "" when there is none.
	file string
	// warnings are problems that do not stop the server, for the log.
	warnings []string
	// reread loads the configuration again from the same flags, file and
	// environment, for SIGHUP.
	reread func() (*config, error)
}

// otherEnv are MERIDIAN_ variables other programs read (meridianctl,
// meridian-checker, the test suite), not configuration keys.
var otherEnv = map[string]bool{"MERIDIAN_TEST_DATABASE_URL": true}

// unknownEnv returns a warning for each MERIDIAN_ environment variable
// that names no configuration key: a misspelt variable would otherwise be
// ignored without a word.
func unknownEnv(keys []string) []string {
	known := map[string]bool{}
	for _, k := range keys {
		known[envPrefix+"_"+strings.ToUpper(strings.ReplaceAll(k, ".", "_"))] = true
	}
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, envPrefix+"_") && !known[name] && !otherEnv[name] {
			out = append(out, fmt.Sprintf("environment variable %s names no configuration key; ignored", name))
		}
	}
	sort.Strings(out)
	return out
}

// dnsConfig is the "dns" section: the DNS listener (dnsserver.Config).
type dnsConfig struct {
	// Listen (dns.listen) lists IP:port addresses, each served over UDP
	// and TCP. Port 0 picks a free port. Flag --listen.
	Listen []string `mapstructure:"listen"`
	// NSID (dns.nsid) is the server identity sent to clients asking for
	// it (RFC 5001); empty disables NSID. Flag --nsid.
	NSID string `mapstructure:"nsid"`
	// UDPWorkers (dns.udp_workers) is the number of sockets and reading
	// goroutines per UDP address; 0 means one per CPU.
	UDPWorkers int `mapstructure:"udp_workers"`
	// TCPIdleTimeout (dns.tcp_idle_timeout) closes a TCP connection that
	// sends no query for this long, e.g. "10s" (RFC 7766 section 6.2.3).
	TCPIdleTimeout time.Duration `mapstructure:"tcp_idle_timeout"`
	// TCPMaxConnections (dns.tcp_max_connections) caps concurrent TCP
	// connections.
	TCPMaxConnections int `mapstructure:"tcp_max_connections"`
	// TCPMaxConnectionsPerClient (dns.tcp_max_connections_per_client)
	// caps concurrent TCP connections from one client address; 0 means
	// only tcp_max_connections applies.
	TCPMaxConnectionsPerClient int `mapstructure:"tcp_max_connections_per_client"`
	// TCPMaxQueries (dns.tcp_max_queries) caps queries per TCP
	// connection; 0 means unlimited.
	TCPMaxQueries int `mapstructure:"tcp_max_queries"`
	// Lameduck (dns.lameduck) keeps answering this long after SIGTERM or
	// SIGINT while /readyz already says "shutting down", so that load
	// balancers and orchestrators stop sending queries before the sockets
	// close; 0 closes at once. A second signal ends it early.
	Lameduck time.Duration `mapstructure:"lameduck"`
	// RRL (dns.rrl) limits UDP replies per client network.
	RRL rrlConfig `mapstructure:"rrl"`
	// Cookies (dns.cookies) configures DNS cookies (RFC 7873).
	Cookies cookiesConfig `mapstructure:"cookies"`
}

// cookiesConfig is the "dns.cookies" section: DNS cookies (RFC 7873) with
// interoperable server cookies (RFC 9018).
type cookiesConfig struct {
	// Enabled (dns.cookies.enabled) answers COOKIE options; off, they are
	// ignored like any unknown option.
	Enabled bool `mapstructure:"enabled"`
	// Secret (dns.cookies.secret) is the 128-bit secret, in hex, that
	// makes server cookies; empty means a random one at each start. The
	// servers of a fleet behind one address share it.
	Secret string `mapstructure:"secret"`
	// AcceptSecrets (dns.cookies.accept_secrets) are further secrets whose
	// cookies stay valid: the old one during a rollover, or the next one
	// before it is made the secret.
	AcceptSecrets []string `mapstructure:"accept_secrets"`
}

// parse returns the dnsserver configuration of the cookies section.
func (c cookiesConfig) parse() (dnsserver.CookieConfig, error) {
	out := dnsserver.CookieConfig{Disabled: !c.Enabled}
	if c.Secret != "" {
		k, err := dnsserver.ParseCookieSecret(c.Secret)
		if err != nil {
			return out, fmt.Errorf("dns.cookies.secret: %w", err)
		}
		out.Secret = k
	}
	for i, s := range c.AcceptSecrets {
		k, err := dnsserver.ParseCookieSecret(s)
		if err != nil {
			return out, fmt.Errorf("dns.cookies.accept_secrets[%d]: %w", i, err)
		}
		out.Accept = append(out.Accept, k)
	}
	if len(out.Accept) > 0 && c.Secret == "" {
		return out, fmt.Errorf("dns.cookies.accept_secrets: set dns.cookies.secret too; a random secret cannot be rolled over")
	}
	return out, nil
}

// rrlConfig is the "dns.rrl" section: response rate limiting
// (dnsserver.RRLConfig), against floods of spoofed queries that aim our
// replies at a victim.
type rrlConfig struct {
	// ResponsesPerSecond (dns.rrl.responses_per_second) is the rate of UDP
	// replies each client network gets, with bursts of a second's worth;
	// 0 turns rate limiting off.
	ResponsesPerSecond int `mapstructure:"responses_per_second"`
	// Slip (dns.rrl.slip) sends every slip-th limited reply truncated, so
	// that a real client retries over TCP; 0 drops them all.
	Slip int `mapstructure:"slip"`
	// IPv4Prefix and IPv6Prefix (dns.rrl.ipv4_prefix, dns.rrl.ipv6_prefix)
	// group clients into the networks limited together.
	IPv4Prefix int `mapstructure:"ipv4_prefix"`
	IPv6Prefix int `mapstructure:"ipv6_prefix"`
	// TableSize (dns.rrl.table_size) is how many networks are tracked at
	// once.
	TableSize int `mapstructure:"table_size"`
	// Exempt (dns.rrl.exempt) lists networks (CIDR) never limited.
	Exempt []string `mapstructure:"exempt"`
}

// zonesConfig is the "zones" section: where zone data comes from.
type zonesConfig struct {
	// Files (zones.files) lists zone files, one zone each: *.yaml and
	// *.yml in the YAML zone format, anything else as RFC 1035 master
	// files. Relative paths in the config file are resolved against the
	// config file's directory; those from flags (--zone-file, repeatable)
	// and the environment against the working directory.
	Files []string `mapstructure:"files"`
}

// dnssecConfig is the "dnssec" section: signing the zone files' zones
// (docs/dnssec.md).
type dnssecConfig struct {
	// KeyDir (dnssec.key_dir) is a directory of BIND-style key files,
	// K<zone>+<alg>+<tag>.key and .private ("meridian keys generate" and
	// dnssec-keygen write them); every served zone with keys there is
	// signed. Read again at each reload. Empty: nothing is signed. A
	// relative path in the config file is resolved against its directory.
	KeyDir string `mapstructure:"key_dir"`
	// SignatureValidity (dnssec.signature_validity) is how long an RRSIG
	// is valid from when it is made.
	SignatureValidity time.Duration `mapstructure:"signature_validity"`
	// SignatureRefresh (dnssec.signature_refresh) is how much validity is
	// left when signatures are made again.
	SignatureRefresh time.Duration `mapstructure:"signature_refresh"`
	// SignatureCache (dnssec.signature_cache) is how many signatures made
	// on the query path (pool answers, names that do not exist,
	// wildcards) are kept, in either mode.
	SignatureCache int `mapstructure:"signature_cache"`
}

// policy returns the signature policy of the section.
func (d dnssecConfig) policy() signing.Policy {
	p := signing.DefaultPolicy()
	p.Validity, p.Refresh = d.SignatureValidity, d.SignatureRefresh
	return p
}

// storeConfig is the "store" section: a PostgreSQL database instead of
// zone files.
type storeConfig struct {
	// Database (store.database) is a PostgreSQL URL
	// (postgres://user:pass@host/db). When set, zones come from the
	// database (maintained with meridianctl) and zones.files must be
	// empty. Flag --database.
	Database string `mapstructure:"database"`
	// CacheFile (store.cache_file) receives the last data loaded, so that
	// a server restarted while the database is unreachable still answers.
	// Empty disables it. A relative path in the config file is resolved
	// against its directory.
	CacheFile string `mapstructure:"cache_file"`
	// PollInterval (store.poll_interval) is how often the data version is
	// checked when no change notification arrives: the longest a lost
	// notification delays a change.
	PollInterval time.Duration `mapstructure:"poll_interval"`
	// KeySecret (store.key_secret) is the secret, base64 of 32 random
	// octets, that seals the private halves of the zones' DNSSEC keys in
	// the database (meridianctl keys). Every server and meridianctl need
	// the same one; keep it in the environment, not in a file.
	KeySecret string `mapstructure:"key_secret"`
	// KeyOldSecrets (store.key_old_secrets) are secrets being rotated
	// out: keys sealed with them still open, until "meridianctl keys
	// reseal" seals them with KeySecret.
	KeyOldSecrets []string `mapstructure:"key_old_secrets"`
	// ChangeLogRetention (store.change_log_retention) is how long the
	// database's change log keeps a change: the server prunes older ones
	// hourly. A server that falls further behind reloads every zone. 0
	// disables pruning by this server.
	ChangeLogRetention time.Duration `mapstructure:"change_log_retention"`
	// WriteDatabase (store.write_database) is the primary that this
	// server's writes go to (dynamic updates, the management API) when
	// store.database is a standby; empty: store.database.
	WriteDatabase string `mapstructure:"write_database"`
	// The keys of reading a hot standby and of falling back to other
	// databases; config_replica.go describes and checks them.
	FallbackDatabases   []string      `mapstructure:"fallback_databases"`
	StandbyPollInterval time.Duration `mapstructure:"standby_poll_interval"`
	MaxReplicationLag   time.Duration `mapstructure:"max_replication_lag"`
}

// writeDatabase is where this server writes: store.write_database, or
// store.database.
func (s storeConfig) writeDatabase() string {
	if s.WriteDatabase != "" {
		return s.WriteDatabase
	}
	return s.Database
}

// keyring returns the keyring of store.key_secret and
// store.key_old_secrets, nil when no secret is set. Errors name the key,
// never the secret.
func (s storeConfig) keyring() (*keyseal.Keyring, error) {
	if s.KeySecret == "" {
		if len(s.KeyOldSecrets) > 0 {
			return nil, errors.New("store.key_old_secrets is set without store.key_secret: the current secret seals, the old ones only open")
		}
		return nil, nil
	}
	current, err := keyseal.ParseSecret(s.KeySecret)
	if err != nil {
		return nil, fmt.Errorf("store.key_secret: %w", err)
	}
	var old [][]byte
	for i, text := range s.KeyOldSecrets {
		b, err := keyseal.ParseSecret(text)
		if err != nil {
			return nil, fmt.Errorf("store.key_old_secrets[%d]: %w", i, err)
		}
		old = append(old, b)
	}
	ring, err := keyseal.New(current, old...)
	if err != nil {
		return nil, fmt.Errorf("store.key_secret: %w", err)
	}
	return ring, nil
}

// healthConfig is the "health" section.
type healthConfig struct {
	// Checks (health.checks) runs the pools' health checks in-process
	// when serving zone files, keeping what they find in memory. With
	// store.database set, meridian-checker does it instead.
	Checks bool `mapstructure:"checks"`
	// AgentListen (health.agent_listen) serves the health-agent API on
	// this address when serving zone files; empty: not served. With a
	// database, meridian-checker --listen serves it.
	AgentListen string `mapstructure:"agent_listen"`
	// AgentTokens (health.agent_tokens) are the API's tokens, by hash:
	// "meridian agent-token" makes one and prints its entry.
	AgentTokens []agentToken `mapstructure:"agent_tokens"`
}

// geoConfig is the "geo" section: the GeoIP database that locates clients.
type geoConfig struct {
	// Database (geo.database) is a MaxMind-format City or Country file
	// (GeoIP2, GeoLite2, DB-IP). Empty: no database; pools then order
	// datacenters by CIDR rules and configuration order only. A relative
	// path in the config file is resolved against its directory.
	// Flag --geoip.
	Database string `mapstructure:"database"`
	// ReloadInterval (geo.reload_interval) is how often the file is
	// checked for replacement (as geoipupdate does it); a replaced file
	// is reopened without a restart, a broken one refused.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
}

// httpConfig is the "http" section: the operations endpoint.
type httpConfig struct {
	// Listen (http.listen) serves /metrics (Prometheus), /healthz (200
	// while the process runs) and /readyz (200 once the first snapshot is
	// served) on this host:port; empty: not served. Flag --http-listen.
	Listen string `mapstructure:"listen"`
}

// dnstapConfig is the "dnstap" section: query logging in dnstap format.
// Off unless socket or file is set.
type dnstapConfig struct {
	// Socket (dnstap.socket) is the unix socket of a dnstap collector;
	// the connection is retried while the collector is away.
	Socket string `mapstructure:"socket"`
	// File (dnstap.file) is a file to write dnstap to, truncated at
	// start. Relative paths in the config file are resolved against its
	// directory.
	File string `mapstructure:"file"`
	// Identity (dnstap.identity) names this server in every message;
	// default: the host name.
	Identity string `mapstructure:"identity"`
	// Queue (dnstap.queue) is how many queries wait for the writer at
	// most; beyond, they are dropped and counted
	// (meridian_dnstap_messages_total{result="dropped"}).
	Queue int `mapstructure:"queue"`
}

// logConfig is the "log" section.
type logConfig struct {
	// Level (log.level) is debug, info, warn or error. Flag --log-level.
	Level string `mapstructure:"level"`
	// Format (log.format) is text or json. Flag --log-format.
	Format string `mapstructure:"format"`
}

// newServeFlags returns the flags of "meridian serve".
func newServeFlags() *pflag.FlagSet {
	def := dnsserver.DefaultConfig()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.String("config", "", "YAML config file (optional)")
	fs.StringSlice("listen", def.Listen, "IP:port to serve DNS on over UDP and TCP (repeatable)")
	fs.StringArray("zone-file", nil, "zone file to serve (repeatable; .yaml/.yml or RFC 1035 master file)")
	fs.String("nsid", def.NSID, "NSID to return to clients that ask (RFC 5001)")
	fs.String("geoip", "", "GeoIP database (MaxMind-format City or Country file)")
	fs.String("database", "", "PostgreSQL URL to load zones from instead of zone files")
	fs.String("http-listen", "", "serve /metrics, /healthz and /readyz on this host:port")
	fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.String("log-format", "text", "log format: text or json")
	return fs
}

// flagKeys maps flags to the config keys they set.
var flagKeys = map[string]string{
	"listen":      "dns.listen",
	"zone-file":   "zones.files",
	"nsid":        "dns.nsid",
	"geoip":       "geo.database",
	"database":    "store.database",
	"http-listen": "http.listen",
	"log-level":   "log.level",
	"log-format":  "log.format",
}

// loadConfig builds the configuration from the parsed flags fs, the
// environment and the config file named by --config, and validates it.
// Unknown keys in the config file are errors.
func loadConfig(fs *pflag.FlagSet) (*config, error) {
	def := dnsserver.DefaultConfig()
	v := viper.New()
	v.SetDefault("dns.listen", def.Listen)
	v.SetDefault("dns.nsid", def.NSID)
	v.SetDefault("dns.udp_workers", def.UDPWorkers)
	v.SetDefault("dns.tcp_idle_timeout", def.TCPIdleTimeout)
	v.SetDefault("dns.tcp_max_connections", def.TCPMaxConns)
	v.SetDefault("dns.tcp_max_connections_per_client", def.TCPMaxConnsPerClient)
	v.SetDefault("dns.tcp_max_queries", def.TCPMaxQueries)
	v.SetDefault("dns.lameduck", time.Duration(0))
	rrl := dnsserver.DefaultRRL()
	v.SetDefault("dns.rrl.responses_per_second", 0) // off unless configured: production configs turn it on
	v.SetDefault("dns.rrl.slip", rrl.Slip)
	v.SetDefault("dns.rrl.ipv4_prefix", rrl.IPv4Prefix)
	v.SetDefault("dns.rrl.ipv6_prefix", rrl.IPv6Prefix)
	v.SetDefault("dns.rrl.table_size", rrl.TableSize)
	v.SetDefault("dns.rrl.exempt", []string{})
	v.SetDefault("dns.cookies.enabled", true)
	v.SetDefault("dns.cookies.secret", "")
	v.SetDefault("dns.cookies.accept_secrets", []string{})
	v.SetDefault("zones.files", []string{})
	pol := signing.DefaultPolicy()
	v.SetDefault("dnssec.key_dir", "")
	v.SetDefault("dnssec.signature_validity", pol.Validity)
	v.SetDefault("dnssec.signature_refresh", pol.Refresh)
	v.SetDefault("dnssec.signature_cache", dnsserver.DefaultSignatureCache)
	v.SetDefault("store.database", "")
	v.SetDefault("store.cache_file", "")
	v.SetDefault("store.poll_interval", 5*time.Second)
	v.SetDefault("store.key_secret", "")
	v.SetDefault("store.key_old_secrets", []string{})
	v.SetDefault("store.change_log_retention", postgres.DefaultChangeLogRetention)
	setReplicaDefaults(v)
	v.SetDefault("store.write_database", "")
	v.SetDefault("health.checks", true)
	v.SetDefault("health.agent_listen", "")
	v.SetDefault("geo.database", "")
	v.SetDefault("geo.reload_interval", 30*time.Second)
	v.SetDefault("http.listen", "")
	v.SetDefault("dnstap.socket", "")
	v.SetDefault("dnstap.file", "")
	v.SetDefault("dnstap.identity", "")
	v.SetDefault("dnstap.queue", 10000)
	setAPIDefaults(v)
	v.SetDefault("transfer.journal_size", transfer.DefaultJournalSize)
	v.SetDefault("transfer.notify_tries", transfer.DefaultNotifyTries)
	v.SetDefault("transfer.notify_timeout", transfer.DefaultNotifyTimeout)
	v.SetDefault("secondary.first_retry", secondary.DefaultFirstRetry)
	v.SetDefault("secondary.timeout", secondary.DefaultTimeout)
	v.SetDefault("log.level", "info")
	v.SetDefault("log.format", "text")

	v.SetEnvPrefix(envPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	for flag, key := range flagKeys {
		if err := v.BindPFlag(key, fs.Lookup(flag)); err != nil {
			return nil, fmt.Errorf("config: bind flag --%s: %w", flag, err)
		}
	}

	file, _ := fs.GetString("config")
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return nil, fmt.Errorf("config: read %s: %w", file, err)
		}
	}

	c := &config{file: file, reread: func() (*config, error) { return loadConfig(fs) }}
	if err := v.UnmarshalExact(c); err != nil {
		if file != "" {
			return nil, fmt.Errorf("config: %s: %w", file, err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}

	// Zone files named in the config file are relative to it, so that a
	// config and its zones can be moved together.
	fromFile := file != "" && !fs.Changed("zone-file") && os.Getenv(envPrefix+"_ZONES_FILES") == ""
	if fromFile {
		dir := filepath.Dir(file)
		for i, p := range c.Zones.Files {
			if !filepath.IsAbs(p) {
				c.Zones.Files[i] = filepath.Join(dir, p)
			}
		}
		for i, z := range c.Secondary.Zones {
			if z.Pools != "" && !filepath.IsAbs(z.Pools) {
				c.Secondary.Zones[i].Pools = filepath.Join(dir, z.Pools)
			}
		}
	}
	if file != "" && !fs.Changed("geoip") && os.Getenv(envPrefix+"_GEO_DATABASE") == "" &&
		c.Geo.Database != "" && !filepath.IsAbs(c.Geo.Database) {
		c.Geo.Database = filepath.Join(filepath.Dir(file), c.Geo.Database)
	}
	if file != "" && os.Getenv(envPrefix+"_DNSSEC_KEY_DIR") == "" &&
		c.DNSSEC.KeyDir != "" && !filepath.IsAbs(c.DNSSEC.KeyDir) {
		c.DNSSEC.KeyDir = filepath.Join(filepath.Dir(file), c.DNSSEC.KeyDir)
	}
	if file != "" && os.Getenv(envPrefix+"_STORE_CACHE_FILE") == "" &&
		c.Store.CacheFile != "" && !filepath.IsAbs(c.Store.CacheFile) {
		c.Store.CacheFile = filepath.Join(filepath.Dir(file), c.Store.CacheFile)
	}
	if file != "" && os.Getenv(envPrefix+"_DNSTAP_FILE") == "" &&
		c.Dnstap.File != "" && !filepath.IsAbs(c.Dnstap.File) {
		c.Dnstap.File = filepath.Join(filepath.Dir(file), c.Dnstap.File)
	}
	if file != "" && os.Getenv(envPrefix+"_DNSTAP_SOCKET") == "" &&
		c.Dnstap.Socket != "" && !filepath.IsAbs(c.Dnstap.Socket) {
		c.Dnstap.Socket = filepath.Join(filepath.Dir(file), c.Dnstap.Socket)
	}
	c.warnings = unknownEnv(v.AllKeys())
	if c.Store.Database != "" && v.InConfig("health") {
		c.warnings = append(c.warnings, "the health section is ignored with store.database: meridian-checker does the checks and serves the agent API")
	}

	if err := c.validate(); err != nil {
		if file != "" {
			return nil, fmt.Errorf("config: %s: %w", file, err)
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// validate reports the first problem with c.
func (c *config) validate() error {
	if _, err := c.Log.level(); err != nil {
		return err
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format: want text or json, got %q", c.Log.Format)
	}
	switch {
	case c.Store.Database != "" && len(c.Zones.Files) > 0:
		return errors.New("zones.files and store.database are both set: serve either zone files or the database")
	case c.Store.Database == "" && len(c.Zones.Files) == 0 && !c.Secondary.enabled():
		return errors.New("zones.files: no zone files (set zones.files or --zone-file, store.database, or secondary.zones)")
	case c.Store.Database == "" && c.Store.CacheFile != "":
		return errors.New("store.cache_file is set without store.database")
	case c.Store.Database != "" && c.DNSSEC.KeyDir != "":
		return errors.New("dnssec.key_dir is set with store.database: key files sign the zones of zone files only")
	case c.Store.Database == "" && (c.Store.KeySecret != "" || len(c.Store.KeyOldSecrets) > 0):
		return errors.New("store.key_secret is set without store.database: it opens the keys in the database (zone files are signed with dnssec.key_dir)")
	}
	if _, err := c.Store.keyring(); err != nil {
		return err
	}
	if err := c.Store.validateReplica(); err != nil {
		return err
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dnssec.signature_validity", c.DNSSEC.SignatureValidity}, {"dnssec.signature_refresh", c.DNSSEC.SignatureRefresh}} {
		if d.v < time.Second {
			return fmt.Errorf("%s: %s is less than a second; write a unit, e.g. \"336h\"", d.key, d.v)
		}
	}
	if err := c.DNSSEC.policy().Validate(); err != nil {
		return fmt.Errorf("dnssec.signature_validity %s, dnssec.signature_refresh %s: the validity must be at least an hour and the refresh shorter than it", c.DNSSEC.SignatureValidity, c.DNSSEC.SignatureRefresh)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"dns.tcp_idle_timeout", c.DNS.TCPIdleTimeout}, {"dns.lameduck", c.DNS.Lameduck}, {"store.poll_interval", c.Store.PollInterval},
		{"store.change_log_retention", c.Store.ChangeLogRetention}, {"geo.reload_interval", c.Geo.ReloadInterval}} {
		// A bare number is read as nanoseconds: "5" would be 5ns.
		if d.v > 0 && d.v < time.Millisecond {
			return fmt.Errorf("%s: %s is less than a millisecond; write a unit, e.g. \"5s\"", d.key, d.v)
		}
	}
	if c.DNS.Lameduck < 0 {
		return fmt.Errorf("dns.lameduck: must not be negative, got %s", c.DNS.Lameduck)
	}
	if c.Store.PollInterval <= 0 {
		return fmt.Errorf("store.poll_interval: must be positive, got %s", c.Store.PollInterval)
	}
	if c.Store.ChangeLogRetention < 0 {
		return fmt.Errorf("store.change_log_retention: must not be negative (0 turns pruning off), got %s", c.Store.ChangeLogRetention)
	}
	for _, f := range c.Zones.Files {
		if f == "" {
			return errors.New("zones.files: empty path")
		}
	}
	if c.Dnstap.Socket != "" && c.Dnstap.File != "" {
		return errors.New("dnstap.socket and dnstap.file are both set: choose one output")
	}
	if _, err := c.Transfer.parse(); err != nil {
		return err
	}
	if _, err := c.Secondary.parse(c.Transfer.TSIGKeys); err != nil {
		return err
	}
	if _, err := c.Update.parse(c.Transfer.TSIGKeys); err != nil {
		return err
	}
	if err := c.API.check(c.Store.Database); err != nil {
		return err
	}
	if c.Dnstap.Queue <= 0 {
		return fmt.Errorf("dnstap.queue: must be positive, got %d", c.Dnstap.Queue)
	}
	if c.HTTP.Listen != "" {
		if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
			return fmt.Errorf("http.listen: want host:port, got %q", c.HTTP.Listen)
		}
	}
	if c.Geo.ReloadInterval <= 0 {
		return fmt.Errorf("geo.reload_interval: must be positive, got %s", c.Geo.ReloadInterval)
	}
	if _, err := c.DNS.RRL.exempt(); err != nil {
		return err
	}
	if _, err := c.DNS.Cookies.parse(); err != nil {
		return err
	}
	srv := c.server()
	return srv.Validate()
}

// exempt parses dns.rrl.exempt.
func (r rrlConfig) exempt() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range r.Exempt {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("dns.rrl.exempt: %q is not a network in CIDR notation", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// server returns the dnsserver configuration.
func (c *config) server() dnsserver.Config {
	exempt, _ := c.DNS.RRL.exempt()     // checked by validate
	cookies, _ := c.DNS.Cookies.parse() // likewise
	return dnsserver.Config{
		Listen:               c.DNS.Listen,
		NSID:                 c.DNS.NSID,
		UDPWorkers:           c.DNS.UDPWorkers,
		TCPIdleTimeout:       c.DNS.TCPIdleTimeout,
		TCPMaxConns:          c.DNS.TCPMaxConnections,
		TCPMaxQueries:        c.DNS.TCPMaxQueries,
		TCPMaxConnsPerClient: c.DNS.TCPMaxConnectionsPerClient,
		RRL: dnsserver.RRLConfig{
			ResponsesPerSecond: c.DNS.RRL.ResponsesPerSecond,
			Slip:               c.DNS.RRL.Slip,
			IPv4Prefix:         c.DNS.RRL.IPv4Prefix,
			IPv6Prefix:         c.DNS.RRL.IPv6Prefix,
			TableSize:          c.DNS.RRL.TableSize,
			Exempt:             exempt,
		},
		Cookies:        cookies,
		SignatureCache: c.DNSSEC.SignatureCache,
	}
}

// level parses the log level.
func (l logConfig) level() (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(l.Level)); err != nil {
		return 0, fmt.Errorf("log.level: want debug, info, warn or error, got %q", l.Level)
	}
	return lv, nil
}
