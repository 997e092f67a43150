package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the configuration file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read configuration file %q: %w; check the path and its permissions", path, unwrapPathError(err))
	}
	return Parse(data, path)
}

// Parse decodes a configuration from data. Decoding is strict: an unknown
// key anywhere is an error naming its dotted path and line. Defaults fill
// the keys not given, relative paths (data_dir, TLS and password files) are
// resolved against source's directory, passwords are read, and the result is
// validated. source names the data in messages; when it has no directory,
// relative paths are resolved against the current directory. Every problem
// found is reported, one per line.
func Parse(data []byte, source string) (*Config, error) {
	root, err := parseDocument(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	c := baseDefaults()
	d := decoder{source: source}
	d.decode(root, reflect.ValueOf(&c).Elem(), "")
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	c.applyDerivedDefaults()
	if err := c.resolvePaths(filepath.Dir(source)); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if err := c.resolveSecrets(); err != nil {
		return nil, prefixEach(source+": ", err)
	}
	if err := c.Validate(); err != nil {
		return nil, prefixEach(source+": ", err)
	}
	return &c, nil
}

// errNoDocument reports a file without YAML content.
var errNoDocument = errors.New("the file is empty; it must hold a YAML mapping with at least scope, name, etcd and postgresql")

// parseDocument returns the single YAML document's root node.
func parseDocument(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errNoDocument
		}
		return nil, fmt.Errorf("invalid YAML: %s; fix the syntax", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("the file holds more than one YAML document; keep only one (remove the \"---\" separators)")
	}
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return nil, errNoDocument
	}
	return doc.Content[0], nil
}

// resolvePaths makes relative file paths absolute against dir.
func (c *Config) resolvePaths(dir string) error {
	for _, p := range []*string{&c.PostgreSQL.DataDir, &c.Etcd.CACert, &c.Etcd.Cert, &c.Etcd.Key,
		&c.RestAPI.CertFile, &c.RestAPI.KeyFile, &c.RestAPI.CAFile} {
		if *p == "" {
			continue
		}
		if !filepath.IsAbs(*p) {
			abs, err := filepath.Abs(filepath.Join(dir, *p))
			if err != nil {
				return fmt.Errorf("cannot make %q absolute: %w; give an absolute path", *p, err)
			}
			*p = abs
		}
		*p = filepath.Clean(*p)
	}
	for _, s := range c.secrets() {
		if err := s.secret.resolveFile(dir); err != nil {
			return fmt.Errorf("%s: cannot make the file path absolute: %w; give an absolute path", s.path, err)
		}
	}
	return nil
}

// resolveSecrets reads every configured password once.
func (c *Config) resolveSecrets() error {
	var errs []error
	for _, s := range c.secrets() {
		if !s.secret.IsSet() {
			continue
		}
		if err := s.secret.resolve(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.path, err))
		}
	}
	return errors.Join(errs...)
}

// namedSecret is a Secret with its key path, for messages.
type namedSecret struct {
	path   string
	secret *Secret
}

func (c *Config) secrets() []namedSecret {
	out := []namedSecret{
		{"etcd.password", &c.Etcd.Password},
		{"postgresql.authentication.superuser.password", &c.PostgreSQL.Authentication.Superuser.Password},
		{"postgresql.authentication.replication.password", &c.PostgreSQL.Authentication.Replication.Password},
	}
	if c.RestAPI.Authentication != nil {
		out = append(out, namedSecret{"restapi.authentication.password", &c.RestAPI.Authentication.Password})
	}
	return out
}

// prefixEach prefixes every error joined in err (or err itself).
func prefixEach(prefix string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixEach(prefix, e))
		}
		return errors.Join(out...)
	}
	return fmt.Errorf("%s%w", prefix, err)
}
