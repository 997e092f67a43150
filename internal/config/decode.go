package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/regent-ha/regent/internal/cluster"
)

// decoder decodes a YAML node tree into a Go value strictly: every key must
// name a field, and every error names the key's dotted path and line. Only
// keys present in the file are assigned, so values already in the target
// (the defaults) survive.
type decoder struct {
	source string
	errs   []error
}

// keyLister is implemented by leaf types with a mapping form (Secret), so
// their misspelt keys are reported with a path too.
type keyLister interface {
	knownYAMLKeys() []string
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	d.errs = append(d.errs, fmt.Errorf("%s: %s (line %d): %s", d.source, displayPath(path), n.Line, msg))
}

// displayPath names the document root for errors about the whole file.
func displayPath(path string) string {
	if path == "" {
		return "the document"
	}
	return path
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// decode walks n into v, which must be addressable.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if isNull(n) && v.Kind() != reflect.Pointer {
		return // an empty section or value keeps its default
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		d.decodeUnmarshaler(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return
		}
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), path)
		v.Set(elem)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value) // numbers and booleans are kept as written
	default:
		if n.Kind != yaml.ScalarNode {
			d.errorf(n, path, "expected %s, got %s", expected(v.Type()), describe(n))
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			d.errorf(n, path, "expected %s, got %q", expected(v.Type()), n.Value)
		}
	}
}

func (d *decoder) decodeUnmarshaler(n *yaml.Node, v reflect.Value, path string) {
	if kl, ok := v.Addr().Interface().(keyLister); ok && n.Kind == yaml.MappingNode {
		known := kl.knownYAMLKeys()
		valid := true
		for _, p := range pairs(n) {
			if !slices.Contains(known, p.key.Value) {
				d.unknownKey(p.key, joinPath(path, p.key.Value), known)
				valid = false
			}
		}
		if !valid {
			return
		}
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.errorf(n, path, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of keys to values, got %s", describe(n))
		return
	}
	fields, names := structFields(v.Type())
	seen := map[string]bool{}
	for _, p := range pairs(n) {
		key := p.key.Value
		child := joinPath(path, key)
		if p.key.Kind != yaml.ScalarNode {
			d.errorf(p.key, path, "keys must be plain strings, got %s", describe(p.key))
			continue
		}
		if !p.merged {
			if seen[key] {
				d.errorf(p.key, child, "key given twice; remove one of them")
				continue
			}
			seen[key] = true
		}
		i, ok := fields[key]
		if !ok {
			if rest, ok := inlineMap(v); ok {
				d.decodeInline(p.value, rest, key, child)
				continue
			}
			if d.preservePatroniKey(p.value, v, key, child) {
				continue
			}
			d.unknownKey(p.key, child, slices.Concat(names, patroniKeysAt(path)))
			continue
		}
		d.decode(p.value, v.Field(i), child)
	}
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of keys to values, got %s", describe(n))
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		panic("config: only maps with string keys are supported")
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	seen := map[string]bool{}
	for _, p := range pairs(n) {
		key := p.key.Value
		child := joinPath(path, key)
		if p.key.Kind != yaml.ScalarNode || key == "" {
			d.errorf(p.key, path, "keys must be non-empty plain strings, got %s", describe(p.key))
			continue
		}
		if !p.merged {
			if seen[key] {
				d.errorf(p.key, child, "key given twice; remove one of them")
				continue
			}
			seen[key] = true
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		d.decode(p.value, elem, child)
		v.SetMapIndex(reflect.ValueOf(key).Convert(v.Type().Key()), elem)
	}
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list (one \"- item\" per line or [a, b]), got %s", describe(n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
	}
	v.Set(s)
}

// bootstrapDCS is the path of the dynamic configuration in the member file.
const bootstrapDCS = "bootstrap.dcs."

// preservePatroniKey keeps a key of Patroni's dynamic configuration that
// Regent does not implement (check_timeline, standby_cluster,
// postgresql.recovery_conf, ...) found under bootstrap.dcs, verbatim in the
// section's Preserved map, so that a Patroni member file loads and the
// bootstrap writes the key into the config key as Patroni would. It
// reports whether it did.
func (d *decoder) preservePatroniKey(n *yaml.Node, v reflect.Value, key, path string) bool {
	rel, ok := strings.CutPrefix(path, bootstrapDCS)
	if !ok || !cluster.IsPatroniOnlyKey(rel) {
		return false
	}
	f := v.FieldByName("Preserved")
	if !f.IsValid() || f.Type() != reflect.TypeFor[map[string]json.RawMessage]() {
		return false
	}
	var val any
	if err := n.Decode(&val); err != nil {
		d.errorf(n, path, "%v", err)
		return true
	}
	raw, err := json.Marshal(val)
	if err != nil {
		d.errorf(n, path, "cannot be kept for the config key: %v", err)
		return true
	}
	if f.IsNil() {
		f.Set(reflect.MakeMap(f.Type()))
	}
	f.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(json.RawMessage(raw)))
	return true
}

// patroniKeysAt lists the Patroni-only keys directly below path when it is
// inside bootstrap.dcs, for "did you mean" hints.
func patroniKeysAt(path string) []string {
	rel, ok := strings.CutPrefix(path+".", bootstrapDCS)
	if !ok {
		return nil
	}
	var out []string
	for _, k := range cluster.PatroniOnlyKeys {
		if name, ok := strings.CutPrefix(k, rel); ok && !strings.Contains(name, ".") && cluster.IsPatroniOnlyKey(k) {
			out = append(out, name)
		}
	}
	return out
}

func (d *decoder) unknownKey(key *yaml.Node, path string, known []string) {
	hint := "remove it"
	if s := closest(key.Value, known); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	} else if len(known) > 0 {
		hint = "valid keys here are " + strings.Join(known, ", ")
	}
	d.errs = append(d.errs, fmt.Errorf("%s: unknown key %q (line %d); %s", d.source, path, key.Line, hint))
}

// pair is one key/value of a mapping; merged marks pairs taken from a
// "<<" merge key, which explicit keys override.
type pair struct {
	key, value *yaml.Node
	merged     bool
}

// pairs lists a mapping's pairs with "<<" merges expanded first, so explicit
// keys are applied last and win, as in YAML.
func pairs(n *yaml.Node) []pair {
	var merged, own []pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!!merge" || k.ShortTag() == "!!merge") {
			for _, m := range mergeSources(v) {
				for _, p := range pairs(m) {
					p.merged = true
					merged = append(merged, p)
				}
			}
			continue
		}
		own = append(own, pair{key: k, value: v})
	}
	return append(merged, own...)
}

// mergeSources returns the mappings a merge value refers to.
func mergeSources(v *yaml.Node) []*yaml.Node {
	for v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{v}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, item := range v.Content {
			out = append(out, mergeSources(item)...)
		}
		return out
	}
	return nil
}

// inlineMap returns the struct's `yaml:",inline"` field of type
// map[string]any, which takes the keys no other field names (custom tags).
func inlineMap(v reflect.Value) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if _, opts, _ := strings.Cut(f.Tag.Get("yaml"), ","); opts == "inline" &&
			f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Interface {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// decodeInline stores the scalar n, as YAML types it (string, bool,
// integer, float or null), under key in the inline map m.
func (d *decoder) decodeInline(n *yaml.Node, m reflect.Value, key, path string) {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var val any
	if n.Kind != yaml.ScalarNode || n.Decode(&val) != nil {
		d.errorf(n, path, "expected a string, number or boolean, got %s", describe(n))
		return
	}
	if m.IsNil() {
		m.Set(reflect.MakeMap(m.Type()))
	}
	m.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(&val).Elem())
}

// structFields maps YAML key names to field indexes; names lists the keys
// in declaration order.
func structFields(t reflect.Type) (map[string]int, []string) {
	fields := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || opts == "inline" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = i
		names = append(names, name)
	}
	return fields, names
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "an empty value"
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported YAML node"
}

// expected names the YAML form a Go type takes.
func expected(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "a " + t.String()
}
