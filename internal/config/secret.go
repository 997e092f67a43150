package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// redacted is what every printed or serialised form of a set Secret shows.
const redacted = "******"

// Secret is a password given inline (password: "x"), read from a file
// (password: {file: /path}) or from an environment variable
// (password: {env: NAME}). Load resolves it once and keeps the value
// privately; every printed, logged or serialised form shows "******".
type Secret struct {
	inline   string
	file     string
	env      string
	value    string
	resolved bool
}

// NewSecret returns a Secret holding value inline, for configurations built
// in code.
func NewSecret(value string) Secret {
	return Secret{inline: value, value: value, resolved: value != ""}
}

// IsSet reports whether a source (a non-empty inline value, a file or an
// environment variable) is configured.
func (s Secret) IsSet() bool {
	return s.inline != "" || s.file != "" || s.env != ""
}

// Value returns the secret: the value resolved by Load, or else the inline
// value, the file's contents without trailing newlines, or the environment
// variable. An unset Secret has the value "". Errors name the file or
// variable.
func (s Secret) Value() (string, error) {
	if s.resolved {
		return s.value, nil
	}
	switch {
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return "", fmt.Errorf("cannot read password file %q: %w; create it or correct the path", s.file, unwrapPathError(err))
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return "", fmt.Errorf("password file %q is empty; write the password into it", s.file)
		}
		return v, nil
	case s.env != "":
		v, ok := os.LookupEnv(s.env)
		if !ok {
			return "", fmt.Errorf("environment variable %q is not set; set it in the service's environment or give the password inline or as {file: ...}", s.env)
		}
		if v == "" {
			return "", fmt.Errorf("environment variable %q is empty; set it to the password", s.env)
		}
		return v, nil
	default:
		return s.inline, nil
	}
}

// unwrapPathError drops the operation and path from an *os.PathError, which
// the caller's message already names.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// resolve reads the secret once and keeps the value.
func (s *Secret) resolve() error {
	v, err := s.Value()
	if err != nil {
		return err
	}
	s.value, s.resolved = v, true
	return nil
}

// resolveFile makes a relative file path absolute against dir.
func (s *Secret) resolveFile(dir string) error {
	if s.file == "" || filepath.IsAbs(s.file) {
		return nil
	}
	abs, err := filepath.Abs(filepath.Join(dir, s.file))
	if err != nil {
		return err
	}
	s.file = abs
	return nil
}

// String returns "******" for a set Secret and "" otherwise.
func (s Secret) String() string {
	if s.IsSet() {
		return redacted
	}
	return ""
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

// Format prints String for every verb, so no fmt verb prints the secret.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// LogValue keeps log/slog from logging the secret.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalJSON encodes the Secret as "******" (or "" when unset).
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML encodes the Secret as "******" (or "" when unset).
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// secretKeys are the keys of the mapping form.
var secretKeys = []string{"file", "env"}

// knownYAMLKeys lets the strict decoder report misspelt keys with their path.
func (*Secret) knownYAMLKeys() []string { return secretKeys }

// UnmarshalYAML accepts a scalar (inline value) or a mapping with exactly one
// of file or env.
func (s *Secret) UnmarshalYAML(n *yaml.Node) error {
	*s = Secret{}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() != "!!null" {
			s.inline = n.Value
		}
		return nil
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return fmt.Errorf("%q must be a non-empty string", k.Value)
			}
			switch k.Value {
			case "file":
				s.file = v.Value
			case "env":
				s.env = v.Value
			default:
				return fmt.Errorf("unknown key %q; use {file: /path} or {env: NAME}", k.Value)
			}
		}
		if (s.file == "") == (s.env == "") {
			return errors.New("give exactly one of {file: /path} or {env: NAME}, or the password inline")
		}
		return nil
	default:
		return errors.New("expected a password, {file: /path} or {env: NAME}")
	}
}
