package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration that YAML gives as "2s", "500ms" or a number
// of seconds (2, 0.5).
type Duration time.Duration

// String formats the duration like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts a Go duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return fmt.Errorf("expected a duration like \"2s\", \"500ms\" or a number of seconds")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML encodes the duration as a string such as "2s".
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON encodes the duration as a string such as "2s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// ParseDuration parses a Go duration string ("2s", "1m30s", "500ms") or a
// plain number of seconds ("2", "0.5").
func ParseDuration(s string) (Duration, error) {
	if v, err := time.ParseDuration(s); err == nil {
		return Duration(v), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && math.Abs(f) < math.MaxInt64/float64(time.Second) {
		return Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("cannot parse %q as a duration; use a value like \"2s\", \"500ms\" or a number of seconds", s)
}
