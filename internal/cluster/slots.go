package cluster

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// PermanentSlot is one entry of the dynamic configuration's slots map
// (Patroni's permanent slots). An entry without a type is logical when it
// names a database and a plugin, else physical; a null entry is physical.
type PermanentSlot struct {
	Type     string `json:"type,omitempty" yaml:"type"`
	Database string `json:"database,omitempty" yaml:"database"`
	Plugin   string `json:"plugin,omitempty" yaml:"plugin"`
}

// Slot types.
const (
	SlotPhysical = "physical"
	SlotLogical  = "logical"
)

// Kind is the slot's type after Patroni's defaulting rule.
func (p *PermanentSlot) Kind() string {
	switch {
	case p == nil:
		return SlotPhysical
	case p.Type != "":
		return p.Type
	case p.Database != "" && p.Plugin != "":
		return SlotLogical
	default:
		return SlotPhysical
	}
}

// IgnoreSlot is one entry of ignore_slots: a slot matching every field
// that is set is never dropped by Regent.
type IgnoreSlot struct {
	Name     string `json:"name,omitempty" yaml:"name"`
	Type     string `json:"type,omitempty" yaml:"type"`
	Database string `json:"database,omitempty" yaml:"database"`
	Plugin   string `json:"plugin,omitempty" yaml:"plugin"`
}

// Matches reports whether a slot with these properties matches m.
func (m IgnoreSlot) Matches(name, typ, database, plugin string) bool {
	return (m.Name == "" || m.Name == name) && (m.Type == "" || m.Type == typ) &&
		(m.Database == "" || m.Database == database) && (m.Plugin == "" || m.Plugin == plugin)
}

// Seconds is a duration in whole seconds written as Patroni accepts it: a
// number of seconds or a string with a unit ("30min", "1h", "90s",
// "1800").
type Seconds int

// Duration is s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(s) * time.Second }

// ParseSeconds parses a number of seconds or a number with one of the
// units ms, s, min, h, d; sub-second values round down.
func ParseSeconds(v string) (Seconds, error) {
	v = strings.TrimSpace(v)
	units := []struct {
		suffix string
		ms     float64
	}{{"ms", 1}, {"min", 60e3}, {"s", 1e3}, {"h", 3600e3}, {"d", 86400e3}}
	mult := 1e3
	for _, u := range units {
		if n, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(n), u.ms
			break
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("want a non-negative number of seconds or a number with a unit (ms, s, min, h, d), got %q", v)
	}
	return Seconds(f * mult / 1e3), nil
}

// UnmarshalJSON accepts a number or a string with a unit.
func (s *Seconds) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case float64:
		if x < 0 {
			return fmt.Errorf("must not be negative, got %g", x)
		}
		*s = Seconds(x)
	case string:
		p, err := ParseSeconds(x)
		if err != nil {
			return err
		}
		*s = p
	default:
		return fmt.Errorf("want a number of seconds or a string such as \"30min\", got %s", b)
	}
	return nil
}

// UnmarshalYAML accepts a number or a string with a unit.
func (s *Seconds) UnmarshalYAML(value *yaml.Node) error {
	p, err := ParseSeconds(value.Value)
	if err != nil {
		return err
	}
	*s = p
	return nil
}
