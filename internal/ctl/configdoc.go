package ctl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/cluster"
)

// This file holds the pure document operations behind show-config and
// edit-config. A configuration document is a map[string]any with JSON key
// names; numbers are int64 or float64, nested mappings map[string]any.

// ConfigMap converts the dynamic configuration into a document with the
// keys of its JSON form (what the config key holds).
func ConfigMap(cfg *cluster.DynamicConfig) (map[string]any, error) {
	if cfg == nil {
		return nil, errors.New("the cluster has no dynamic configuration in the DCS yet (it is written when the first member bootstraps)")
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return decodeJSONMap(b)
}

// decodeJSONMap decodes a JSON object keeping integers exact.
func decodeJSONMap(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	m, _ := normalize(v).(map[string]any)
	return m, nil
}

// normalize makes decoded values uniform: json.Number becomes int64 or
// float64, other integer types int64, float32 float64, and mappings with
// non-string keys map[string]any.
func normalize(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case int:
		return int64(t)
	case int32:
		return int64(t)
	case uint64:
		return int64(t)
	case float32:
		return float64(t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

// RenderYAML renders a document as YAML with sorted keys and two-space
// indentation; an empty document renders as "".
func RenderYAML(doc map[string]any) (string, error) {
	if len(doc) == 0 {
		return "", nil
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// ParseDocument parses a YAML (or JSON) mapping. An empty document gives an
// empty map.
func ParseDocument(data []byte) (map[string]any, error) {
	var v any
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return map[string]any{}, nil
		}
		return nil, fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if v == nil {
		return map[string]any{}, nil
	}
	m, ok := normalize(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document must be a mapping of configuration keys, not a %T", v)
	}
	return m, nil
}

// ParseAssignment parses a -s argument "dotted.key=value". The value is a
// YAML scalar (10, false, 0.5, text, 'quoted'); "null" deletes the key.
func ParseAssignment(arg string) (path []string, value any, err error) {
	key, raw, ok := strings.Cut(arg, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return nil, nil, fmt.Errorf("invalid setting %q: use key=value, e.g. ttl=10 or postgresql.use_pg_rewind=false (key=null deletes)", arg)
	}
	if strings.TrimSpace(raw) == "" {
		return nil, nil, fmt.Errorf("invalid setting %q: no value; write %s=null to delete the key", arg, key)
	}
	path = strings.Split(key, ".")
	for _, p := range path {
		if p == "" {
			return nil, nil, fmt.Errorf("invalid key %q: empty path element", key)
		}
	}
	if err := yaml.Unmarshal([]byte(raw), &value); err != nil {
		value = raw
	}
	return path, normalize(value), nil
}

// ParseParameter parses a -p argument "name=value" into the path
// postgresql.parameters.<name>; the value is kept as text (PostgreSQL
// settings are strings), except that "null" deletes the parameter.
func ParseParameter(arg string) (path []string, value any, err error) {
	name, raw, ok := strings.Cut(arg, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return nil, nil, fmt.Errorf("invalid parameter %q: use name=value, e.g. max_connections=200 (name=null deletes)", arg)
	}
	path = []string{"postgresql", "parameters", name}
	if raw == "null" {
		return path, nil, nil
	}
	return path, raw, nil
}

// SetPath sets doc[path[0]][path[1]]... to value, creating mappings on the
// way; a nil value deletes the key. Setting below a key that holds a
// non-mapping value is an error.
func SetPath(doc map[string]any, path []string, value any) error {
	if len(path) == 0 {
		return errors.New("empty key")
	}
	cur := doc
	for i, p := range path[:len(path)-1] {
		switch t := cur[p].(type) {
		case map[string]any:
			cur = t
		case nil:
			if value == nil {
				return nil // deleting below a missing key: nothing to do
			}
			m := map[string]any{}
			cur[p] = m
			cur = m
		default:
			return fmt.Errorf("cannot set %s: %s is not a mapping", strings.Join(path, "."), strings.Join(path[:i+1], "."))
		}
	}
	last := path[len(path)-1]
	if value == nil {
		delete(cur, last)
		return nil
	}
	cur[last] = value
	return nil
}

// SetDotted is SetPath with a dotted key ("postgresql.use_pg_rewind").
func SetDotted(doc map[string]any, key string, value any) error {
	return SetPath(doc, strings.Split(key, "."), value)
}

// ApplyMergePatch applies an RFC 7386 JSON merge patch to doc in place:
// null deletes, mappings merge recursively, anything else replaces.
func ApplyMergePatch(doc, patch map[string]any) {
	for k, pv := range patch {
		switch p := pv.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			dv, ok := doc[k].(map[string]any)
			if !ok {
				dv = map[string]any{}
				doc[k] = dv
			}
			ApplyMergePatch(dv, p)
		default:
			doc[k] = cloneValue(pv)
		}
	}
}

// MergePatch computes the RFC 7386 merge patch that turns old into new:
// changed or added keys with their new values, removed keys as null,
// nested mappings as nested patches. Equal documents give an empty patch.
func MergePatch(old, new map[string]any) map[string]any {
	patch := map[string]any{}
	for k, nv := range new {
		ov, had := old[k]
		if !had {
			patch[k] = cloneValue(nv)
			continue
		}
		om, oIsMap := ov.(map[string]any)
		nm, nIsMap := nv.(map[string]any)
		if oIsMap && nIsMap {
			if sub := MergePatch(om, nm); len(sub) > 0 {
				patch[k] = sub
			}
			continue
		}
		if !Equal(ov, nv) {
			patch[k] = cloneValue(nv)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			patch[k] = nil
		}
	}
	return patch
}

// Equal compares two document values by their canonical JSON form, so
// int64(1) equals float64(1).
func Equal(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// CloneDoc deep-copies a document.
func CloneDoc(doc map[string]any) map[string]any {
	c, _ := cloneValue(doc).(map[string]any)
	if c == nil {
		c = map[string]any{}
	}
	return c
}

func cloneValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = cloneValue(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}

// dropNulls removes null values (at any depth): in a full document they
// mean "absent".
func dropNulls(doc map[string]any) {
	for k, v := range doc {
		switch t := v.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			dropNulls(t)
		}
	}
}

// stringifyParameters turns the scalar values under postgresql.parameters
// that differ from old's into strings (YAML numbers and booleans kept as
// written). A value old has unchanged keeps its form: the config key may
// hold numbers and booleans, as Patroni writes them.
func stringifyParameters(doc, old map[string]any) {
	pg, _ := doc["postgresql"].(map[string]any)
	params, _ := pg["parameters"].(map[string]any)
	oldPG, _ := old["postgresql"].(map[string]any)
	oldParams, _ := oldPG["parameters"].(map[string]any)
	for k, v := range params {
		if ov, ok := oldParams[k]; ok && Equal(ov, v) {
			continue
		}
		switch t := v.(type) {
		case bool:
			params[k] = strconv.FormatBool(t)
		case int64:
			params[k] = strconv.FormatInt(t, 10)
		case float64:
			params[k] = strconv.FormatFloat(t, 'g', -1, 64)
		}
	}
}

// ConfigCheck decodes a document as the dynamic configuration over the
// defaults (as the members do) and validates it; unknown keys and values of
// the wrong type are errors, as the REST API refuses them.
func ConfigCheck(doc map[string]any) error {
	var unknown []string
	collectUnknown(doc, reflect.TypeFor[cluster.DynamicConfig](), "", &unknown)
	unknown = slices.DeleteFunc(unknown, cluster.IsPatroniOnlyKey)
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return fmt.Errorf("invalid configuration: unknown key %s", strings.Join(quoteAll(unknown), ", "))
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	cfg := cluster.DefaultDynamicConfig()
	if err := json.Unmarshal(b, &cfg); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("invalid configuration: %s must be %s, not %s", te.Field, kindName(te.Type), te.Value)
		}
		return fmt.Errorf("invalid configuration: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	return nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}

// kindName names a Go type for configuration messages.
func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a " + t.String()
}

// collectUnknown lists the keys of doc that are not JSON fields of the
// struct type t, recursing into nested structs.
func collectUnknown(doc map[string]any, t reflect.Type, prefix string, out *[]string) {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = f.Type
	}
	for k, v := range doc {
		ft, ok := fields[k]
		if !ok {
			*out = append(*out, prefix+k)
			continue
		}
		if sub, isMap := v.(map[string]any); isMap && ft.Kind() == reflect.Struct {
			collectUnknown(sub, ft, prefix+k+".", out)
		}
	}
}
