package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/meridiandns/meridian/geo/geotest"
	"github.com/meridiandns/meridian/zones"
)

// loadCompose loads docker-compose.yml with the Compose specification's
// own loader, every profile enabled. The loader validates the file
// against the specification's JSON schema and checks its consistency
// (services, networks and volumes referenced exist).
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	details := types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: path("docker-compose.yml")}},
		Environment: types.Mapping{}, // the developer's environment must not change the result
	}
	p, err := loader.LoadWithContext(ctx, details, loader.WithProfiles([]string{"*"}))
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// service returns the named service, failing when there is none.
func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, ok := p.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml: no service %s", name)
	}
	return s
}

// bindSource returns the host path mounted at target in s.
func bindSource(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	t.Fatalf("service %s: nothing mounted at %s", s.Name, target)
	return ""
}

// published reports whether s publishes container port port/proto.
func published(s types.ServiceConfig, port int, proto string) bool {
	return slices.ContainsFunc(s.Ports, func(p types.ServicePortConfig) bool {
		return int(p.Target) == port && p.Protocol == proto && p.Published != ""
	})
}

// portOf returns the port of a host:port address or URL host.
func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return n
}

// flagValue returns the value following flag in args.
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// meridianConfig is the part of a meridian configuration file the tests
// compare with the compose file.
type meridianConfig struct {
	DNS struct {
		Listen []string `yaml:"listen"`
	} `yaml:"dns"`
	HTTP struct {
		Listen string `yaml:"listen"`
	} `yaml:"http"`
	Store struct {
		CacheFile string `yaml:"cache_file"`
	} `yaml:"store"`
}

// TestComposeFiles checks that every file and directory the compose file
// names exists: bind mounts and build contexts.
func TestComposeFiles(t *testing.T) {
	p := loadCompose(t)
	binds := 0
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			binds++
			if !strings.HasPrefix(v.Source, root+string(filepath.Separator)) {
				t.Errorf("service %s: mounts %s, outside the repository", s.Name, v.Source)
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s: mounts %v", s.Name, err)
			}
			if !v.ReadOnly {
				t.Errorf("service %s: %s is mounted writable", s.Name, v.Target)
			}
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				t.Errorf("service %s: build: %v", s.Name, err)
			}
		}
	}
	if binds < 5 {
		t.Errorf("found %d bind mounts; the loader did not resolve them?", binds)
	}
}

// TestComposeServices checks how the services fit together: start order,
// health checks, the ports each one serves against what its
// configuration says, the commands against the binaries of the image.
func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	binaries := dockerfileBinaries(t, parseDockerfile(t))

	// Start order: database healthy, schema, zone, then the daemons.
	deps := []struct{ service, on, condition string }{
		{"migrate", "postgres", types.ServiceConditionHealthy},
		{"apply", "migrate", types.ServiceConditionCompletedSuccessfully},
		{"meridian", "apply", types.ServiceConditionCompletedSuccessfully},
		{"meridian-checker", "apply", types.ServiceConditionCompletedSuccessfully},
	}
	for _, d := range deps {
		if got := service(t, p, d.service).DependsOn[d.on].Condition; got != d.condition {
			t.Errorf("service %s: depends on %s with condition %q, want %q", d.service, d.on, got, d.condition)
		}
	}
	if hc := service(t, p, "postgres").HealthCheck; hc == nil || len(hc.Test) == 0 || hc.Disable {
		t.Errorf("service postgres: no health check")
	}

	// Every Meridian service runs a binary the Dockerfile builds.
	for _, name := range []string{"migrate", "apply", "meridian", "meridian-checker", "meridianctl"} {
		s := service(t, p, name)
		argv := append(slices.Clone(s.Entrypoint), s.Command...)
		if s.Build == nil || len(argv) == 0 {
			t.Errorf("service %s: build %v, command %q", name, s.Build, argv)
			continue
		}
		if bin, ok := strings.CutPrefix(argv[0], "/usr/local/bin/"); !ok || !binaries[bin] {
			t.Errorf("service %s runs %s, which the Dockerfile does not build (%v)", name, argv[0], binaries)
		}
		if hc := s.HealthCheck; hc != nil && !hc.Disable && len(hc.Test) > 1 {
			if bin, ok := strings.CutPrefix(hc.Test[1], "/usr/local/bin/"); !ok || !binaries[bin] {
				t.Errorf("service %s: health check runs %s, which the Dockerfile does not build", name, hc.Test[1])
			}
		}
	}

	// meridian: its configuration's addresses are the ports published
	// and probed.
	m := service(t, p, "meridian")
	var cfg meridianConfig
	readYAML(t, relPath(t, bindSource(t, m, "/etc/meridian/meridian.yaml")), &cfg)
	if len(cfg.DNS.Listen) == 0 || cfg.HTTP.Listen == "" || cfg.Store.CacheFile == "" {
		t.Fatalf("compose meridian.yaml: dns.listen %q, http.listen %q, store.cache_file %q: all are needed", cfg.DNS.Listen, cfg.HTTP.Listen, cfg.Store.CacheFile)
	}
	for _, l := range cfg.DNS.Listen {
		for _, proto := range []string{"udp", "tcp"} {
			if !published(m, portOf(t, l), proto) {
				t.Errorf("service meridian: DNS port %d/%s is not published", portOf(t, l), proto)
			}
		}
	}
	httpPort := portOf(t, cfg.HTTP.Listen)
	if !published(m, httpPort, "tcp") {
		t.Errorf("service meridian: http.listen port %d is not published", httpPort)
	}
	checkProbe(t, m, httpPort, "/readyz")
	if !slices.ContainsFunc(m.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && strings.HasPrefix(cfg.Store.CacheFile, v.Target+"/")
	}) {
		t.Errorf("service meridian: store.cache_file %s is not on a volume", cfg.Store.CacheFile)
	}

	// The checker: --listen is published and probed.
	c := service(t, p, "meridian-checker")
	checkerPort := portOf(t, flagValue(c.Command, "--listen"))
	if !published(c, checkerPort, "tcp") {
		t.Errorf("service meridian-checker: --listen port %d is not published", checkerPort)
	}
	checkProbe(t, c, checkerPort, "/healthz")

	// The database URL of every Meridian service is the postgres service.
	pg := service(t, p, "postgres").Environment
	for _, name := range []string{"migrate", "apply", "meridian", "meridian-checker", "meridianctl"} {
		v := service(t, p, name).Environment["MERIDIAN_STORE_DATABASE"]
		if v == nil {
			t.Errorf("service %s: no MERIDIAN_STORE_DATABASE", name)
			continue
		}
		u, err := url.Parse(*v)
		if err != nil {
			t.Fatal(err)
		}
		pass, _ := u.User.Password()
		if u.Hostname() != "postgres" || u.User.Username() != *pg["POSTGRES_USER"] || pass != *pg["POSTGRES_PASSWORD"] || u.Path != "/"+*pg["POSTGRES_DB"] {
			t.Errorf("service %s: database %s is not the postgres service's", name, *v)
		}
	}

	// Prometheus scrapes the services at the ports they serve, and
	// loads the rules beside its configuration.
	prom := service(t, p, "prometheus")
	promCfg := bindSource(t, prom, "/etc/prometheus/prometheus.yml")
	if bindSource(t, prom, "/etc/prometheus/alerts.yml") != path("deploy/prometheus/alerts.yml") {
		t.Errorf("service prometheus: alerts.yml is not deploy/prometheus/alerts.yml")
	}
	var sc struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, relPath(t, promCfg), &sc)
	if !slices.Contains(sc.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml: rule_files %q, want alerts.yml", sc.RuleFiles)
	}
	wantPorts := map[string]int{"meridian": httpPort, "meridian-checker": checkerPort}
	jobs := map[string]bool{}
	for _, job := range sc.ScrapeConfigs {
		jobs[job.JobName] = true
		for _, st := range job.StaticConfigs {
			for _, target := range st.Targets {
				host, _, _ := net.SplitHostPort(target)
				if want, ok := wantPorts[host]; ok && portOf(t, target) != want {
					t.Errorf("prometheus.yml: job %s scrapes %s, but %s serves metrics on %d", job.JobName, target, host, want)
				}
				if _, ok := p.Services[host]; !ok && host != "localhost" {
					t.Errorf("prometheus.yml: job %s scrapes %s, not a compose service", job.JobName, target)
				}
			}
		}
	}
	for _, job := range []string{"meridian", "meridian-checker"} {
		if !jobs[job] {
			t.Errorf("prometheus.yml: no job %s (alerts.yml and the dashboard select on it)", job)
		}
	}

	// Grafana finds the dashboard where it is mounted, and Prometheus.
	g := service(t, p, "grafana")
	var dp struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "deploy/grafana/provisioning/dashboards/meridian.yml", &dp)
	dash := filepath.Join(dp.Providers[0].Options.Path, "meridian.json")
	if bindSource(t, g, dash) != path("deploy/grafana/meridian.json") {
		t.Errorf("service grafana: %s is not deploy/grafana/meridian.json", dash)
	}
	for _, dir := range []string{"datasources", "dashboards"} {
		if bindSource(t, g, "/etc/grafana/provisioning/"+dir) != path("deploy/grafana/provisioning/"+dir) {
			t.Errorf("service grafana: provisioning/%s is not deploy/grafana/provisioning/%s", dir, dir)
		}
	}
	var ds struct {
		Datasources []struct{ URL string } `yaml:"datasources"`
	}
	readYAML(t, "deploy/grafana/provisioning/datasources/prometheus.yml", &ds)
	if u, err := url.Parse(ds.Datasources[0].URL); err != nil || u.Hostname() != "prometheus" || !published(prom, portOf(t, u.Host), "tcp") {
		t.Errorf("grafana data source %s is not the prometheus service", ds.Datasources[0].URL)
	}
}

// checkProbe checks that s has a health check running httpprobe on the
// port and path given.
func checkProbe(t *testing.T, s types.ServiceConfig, port int, urlPath string) {
	t.Helper()
	hc := s.HealthCheck
	if hc == nil || hc.Disable || len(hc.Test) != 3 || hc.Test[0] != "CMD" || filepath.Base(hc.Test[1]) != "httpprobe" {
		t.Errorf("service %s: health check %+v, want [CMD .../httpprobe URL]", s.Name, hc)
		return
	}
	u, err := url.Parse(hc.Test[2])
	if err != nil || portOf(t, u.Host) != port || u.Path != urlPath {
		t.Errorf("service %s: health check probes %s, want port %d, path %s", s.Name, hc.Test[2], port, urlPath)
	}
}

// relPath returns abs relative to the root, slash-separated.
func relPath(t *testing.T, abs string) string {
	t.Helper()
	rel, err := filepath.Rel(root, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		t.Fatalf("%s is outside the repository", abs)
	}
	return filepath.ToSlash(rel)
}

// TestComposeDemoPool checks the demo: the zone the apply service loads
// passes Meridian's zone loader (as meridianctl apply reads it) and
// compiles, its pool's endpoints are exactly the backends, at fixed
// addresses of the compose network outside its dynamic range, and the
// backends serve the health check the pool asks for.
func TestComposeDemoPool(t *testing.T) {
	p := loadCompose(t)
	dir := bindSource(t, service(t, p, "apply"), "/etc/meridian/zones")
	if a := service(t, p, "apply").Command; flagValue(a, "-f") != "/etc/meridian/zones" {
		t.Errorf("service apply: %q does not apply /etc/meridian/zones", a)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("%s: no zone files (%v)", dir, err)
	}
	var all []*zones.Zone
	endpoints := map[netip.Addr]bool{}
	var checks []*zones.Pool
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		z, err := zones.Parse(b, f)
		if err != nil {
			t.Fatalf("demo zone: %v", err)
		}
		all = append(all, z)
		for i := range z.Pools {
			pool := &z.Pools[i]
			checks = append(checks, pool)
			for _, e := range pool.Endpoints {
				endpoints[e.Addr] = true
			}
		}
	}
	if _, err := zones.Build(all, 1); err != nil {
		t.Fatalf("demo zones do not compile: %v", err)
	}

	net := p.Networks["demo"]
	if net.Ipam.Config == nil || len(net.Ipam.Config) != 1 {
		t.Fatalf("network demo: ipam %+v, want one subnet", net.Ipam)
	}
	subnet, err := netip.ParsePrefix(net.Ipam.Config[0].Subnet)
	if err != nil {
		t.Fatal(err)
	}
	dynamic, err := netip.ParsePrefix(net.Ipam.Config[0].IPRange)
	if err != nil {
		t.Fatalf("network demo: ip_range: %v (fixed addresses need one apart)", err)
	}
	backends := map[netip.Addr]types.ServiceConfig{}
	for _, s := range p.Services {
		n := s.Networks["demo"]
		if n == nil || n.Ipv4Address == "" {
			continue
		}
		a, err := netip.ParseAddr(n.Ipv4Address)
		if err != nil {
			t.Fatal(err)
		}
		if !subnet.Contains(a) || dynamic.Contains(a) {
			t.Errorf("service %s: address %s not in %s outside %s", s.Name, a, subnet, dynamic)
		}
		backends[a] = s
	}
	if len(backends) != 3 {
		t.Errorf("%d services with fixed addresses, want the 3 backends", len(backends))
	}
	for a := range endpoints {
		if _, ok := backends[a]; !ok {
			t.Errorf("demo pool endpoint %s is no compose service", a)
		}
	}
	for a, s := range backends {
		if !endpoints[a] {
			t.Errorf("service %s (%s) is in no demo pool", s.Name, a)
		}
	}
	for _, pool := range checks {
		hc := pool.Check
		if hc == nil {
			t.Errorf("pool %s: no health check: the checker would probe nothing", pool.Name)
			continue
		}
		for a, s := range backends {
			cmd := strings.Join(s.Command, " ")
			if !strings.Contains(cmd, fmt.Sprintf("-p %d ", hc.Port)) || !strings.Contains(cmd, fmt.Sprintf("%s > /www%s", hc.ExpectBody, hc.Path)) {
				t.Errorf("backend %s (%s): %q does not serve %q at port %d, path %s", s.Name, a, cmd, hc.ExpectBody, hc.Port, hc.Path)
			}
		}
	}
}

// TestComposeMeridianCheck runs "meridian check" on the configuration
// and zone of the demo, with the environment of the meridian service,
// and on the image's default configuration.
func TestComposeMeridianCheck(t *testing.T) {
	p := loadCompose(t)
	m := service(t, p, "meridian")
	var env []string
	for k, v := range m.Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	zonesDir := bindSource(t, service(t, p, "apply"), "/etc/meridian/zones")
	files, _ := filepath.Glob(filepath.Join(zonesDir, "*.yaml"))
	checkConfig(t, relPath(t, bindSource(t, m, "/etc/meridian/meridian.yaml")), env, false, files...)
	checkConfig(t, "deploy/docker/meridian.yaml", env, false)
}

// checkConfig runs "meridian check --config cfg [zone files]" with env
// and fails unless it says the configuration is valid. With geoIP, a
// small test database replaces the one the configuration names.
func checkConfig(t *testing.T, cfg string, env []string, geoIP bool, zoneFiles ...string) {
	t.Helper()
	args := []string{"check", "--config", path(cfg)}
	if geoIP {
		db := filepath.Join(t.TempDir(), "city.mmdb")
		if err := geotest.Write(db, geotest.World); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--geoip", db)
	}
	args = append(args, zoneFiles...)
	r := run(t, time.Minute, root, env, meridian(t), args...)
	if r.err != nil || !strings.Contains(r.stdout, "valid") {
		t.Errorf("meridian %s:\n%s", strings.Join(args, " "), r)
	}
}

// dockerInstruction is one instruction of a Dockerfile.
type dockerInstruction struct {
	cmd   string // upper case
	args  string
	stage int // index of its FROM; -1 before the first
}

// parseDockerfile reads the Dockerfile's instructions, continuation
// lines joined, comments dropped.
func parseDockerfile(t *testing.T) []dockerInstruction {
	t.Helper()
	b, err := os.ReadFile(path("Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstruction
	stage := -1
	pending := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && pending == "") {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			pending += s + " "
			continue
		}
		full := strings.Join(strings.Fields(pending+trimmed), " ")
		pending = ""
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, dockerInstruction{cmd, args, stage})
	}
	if pending != "" {
		t.Fatal("Dockerfile ends in a continuation line")
	}
	return out
}

// dockerfileBinaries returns the names of the binaries the Dockerfile
// builds (the base names of the packages of its go build).
func dockerfileBinaries(t *testing.T, ins []dockerInstruction) map[string]bool {
	t.Helper()
	bins := map[string]bool{}
	for _, pkg := range dockerfilePackages(t, ins) {
		bins[filepath.Base(pkg)] = true
	}
	return bins
}

// dockerfilePackages returns the packages of the Dockerfile's go build.
func dockerfilePackages(t *testing.T, ins []dockerInstruction) []string {
	t.Helper()
	for _, in := range ins {
		if in.cmd != "RUN" || !strings.Contains(in.args, "go build") {
			continue
		}
		_, after, _ := strings.Cut(in.args, "go build")
		var pkgs []string
		for _, w := range strings.Fields(after) {
			if strings.HasPrefix(w, "./") {
				pkgs = append(pkgs, w)
			}
		}
		return pkgs
	}
	t.Fatal("Dockerfile: no go build")
	return nil
}

// TestDockerfile checks what can be checked without building: the Go
// version against go.mod, the stages, a static build of main packages,
// a non-root final stage, the module download in its own layer, and the
// ports against the image's default configuration.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t)
	gomod, err := os.ReadFile(path("go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goVersion == nil {
		t.Fatal("go.mod: no go directive")
	}
	var froms []string
	var finalUser, build string
	var exposed []string
	order := map[string]int{}
	for i, in := range ins {
		switch {
		case in.cmd == "ARG" && strings.HasPrefix(in.args, "GO_VERSION="):
			if v := strings.TrimPrefix(in.args, "GO_VERSION="); v != string(goVersion[1]) {
				t.Errorf("Dockerfile: GO_VERSION=%s, go.mod says go %s", v, goVersion[1])
			}
		case in.cmd == "FROM":
			froms = append(froms, in.args)
		case in.cmd == "USER":
			finalUser = in.args // the last one wins
		case in.cmd == "EXPOSE":
			exposed = append(exposed, strings.Fields(in.args)...)
		case in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			build = in.args
			order["build"] = i
		case in.cmd == "RUN" && strings.Contains(in.args, "go mod download"):
			order["download"] = i
		case in.cmd == "COPY" && in.args == "go.mod go.sum ./":
			order["copy go.mod"] = i
		case in.cmd == "COPY" && in.args == ". .":
			order["copy all"] = i
		}
	}
	if len(froms) != 2 || !strings.HasPrefix(froms[0], "--platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS ") ||
		froms[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("Dockerfile: stages %q, want a golang:${GO_VERSION}-bookworm builder and distroless static nonroot", froms)
	}
	if finalUser == "" || strings.HasPrefix(finalUser, "root") || strings.HasPrefix(finalUser, "0") || ins[len(ins)-1].stage != 1 {
		t.Errorf("Dockerfile: final USER %q, want a non-root user", finalUser)
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=$VERSION"`} {
		if !strings.Contains(build, want) {
			t.Errorf("Dockerfile: go build lacks %s: %s", want, build)
		}
	}
	if !(order["copy go.mod"] < order["download"] && order["download"] < order["copy all"] && order["copy all"] < order["build"]) {
		t.Errorf("Dockerfile: want COPY go.mod go.sum, go mod download, COPY . ., go build in that order: %v", order)
	}
	bins := dockerfileBinaries(t, ins)
	for _, want := range []string{"meridian", "meridian-checker", "meridianctl", "httpprobe"} {
		if !bins[want] {
			t.Errorf("Dockerfile: does not build %s", want)
		}
	}
	// The packages are main packages that build without cgo.
	pkgs := dockerfilePackages(t, ins)
	r := run(t, 2*time.Minute, root, []string{"CGO_ENABLED=0", "GOOS=linux"}, "go", append([]string{"list", "-f", "{{.Name}} {{.ImportPath}}"}, pkgs...)...)
	if r.err != nil {
		t.Fatalf("go list:\n%s", r)
	}
	for line := range strings.Lines(r.stdout) {
		if !strings.HasPrefix(line, "main ") {
			t.Errorf("Dockerfile builds %s: not a main package", strings.TrimSpace(line))
		}
	}

	// The executables the image runs are built; the ports are those of
	// the default configuration.
	var cfg meridianConfig
	readYAML(t, "deploy/docker/meridian.yaml", &cfg)
	httpPort := portOf(t, cfg.HTTP.Listen)
	for _, in := range ins {
		if in.stage != 1 || (in.cmd != "CMD" && in.cmd != "HEALTHCHECK") {
			continue
		}
		exec := in.args[strings.Index(in.args, "["):]
		var argv []string
		if err := json.Unmarshal([]byte(exec), &argv); err != nil {
			t.Errorf("Dockerfile: %s %s: want the exec (JSON) form: %v", in.cmd, in.args, err)
			continue
		}
		if bin, ok := strings.CutPrefix(argv[0], "/usr/local/bin/"); !ok || !bins[bin] {
			t.Errorf("Dockerfile: %s runs %s, not built", in.cmd, argv[0])
		}
		if in.cmd == "HEALTHCHECK" {
			if u, err := url.Parse(argv[len(argv)-1]); err != nil || portOf(t, u.Host) != httpPort || u.Path != "/readyz" {
				t.Errorf("Dockerfile: HEALTHCHECK probes %s, want /readyz on port %d", argv[len(argv)-1], httpPort)
			}
		}
	}
	for _, l := range cfg.DNS.Listen {
		for _, proto := range []string{"udp", "tcp"} {
			if want := fmt.Sprintf("%d/%s", portOf(t, l), proto); !slices.Contains(exposed, want) {
				t.Errorf("Dockerfile: EXPOSE %q lacks %s (dns.listen)", exposed, want)
			}
		}
	}
	if want := fmt.Sprintf("%d/tcp", httpPort); !slices.Contains(exposed, want) {
		t.Errorf("Dockerfile: EXPOSE %q lacks %s (http.listen)", exposed, want)
	}
}

// TestDockerignore checks that .dockerignore leaves in the build context
// every file the build needs: go.mod and go.sum, what COPY names, and
// every source and embedded file of the packages built and their
// dependencies in this module, as go list reports them.
func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(path(".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	rules := parseIgnore(t, string(b))
	ins := parseDockerfile(t)
	need := []string{"go.mod", "go.sum"}
	for _, in := range ins {
		if in.cmd != "COPY" || strings.Contains(in.args, "--from=") {
			continue
		}
		words := strings.Fields(in.args)
		for _, src := range words[:len(words)-1] {
			if strings.HasPrefix(src, "--") || src == "." {
				continue
			}
			if _, err := os.Stat(path(src)); err != nil {
				t.Errorf("Dockerfile: COPY %s: %v", src, err)
			}
			need = append(need, src)
		}
	}
	pkgs := dockerfilePackages(t, ins)
	r := run(t, 2*time.Minute, root, []string{"CGO_ENABLED=0", "GOOS=linux"}, "go",
		append([]string{"list", "-deps", "-f", `{{if and .Module .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}
{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}
{{end}}{{end}}`}, pkgs...)...)
	if r.err != nil {
		t.Fatalf("go list:\n%s", r)
	}
	for line := range strings.Lines(r.stdout) {
		if line = strings.TrimSpace(line); line != "" {
			need = append(need, relPath(t, line))
		}
	}
	if len(need) < 50 {
		t.Fatalf("only %d files needed? go list said:\n%s", len(need), r.stdout)
	}
	for _, f := range need {
		if ignored(rules, f) {
			t.Errorf(".dockerignore excludes %s, which the image build needs", f)
		}
	}
	// And it does keep out what it is for.
	for _, f := range []string{".git/HEAD", "examples/GeoLite2-City.mmdb", "docs/metrics.md", "dnsserver/server_test.go", "deploy/grafana/meridian.json"} {
		if !ignored(rules, f) {
			t.Errorf(".dockerignore lets %s into the build context", f)
		}
	}
}

// ignoreRule is one line of a .dockerignore file.
type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
}

// parseIgnore compiles .dockerignore patterns as Docker reads them:
// paths relative to the context, "*" and "?" within a path element,
// "**" across elements, "!" to let back in what earlier lines excluded.
func parseIgnore(t *testing.T, text string) []ignoreRule {
	t.Helper()
	var rules []ignoreRule
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		r := ignoreRule{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			r.negate, line = true, rest
		}
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		var re strings.Builder
		re.WriteString("^")
		for i := 0; i < len(line); i++ {
			switch c := line[i]; {
			case strings.HasPrefix(line[i:], "**/"):
				re.WriteString("(.*/)?")
				i += 2
			case strings.HasPrefix(line[i:], "**"):
				re.WriteString(".*")
				i++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(string(c)))
			}
		}
		re.WriteString("$")
		rx, err := regexp.Compile(re.String())
		if err != nil {
			t.Fatalf(".dockerignore: %q: %v", line, err)
		}
		r.re = rx
		rules = append(rules, r)
	}
	return rules
}

// ignored reports whether the rules keep file out of the context: the
// last rule matching it or one of its directories decides.
func ignored(rules []ignoreRule, file string) bool {
	out := false
	for _, r := range rules {
		for p := file; p != "." && p != ""; p = filepath.ToSlash(filepath.Dir(p)) {
			if r.re.MatchString(p) {
				out = !r.negate
				break
			}
		}
	}
	return out
}
