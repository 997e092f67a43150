package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// This file holds the JSON form of the config key. Patroni and its tools
// (patronictl edit-config, PATCH /config) write it too, so decoding is
// lenient where Patroni is and never loses a key:
//
//   - postgresql.parameters values may be strings, numbers or booleans
//     (Patroni writes `"max_connections": 150`); numbers keep their text,
//     booleans become on/off, and a rewrite gives back the JSON form read
//     for every value that did not change;
//   - keys Regent does not implement (Patroni's slots, standby_cluster,
//     postgresql.pg_hba, ...) are kept verbatim in Preserved and written
//     back on every rewrite;
//   - a value of the wrong type is a problem of that key only: the other
//     keys are decoded, the value is kept verbatim (so a rewrite does not
//     change it behind the operator's back) and DecodeDynamicConfig reports
//     it. Only json.Unmarshal (UnmarshalJSON) turns problems into an error.

// PatroniOnlyKeys are the keys of Patroni 4's dynamic configuration that
// Regent does not implement, as dotted paths. Regent accepts them in PATCH
// and PUT /config and keeps them verbatim; any other unknown key is refused.
// A key Regent implements is a field of DynamicConfig and never listed here.
var PatroniOnlyKeys = []string{
	"check_timeline",
	"ignore_slots",
	"master_start_timeout",
	"master_stop_timeout",
	"max_timelines_history",
	"member_slots_ttl",
	"primary_race_backoff",
	"primary_stop_timeout",
	"slots",
	"standby_cluster",
	"postgresql.parameters_primary",
	"postgresql.parameters_replica",
	"postgresql.parameters_standby_leader",
	"postgresql.pg_hba",
	"postgresql.pg_hba_primary",
	"postgresql.pg_hba_replica",
	"postgresql.pg_hba_standby_leader",
	"postgresql.pg_ident",
	"postgresql.pg_ident_primary",
	"postgresql.pg_ident_replica",
	"postgresql.pg_ident_standby_leader",
	"postgresql.recovery_conf",
	"postgresql.use_slots",
}

// IsPatroniOnlyKey reports whether the dotted key is one of PatroniOnlyKeys
// and not (yet) a field Regent implements.
func IsPatroniOnlyKey(dotted string) bool {
	if !slices.Contains(PatroniOnlyKeys, dotted) {
		return false
	}
	path := strings.Split(dotted, ".")
	t := reflect.TypeFor[DynamicConfig]()
	for i, k := range path {
		f, ok := JSONFields(t)[k]
		if !ok {
			return true
		}
		if i == len(path)-1 || f.Type.Kind() != reflect.Struct {
			return false
		}
		t = f.Type
	}
	return false
}

// DecodeDynamicConfig decodes the config key over Regent's defaults. It
// fails only when b is not a JSON object; every key that cannot be used is
// listed in problems (dotted key and why), its value kept verbatim in
// Preserved. Keys the value lacks keep their default.
func DecodeDynamicConfig(b []byte) (cfg DynamicConfig, problems []string, err error) {
	cfg = DefaultDynamicConfig()
	if err := decodeInto(b, &cfg, "", &problems); err != nil {
		return DynamicConfig{}, nil, err
	}
	return cfg, problems, nil
}

// UnmarshalJSON decodes over c's current values (as encoding/json does for
// structs); any problem DecodeDynamicConfig would report is an error.
func (c *DynamicConfig) UnmarshalJSON(b []byte) error {
	return decodeStrict(b, c, "")
}

// MarshalJSON writes the fields, then Preserved: unknown keys are added,
// and a preserved value of a known key (one that could not be decoded)
// replaces the field's.
func (c DynamicConfig) MarshalJSON() ([]byte, error) {
	type plain DynamicConfig
	b, err := json.Marshal(plain(c))
	if err != nil {
		return nil, err
	}
	return withPreserved(b, c.Preserved)
}

// UnmarshalJSON decodes the postgresql section over p's current values.
func (p *PostgreSQLConfig) UnmarshalJSON(b []byte) error {
	return decodeStrict(b, p, "postgresql.")
}

// MarshalJSON writes the postgresql section; parameters read as JSON
// numbers or booleans are written back in that form while their value is
// unchanged.
func (p PostgreSQLConfig) MarshalJSON() ([]byte, error) {
	type plain PostgreSQLConfig
	q := plain(p)
	q.Parameters = nil
	b, err := json.Marshal(q)
	if err != nil {
		return nil, err
	}
	extra := map[string]json.RawMessage{}
	if len(p.Parameters) > 0 {
		params := make(map[string]json.RawMessage, len(p.Parameters))
		for k, v := range p.Parameters {
			if raw, ok := p.ParameterForms[k]; ok && ParameterString(raw) == v {
				params[k] = raw
				continue
			}
			s, _ := json.Marshal(v)
			params[k] = s
		}
		pb, err := json.Marshal(params)
		if err != nil {
			return nil, err
		}
		extra["parameters"] = pb
	}
	for k, v := range p.Preserved {
		extra[k] = v
	}
	return withPreserved(b, extra)
}

// ParameterString is the PostgreSQL form of a parameter's JSON value: a
// string as is, a number as written, a boolean as on or off. It returns ""
// for any other JSON value.
func ParameterString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	var s string
	switch {
	case json.Unmarshal(raw, &s) == nil:
		return s
	case string(raw) == "true":
		return "on"
	case string(raw) == "false":
		return "off"
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func decodeStrict(b []byte, v any, prefix string) error {
	var problems []string
	if err := decodeInto(b, v, prefix, &problems); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// decodeInto decodes the JSON object b over the struct v points to, field
// by field. Nested structs are decoded the same way; a struct's unknown
// keys and undecodable values go into its Preserved field, a map of raw
// JSON. postgresql.parameters takes strings, numbers and booleans and
// records the JSON form of the others in ParameterForms.
func decodeInto(b []byte, v any, prefix string, problems *[]string) error {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fmt.Errorf("%s must be a JSON object, got %s", sectionName(prefix), te.Value)
		}
		return fmt.Errorf("invalid JSON: %w", err)
	}
	rv := reflect.ValueOf(v).Elem()
	fields := JSONFields(rv.Type())
	preserved := rv.FieldByName("Preserved")
	keep := func(k string, raw json.RawMessage) {
		if preserved.IsNil() {
			preserved.Set(reflect.ValueOf(map[string]json.RawMessage{}))
		}
		preserved.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(raw))
	}
	// A decode over an existing value starts from its fields: drop what
	// was preserved for keys this document sets.
	if !preserved.IsNil() {
		for k := range obj {
			preserved.SetMapIndex(reflect.ValueOf(k), reflect.Value{})
		}
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		raw := obj[k]
		f, ok := fields[k]
		if !ok {
			keep(k, raw)
			continue
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			continue // null: the default (or current) value
		}
		fv := rv.FieldByIndex(f.Index)
		key := prefix + k
		switch {
		case f.Type.Kind() == reflect.Struct:
			tmp := reflect.New(f.Type)
			tmp.Elem().Set(fv)
			var sub []string
			if err := decodeInto(raw, tmp.Interface(), key+".", &sub); err != nil {
				*problems = append(*problems, err.Error())
				keep(k, raw)
				continue
			}
			*problems = append(*problems, sub...)
			fv.Set(tmp.Elem())
		case k == "parameters" && f.Type == reflect.TypeFor[map[string]string]():
			if !decodeParameters(raw, rv, key, problems) {
				keep(k, raw)
			}
		default:
			tmp := reflect.New(f.Type)
			tmp.Elem().Set(fv)
			if err := json.Unmarshal(raw, tmp.Interface()); err != nil {
				*problems = append(*problems, fmt.Sprintf("key %q: expected %s, got %s", key, typeName(f.Type), describeRaw(raw)))
				keep(k, raw)
				continue
			}
			fv.Set(tmp.Elem())
		}
	}
	return nil
}

// decodeParameters decodes postgresql.parameters into the Parameters and
// ParameterForms fields of the struct pg. It reports false (and a problem)
// when the value is not an object or a parameter's value is not a scalar.
func decodeParameters(raw json.RawMessage, pg reflect.Value, key string, problems *[]string) bool {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		*problems = append(*problems, fmt.Sprintf("key %q: expected an object of parameter names to values, got %s", key, describeRaw(raw)))
		return false
	}
	params := map[string]string{}
	forms := map[string]json.RawMessage{}
	var bad []string
	for name, v := range obj {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0 || string(v) == "null":
			continue // Patroni: a null parameter is not set
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				bad = append(bad, name)
				continue
			}
			params[name] = s
		case v[0] == '{' || v[0] == '[':
			bad = append(bad, name)
		default:
			s := ParameterString(v)
			if s == "" {
				bad = append(bad, name)
				continue
			}
			params[name] = s
			forms[name] = v
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		for _, name := range bad {
			*problems = append(*problems, fmt.Sprintf("key %q: expected a string, number or boolean, got %s", key+"."+name, describeRaw(obj[name])))
		}
		return false
	}
	pg.FieldByName("Parameters").Set(reflect.ValueOf(params))
	if len(forms) == 0 {
		forms = nil
	}
	pg.FieldByName("ParameterForms").Set(reflect.ValueOf(forms))
	return true
}

// withPreserved writes the raw values of extra into the JSON object b:
// keys b has are replaced, the others appended in sorted order.
func withPreserved(b []byte, extra map[string]json.RawMessage) ([]byte, error) {
	if len(extra) == 0 {
		return b, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	// Rebuild in b's key order, then the new keys sorted.
	order, err := objectKeys(b)
	if err != nil {
		return nil, err
	}
	var added []string
	for k := range extra {
		if _, ok := fields[k]; !ok {
			added = append(added, k)
		}
	}
	slices.Sort(added)
	var out bytes.Buffer
	out.WriteByte('{')
	for i, k := range append(order, added...) {
		if i > 0 {
			out.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		out.Write(kb)
		out.WriteByte(':')
		v, ok := extra[k]
		if !ok {
			v = fields[k]
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return nil, fmt.Errorf("preserved key %q: %w", k, err)
		}
		out.Write(c.Bytes())
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// objectKeys lists the top-level keys of a JSON object in order.
func objectKeys(b []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// jsonFieldsOf maps the JSON names of struct type t's exported fields to
// the fields.
func JSONFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

func sectionName(prefix string) string {
	if prefix == "" {
		return "the configuration"
	}
	return strconv.Quote(strings.TrimSuffix(prefix, "."))
}

// typeName names a Go type for "expected X" messages.
func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		if t == reflect.TypeFor[SyncMode]() {
			return "off, on, quorum or a boolean"
		}
		return "a string"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "a list"
	}
	return "a " + t.String()
}

// describeRaw names a JSON value for messages, shortened.
func describeRaw(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}
