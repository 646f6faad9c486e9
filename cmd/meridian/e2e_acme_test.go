package main

// ACME DNS-01 end to end: Debian's lego, with its rfc2136 provider,
// obtains a certificate from Debian's pebble (Let's Encrypt's test CA),
// which validates the challenges by asking Meridian. Everything runs on
// 127.0.0.1 and every process is bounded in time.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meridiandns/meridian/internal/logbuf"
)

// acmeDomains are the names of the certificate. example.com and
// *.example.com are two authorizations with one challenge name,
// _acme-challenge.example.com; www.example.com has its own.
var acmeDomains = []string{"example.com", "*.example.com", "www.example.com"}

func TestE2EACME(t *testing.T) {
	requireDig(t)
	for _, tool := range []string{"lego", "pebble"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install the Debian package %s (scripts/test.sh does)", tool, tool)
		}
	}
	start := time.Now()
	dir := t.TempDir()
	zoneFile := filepath.Join(dir, "example.com.zone")
	zone := `$ORIGIN example.com.
$TTL 300
@    IN SOA ns1 hostmaster 10 7200 3600 1209600 60
@    IN NS  ns1
@    IN A   192.0.2.1
ns1  IN A   192.0.2.53
www  IN A   192.0.2.1
`
	if err := os.WriteFile(zoneFile, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	// The policy an operator writes for these names: the challenge of
	// the apex (and so of *.example.com) and of www, TXT only.
	conf := fmt.Sprintf(`dns:
  listen: ["127.0.0.1:0"]
zones:
  files: [%q]
health:
  checks: false
transfer:
  tsig_keys:
    - {name: acme-key, algorithm: hmac-sha256, secret: %q}
update:
  policy:
    - {key: acme-key, zones: [example.com.], names: [_acme-challenge, _acme-challenge.www], types: [TXT]}
`, zoneFile, acmeSecret)
	confFile := filepath.Join(dir, "meridian.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	m := startMeridian(t, dir, nil, "--config", confFile)
	dnsAddr := "127.0.0.1:" + m.port
	logFrom := m.nextLogIndex()

	p := startPebble(t, dnsAddr)
	t.Logf("meridian and pebble up after %v", time.Since(start).Round(time.Millisecond))

	// lego as an operator runs it against Meridian. --dns.disable-cp
	// skips lego's check that every NS host of the zone serves the
	// record, which asks them on port 53 (here ns1.example.com,
	// 192.0.2.53, which is not Meridian). lego then only waits one
	// polling interval (2s by default) after the UPDATE and asks
	// --dns.resolvers once, without looking at the answer, before it
	// asks pebble to validate: pebble's success is what shows that
	// Meridian served the record (it reloads about 200ms after an
	// UPDATE in zone-file mode).
	legoDir := filepath.Join(dir, "lego")
	args := []string{
		"--server", p.directory,
		"--accept-tos", "--email", "ops@example.com",
		"--path", legoDir,
		"--dns", "rfc2136",
		"--dns.resolvers", dnsAddr,
		"--dns.disable-cp",
	}
	for _, d := range acmeDomains {
		args = append(args, "--domains", d)
	}
	args = append(args, "run")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lego := exec.CommandContext(ctx, "lego", args...)
	lego.Dir = dir
	lego.Env = append(os.Environ(),
		"LEGO_CA_CERTIFICATES="+p.caFile,
		"RFC2136_NAMESERVER="+dnsAddr,
		"RFC2136_TSIG_KEY=acme-key",
		"RFC2136_TSIG_SECRET="+acmeSecret,
		"RFC2136_TSIG_ALGORITHM=hmac-sha256.",
		// One challenge after the other (the provider is sequential):
		// 1s between them rather than the default 60s.
		"RFC2136_SEQUENCE_INTERVAL=1",
	)
	legoStart := time.Now()
	out, err := lego.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("lego timed out after %v:\n%s\npebble log:\n%s", time.Since(legoStart), out, p.logs.String())
	}
	if err != nil {
		t.Fatalf("lego: %v\n%s\npebble log:\n%s", err, out, p.logs.String())
	}
	t.Logf("lego obtained the certificate in %v", time.Since(legoStart).Round(time.Millisecond))

	// The certificate: for the three names, and issued by this pebble
	// (it chains to the root pebble made at start).
	pemBytes, err := os.ReadFile(filepath.Join(legoDir, "certificates", "example.com.crt"))
	if err != nil {
		t.Fatalf("lego wrote no certificate: %v\n%s", err, out)
	}
	var chain []*x509.Certificate
	for rest := pemBytes; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 {
		t.Fatalf("certificate file holds %d certificates, want the leaf and pebble's intermediate", len(chain))
	}
	leaf := chain[0]
	names := slices.Clone(leaf.DNSNames)
	slices.Sort(names)
	want := slices.Clone(acmeDomains)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("certificate SANs = %v, want %v", names, want)
	}
	if !strings.HasPrefix(leaf.Issuer.CommonName, "Pebble Intermediate CA") {
		t.Errorf("certificate issuer = %q, want pebble's intermediate", leaf.Issuer.CommonName)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.root(t))
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, d := range acmeDomains {
		name := strings.Replace(d, "*", "any", 1)
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("certificate does not verify for %s against pebble's root: %v", name, err)
		}
	}

	// Meridian applied one UPDATE per challenge to present it (lego
	// deletes the TXT RRset and adds its record: two changes) and one to
	// clean it up (the record deleted: one change), each signed with the
	// key. Presents and clean-ups alternate: the provider is sequential.
	var applied []string
	for _, l := range m.logLines() {
		if l.index < logFrom || !strings.HasPrefix(l.Msg, "UPDATE") {
			continue
		}
		if l.Msg != "UPDATE applied" {
			t.Errorf("unexpected update log line: %v %v", l.Msg, l.attrs)
			continue
		}
		if key, _ := l.attrs["key"].(string); strings.TrimSuffix(key, ".") != "acme-key" {
			t.Errorf("UPDATE applied with key %q, want acme-key", key)
		}
		applied = append(applied, fmt.Sprint(l.attrs["changes"]))
	}
	wantApplied := slices.Repeat([]string{"2", "1"}, len(acmeDomains))
	if !slices.Equal(applied, wantApplied) {
		t.Errorf("changes of the UPDATEs applied = %v, want %v (present, clean up per name)", applied, wantApplied)
	}
	// Pebble validated every challenge with Meridian as its only DNS
	// server.
	plog := p.logs.String()
	if !strings.Contains(plog, "Using custom DNS resolver for ACME challenges: "+dnsAddr) {
		t.Errorf("pebble does not say it validates with %s", dnsAddr)
	}
	if n := strings.Count(plog, "set VALID by completed challenge"); n != len(acmeDomains) {
		t.Errorf("pebble validated %d challenges, want %d", n, len(acmeDomains))
	}

	// Cleaned up: once the last clean-up is loaded (the journal is
	// reloaded about 200ms after lego's last UPDATE), no challenge
	// record is left and the serial counts the six UPDATEs.
	for _, q := range []string{"_acme-challenge.example.com", "_acme-challenge.www.example.com"} {
		m.waitDig(t, q+" TXT is gone", func(r *digResult) bool {
			return r.Status == "NXDOMAIN"
		}, q, "TXT")
	}
	m.waitDig(t, "the serial is 16 after six UPDATEs", func(r *digResult) bool {
		return len(r.Answer) == 1 && strings.Fields(r.Answer[0].Data)[2] == "16"
	}, "example.com", "SOA")
	t.Logf("whole flow %v", time.Since(start).Round(time.Millisecond))
}

// pebble is a running pebble ACME server.
type pebble struct {
	cmd       *exec.Cmd
	logs      *logbuf.Buffer
	done      chan struct{}
	directory string // the ACME directory URL
	mgmt      string // the management interface's URL
	caFile    string // the CA of pebble's HTTPS certificate, for lego
	client    *http.Client
}

// startPebble starts pebble on free ports of 127.0.0.1, with an HTTPS
// certificate made here (Debian's package ships none), validating
// against the DNS server dnsAddr without its random sleep. It is killed
// at the end of the test.
func startPebble(t *testing.T, dnsAddr string) *pebble {
	t.Helper()
	dir := t.TempDir()
	caFile, pool := writeTestTLS(t, dir)
	var lastLog string
	for range 3 {
		acmePort, mgmtPort := freePort(t), freePort(t)
		conf := fmt.Sprintf(`{"pebble": {
  "listenAddress": "127.0.0.1:%s",
  "managementListenAddress": "127.0.0.1:%s",
  "certificate": %q,
  "privateKey": %q,
  "httpPort": 5002,
  "tlsPort": 5001,
  "ocspResponderURL": "",
  "externalAccountBindingRequired": false
}}`, acmePort, mgmtPort, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
		confFile := filepath.Join(dir, "pebble.json")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p := &pebble{
			logs:      &logbuf.Buffer{},
			done:      make(chan struct{}),
			directory: "https://127.0.0.1:" + acmePort + "/dir",
			mgmt:      "https://127.0.0.1:" + mgmtPort,
			caFile:    caFile,
			client: &http.Client{
				Timeout:   5 * time.Second,
				Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}},
			},
		}
		p.cmd = exec.Command("pebble", "-config", confFile, "-dnsserver", dnsAddr)
		p.cmd.Dir = dir
		// No sleep before validating; no reuse of authorizations.
		p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_AUTHZREUSE=0")
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start pebble: %v", err)
		}
		go func() {
			p.cmd.Wait()
			close(p.done)
		}()
		t.Cleanup(func() {
			p.stop()
			if t.Failed() {
				t.Logf("pebble log:\n%s", p.logs.String())
			}
		})
		if p.waitReady(10 * time.Second) {
			return p
		}
		lastLog = p.logs.String()
		p.stop()
	}
	t.Fatalf("pebble did not serve its directory on three pairs of ports; its last log:\n%s", lastLog)
	return nil
}

func (p *pebble) stop() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
}

// waitReady reports whether pebble serves its directory within timeout.
func (p *pebble) waitReady(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return false
		default:
		}
		if resp, err := p.client.Get(p.directory); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// root returns the root certificate pebble made at start, from its
// management interface.
func (p *pebble) root(t *testing.T) *x509.Certificate {
	t.Helper()
	resp, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("pebble /roots/0: %v %v\n%s", resp.Status, err, body)
	}
	b, _ := pem.Decode(body)
	if b == nil {
		t.Fatalf("pebble /roots/0 is not PEM:\n%s", body)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeTestTLS writes into dir a CA (ca.pem) and a certificate for
// 127.0.0.1 and localhost signed by it (cert.pem, key.pem), and returns
// the CA's file and a pool holding it.
func writeTestTLS(t *testing.T, dir string) (string, *x509.CertPool) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Meridian e2e test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	for name, b := range map[string]*pem.Block{
		caFile:                         {Type: "CERTIFICATE", Bytes: caDER},
		filepath.Join(dir, "cert.pem"): {Type: "CERTIFICATE", Bytes: der},
		filepath.Join(dir, "key.pem"):  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(name, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return caFile, pool
}
