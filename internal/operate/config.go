package operate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/regent-ha/regent/internal/cluster"
)

// PatchConfig applies a JSON merge patch (RFC 7386) to cur: objects merge
// recursively, null deletes a key, and a deleted key takes its default from
// cluster.DefaultDynamicConfig. Unknown keys and values of the wrong type
// give a *BadRequestError naming the dotted key, as does a result that
// fails DynamicConfig.Validate. Keys of Patroni's configuration Regent does
// not implement (cluster.PatroniOnlyKeys) take any value and are stored
// verbatim, as are the keys cur already preserves. postgresql.parameters
// values may be JSON strings, numbers or booleans and are stored in the
// form given. The merge is over cur as the config key holds it, so a value
// cur could not decode stays until the patch replaces or deletes it.
func PatchConfig(cur cluster.DynamicConfig, patch []byte) (cluster.DynamicConfig, error) {
	p, err := parseDocument(patch)
	if err != nil {
		return cluster.DynamicConfig{}, err
	}
	doc, err := toDocument(cur)
	if err != nil {
		return cluster.DynamicConfig{}, err
	}
	return build(merge(doc, p))
}

// ReplaceConfig decodes a complete dynamic configuration with the checks of
// PatchConfig; keys it lacks (or sets to null) take their defaults.
func ReplaceConfig(full []byte) (cluster.DynamicConfig, error) {
	p, err := parseDocument(full)
	if err != nil {
		return cluster.DynamicConfig{}, err
	}
	return build(merge(map[string]any{}, p))
}

// configType is what the documents describe.
var configType = reflect.TypeFor[cluster.DynamicConfig]()

// parseDocument decodes a JSON object and checks its keys and value types
// against DynamicConfig.
func parseDocument(data []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, badRequest("the configuration is empty; send a JSON object")
		}
		return nil, badRequest("invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("invalid JSON: unexpected data after the configuration object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("the configuration must be a JSON object, got %s", describe(v))
	}
	var problems []string
	checkObject(obj, configType, "", &problems)
	if len(problems) > 0 {
		return nil, &BadRequestError{Reason: strings.Join(problems, "; ")}
	}
	return obj, nil
}

// gucName is the form of a PostgreSQL parameter name, custom ones
// ("extension.setting") included.
var gucName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*$`)

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// checkObject checks obj's keys and values against struct type t. A null
// value is always allowed: it means the default.
func checkObject(obj map[string]any, t reflect.Type, path string, problems *[]string) {
	fields := cluster.JSONFields(t)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := joinKey(path, k)
		ft, ok := fields[k]
		if !ok {
			if !cluster.IsPatroniOnlyKey(key) {
				*problems = append(*problems, fmt.Sprintf("unknown key %q", key))
			}
			continue
		}
		checkValue(obj[k], ft.Type, key, problems)
	}
}

// checkValue checks one value against type t.
func checkValue(v any, t reflect.Type, key string, problems *[]string) {
	if v == nil {
		return
	}
	bad := func(want string) {
		*problems = append(*problems, fmt.Sprintf("key %q: expected %s, got %s", key, want, describe(v)))
	}
	if decodesItself(t) {
		// Typed sections with their own JSON rules (slots, ignore_slots,
		// member_slots_ttl's "30min"): the decoder is the check.
		b, _ := json.Marshal(v)
		if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
			*problems = append(*problems, fmt.Sprintf("key %q: %v", key, err))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		checkObject(obj, t, key, problems)
	case reflect.Map:
		obj, ok := v.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		names := make([]string, 0, len(obj))
		for k := range obj {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			pk := joinKey(key, k)
			if !gucName.MatchString(k) {
				*problems = append(*problems, fmt.Sprintf("key %q: %q is not a parameter name", pk, k))
				continue
			}
			switch pv := obj[k].(type) {
			case nil, string, json.Number, bool:
			default:
				*problems = append(*problems, fmt.Sprintf("key %q: expected a string, number or boolean, got %s", pk, describe(pv)))
			}
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			bad("an integer")
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			bad("an integer")
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			bad("a number")
			return
		}
		if _, err := strconv.ParseFloat(n.String(), t.Bits()); err != nil {
			bad("a number")
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			bad("a string")
		}
	default:
		bad("a " + t.String())
	}
}

// decodesItself reports whether values of t are checked by decoding them:
// non-struct types with their own UnmarshalJSON, lists, and maps of
// anything but parameter values (strings).
func decodesItself(t reflect.Type) bool {
	if t.Kind() == reflect.Struct {
		return false // checked key by key (checkObject), unknown keys named
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || t.Implements(jsonUnmarshaler) {
		return true
	}
	switch t.Kind() {
	case reflect.Slice:
		return true
	case reflect.Map:
		return t.Elem().Kind() != reflect.String
	}
	return false
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// describe names a JSON value for "expected X, got Y" messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return strconv.Quote(v)
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprintf("%T", v)
}

// toDocument renders cfg as a generic JSON object.
func toDocument(cfg cluster.DynamicConfig) (map[string]any, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encoding the configuration: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decoding the configuration: %w", err)
	}
	return doc, nil
}

// merge applies patch to target as RFC 7386 describes; it may modify
// target and returns the result. Nulls in patch delete keys, so the result
// holds none.
func merge(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = merge(t[k], v)
	}
	return t
}

// build decodes a checked document over the defaults and validates it.
func build(doc any) (cluster.DynamicConfig, error) {
	obj, _ := doc.(map[string]any)
	b, err := json.Marshal(obj)
	if err != nil {
		return cluster.DynamicConfig{}, fmt.Errorf("encoding the configuration: %w", err)
	}
	cfg, problems, err := cluster.DecodeDynamicConfig(b)
	if err == nil && len(problems) > 0 {
		// A value cur held that the patch left as it was.
		err = errors.New(strings.Join(problems, "; "))
	}
	if err != nil {
		return cluster.DynamicConfig{}, badRequest("invalid configuration: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		return cluster.DynamicConfig{}, badRequest("invalid configuration: %s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return cfg, nil
}
