package config_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/config"
)

// writeCert writes a self-signed certificate and its key to dir and returns
// their paths.
func writeCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "regent-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func TestRestAPIAccessKeys(t *testing.T) {
	c := mustParse(t, base+`restapi:
  connect_address: 10.0.0.1:8008
  authentication: {username: admin, password: api-secret}
  allowlist: ["127.0.0.1/32", "10.0.0.0/8", "::1", "192.168.1.7"]
`)
	a := c.RestAPI.Authentication
	if a == nil || a.Username != "admin" || value(t, a.Password) != "api-secret" {
		t.Fatalf("authentication = %+v", a)
	}
	if c.RestAPI.VerifyClient != "none" || c.RestAPI.Scheme() != "http" || c.APIURL() != "http://10.0.0.1:8008/patroni" {
		t.Errorf("verify_client %q, scheme %q, api url %q", c.RestAPI.VerifyClient, c.RestAPI.Scheme(), c.APIURL())
	}
	nets, err := c.RestAPI.AllowlistNets()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nets {
		got = append(got, n.String())
	}
	if want := "127.0.0.1/32 10.0.0.0/8 ::1/128 192.168.1.7/32"; strings.Join(got, " ") != want {
		t.Errorf("allowlist = %v, want %s", got, want)
	}
	if tlsCfg, err := c.RestAPI.ServerTLS(); tlsCfg != nil || err != nil {
		t.Errorf("ServerTLS without certfile = %v, %v; want nil, nil", tlsCfg, err)
	}
	// Without the section there is no authentication.
	if c := mustParse(t, base); c.RestAPI.Authentication != nil || len(c.RestAPI.Allowlist) != 0 {
		t.Errorf("defaults: %+v", c.RestAPI)
	}
	// The password takes every Secret form.
	t.Setenv("REGENT_TEST_API_PW", "from-env")
	c = mustParse(t, base+"restapi:\n  authentication: {username: admin, password: {env: REGENT_TEST_API_PW}}\n")
	if v := value(t, c.RestAPI.Authentication.Password); v != "from-env" {
		t.Errorf("env password = %q", v)
	}
}

func TestRestAPITLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	for _, tc := range []struct {
		mode string
		want tls.ClientAuthType
	}{
		{"none", tls.VerifyClientCertIfGiven}, // a cafile alone verifies certificates that are given
		{"optional", tls.VerifyClientCertIfGiven},
		{"required", tls.RequireAndVerifyClientCert},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			c := mustParse(t, base+fmt.Sprintf("restapi:\n  connect_address: db1:8008\n  certfile: %s\n  keyfile: %s\n  cafile: %s\n  verify_client: %s\n",
				certFile, keyFile, certFile, tc.mode))
			if c.RestAPI.Scheme() != "https" || c.APIURL() != "https://db1:8008/patroni" {
				t.Errorf("scheme %q, api url %q", c.RestAPI.Scheme(), c.APIURL())
			}
			cfg, err := c.RestAPI.ServerTLS()
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Certificates) != 1 || cfg.ClientCAs == nil || cfg.ClientAuth != tc.want || cfg.MinVersion != tls.VersionTLS12 {
				t.Errorf("tls config: %d certs, CAs %v, client auth %v", len(cfg.Certificates), cfg.ClientCAs != nil, cfg.ClientAuth)
			}
		})
	}
	// Without cafile no client certificate is asked for.
	c := mustParse(t, base+fmt.Sprintf("restapi: {certfile: %s, keyfile: %s}\n", certFile, keyFile))
	if cfg, err := c.RestAPI.ServerTLS(); err != nil || cfg.ClientAuth != tls.NoClientCert || cfg.ClientCAs != nil {
		t.Errorf("tls without cafile = %+v, %v", cfg, err)
	}
	// Relative paths are resolved against the file's directory.
	path := filepath.Join(dir, "member.yaml")
	if err := os.WriteFile(path, []byte(base+"restapi: {certfile: cert.pem, keyfile: key.pem}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.RestAPI.CertFile != certFile || c.RestAPI.KeyFile != keyFile {
		t.Errorf("relative TLS paths = %q, %q", c.RestAPI.CertFile, c.RestAPI.KeyFile)
	}
	// A key that does not match fails when the TLS configuration is built.
	other := t.TempDir()
	_, otherKey := writeCert(t, other)
	c = mustParse(t, base+fmt.Sprintf("restapi: {certfile: %s, keyfile: %s}\n", certFile, otherKey))
	if _, err := c.RestAPI.ServerTLS(); err == nil || !strings.Contains(err.Error(), "restapi.certfile/restapi.keyfile") {
		t.Errorf("mismatched key: %v", err)
	}
}

func TestRestAPIValidation(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeCert(t, dir)
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"auth without password", "restapi:\n  authentication: {username: admin}\n", []string{"restapi.authentication.password is required"}},
		{"auth without username", "restapi:\n  authentication: {password: x}\n", []string{"restapi.authentication.username is required"}},
		{"unknown auth key", "restapi:\n  authentication: {user: admin, password: x}\n", []string{`unknown key "restapi.authentication.user"`}},
		{"cert without key", "restapi: {certfile: " + certFile + "}\n", []string{"restapi.certfile and restapi.keyfile must be given together"}},
		{"key without cert", "restapi: {keyfile: " + keyFile + "}\n", []string{"restapi.certfile and restapi.keyfile must be given together"}},
		{"missing cert file", "restapi: {certfile: " + missing + ", keyfile: " + keyFile + "}\n", []string{"restapi.certfile", "missing.pem", "no such file"}},
		{"cert is a directory", "restapi: {certfile: " + dir + ", keyfile: " + keyFile + "}\n", []string{"is a directory"}},
		{"missing ca file", fmt.Sprintf("restapi: {certfile: %s, keyfile: %s, cafile: %s}\n", certFile, keyFile, missing), []string{"restapi.cafile", "no such file"}},
		{"cafile without TLS", "restapi: {cafile: " + certFile + "}\n", []string{"restapi.cafile needs HTTPS"}},
		{"verify_client without cafile", fmt.Sprintf("restapi: {certfile: %s, keyfile: %s, verify_client: required}\n", certFile, keyFile),
			[]string{`restapi.verify_client "required" needs restapi.cafile`}},
		{"bad verify_client", "restapi: {verify_client: always}\n", []string{`restapi.verify_client "always" is not a mode; use none, optional or required`}},
		{"bad allowlist entry", "restapi: {allowlist: [10.0.0.0/8, db.example.com]}\n", []string{`restapi.allowlist[1] "db.example.com" is not an IP address or CIDR`}},
		{"bad allowlist CIDR", "restapi: {allowlist: [10.0.0.0/33]}\n", []string{`restapi.allowlist[0] "10.0.0.0/33" is not a CIDR`}},
		{"allowlist not a list", "restapi: {allowlist: 10.0.0.0/8}\n", []string{"restapi.allowlist (line 10): expected a list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(base+tc.yaml), "member.yaml")
			if err == nil {
				t.Fatalf("Parse succeeded, want error containing %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestRestAPIPasswordNeverPrinted(t *testing.T) {
	c := mustParse(t, base+"restapi:\n  authentication: {username: admin, password: api-secret}\n")
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("loaded", "config", c, "restapi", c.RestAPI, "auth", c.RestAPI.Authentication)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("loaded", "config", c, "auth", c.RestAPI.Authentication)
	jsonOut, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	yamlOut, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"slog text": text.String(),
		"slog json": js.String(),
		"json":      string(jsonOut),
		"yaml":      string(yamlOut),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		outputs[verb+" config"] = fmt.Sprintf(verb, *c)
		outputs[verb+" restapi"] = fmt.Sprintf(verb, c.RestAPI)
		outputs[verb+" auth"] = fmt.Sprintf(verb, *c.RestAPI.Authentication)
	}
	for name, out := range outputs {
		if strings.Contains(out, "api-secret") || strings.Contains(out, fmt.Sprintf("%x", "api-secret")) {
			t.Errorf("%s output reveals the REST API password:\n%s", name, out)
		}
	}
	for _, name := range []string{"json", "yaml", "%+v auth"} {
		if !strings.Contains(outputs[name], "******") {
			t.Errorf("%s output has no redacted password:\n%s", name, outputs[name])
		}
	}
}
