package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
)

// A compute's type-specific settings and status are JSON objects
// (api.Compute.Settings and .Status) that each provider reads into its own
// structs. Settings from a request go Caddy's way: DecodeStrict (an
// unknown field is an error, never ignored), then the provider fills its
// defaults, then it validates; every problem is a detail whose target is
// the field's path ("settings.agentCount"). Stored documents are Berth's
// own, already checked: Read and Edit look at the fields of one struct and
// leave the others alone, so one type may embed another's (AKS's status
// holds the kubernetes provider's).

// DecodeStrict decodes the JSON object raw (nothing, or null, is an empty
// object) into v, a pointer to a struct, refusing fields v does not have.
// Every problem is reported, each naming its field under prefix
// ("settings.agentCount"); a field that does not decode is left zero.
func DecodeStrict(prefix string, raw json.RawMessage, v any) []api.ErrorDetail {
	if isEmpty(raw) {
		return nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, prefix, "%s must be a JSON object", prefix)}
	}
	known := jsonFields(v)
	var out []api.ErrorDetail
	for _, k := range slices.Sorted(maps.Keys(doc)) {
		if !slices.Contains(known, k) {
			out = append(out, problem.Detail(api.CodeInvalidProperty, prefix+"."+k, "%s.%s is not a setting of this compute type (known: %s)", prefix, k, strings.Join(known, ", ")))
			continue
		}
		one, _ := json.Marshal(map[string]json.RawMessage{k: doc[k]})
		// Into a fresh value first, so a field that fails stays zero in v.
		probe := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if err := json.Unmarshal(one, probe); err != nil {
			msg := err.Error()
			if typeErr, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
				msg = fmt.Sprintf("must be %s, not a JSON %s", kindOf(typeErr.Type.Kind().String()), typeErr.Value)
			} else if i := strings.LastIndex(msg, ": "); i >= 0 && strings.HasPrefix(msg, "json:") {
				msg = msg[i+2:]
			}
			out = append(out, problem.Detail(api.CodeInvalidValue, prefix+"."+k, "%s.%s %s", prefix, k, msg))
			continue
		}
		_ = json.Unmarshal(one, v)
	}
	return out
}

func kindOf(k string) string {
	switch {
	case strings.HasPrefix(k, "int"), strings.HasPrefix(k, "uint"):
		return "an integer"
	case strings.HasPrefix(k, "float"):
		return "a number"
	case k == "string":
		return "a string"
	case k == "bool":
		return "true or false"
	}
	return "a " + k
}

// jsonFields lists the JSON names of the fields of the struct v points to
// (embedded structs' included), sorted.
func jsonFields(v any) []string {
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			switch {
			case name == "-" || (!f.IsExported() && !f.Anonymous):
			case f.Anonymous && name == "":
				walk(f.Type)
			case name != "":
				out = append(out, name)
			default:
				out = append(out, f.Name)
			}
		}
	}
	walk(reflect.TypeOf(v))
	sort.Strings(out)
	return out
}

func isEmpty(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// Read decodes the fields of T from a stored settings or status document,
// ignoring the fields T does not have. A document Berth wrote always
// decodes; should one not, the fields that did are returned.
func Read[T any](raw json.RawMessage) T {
	var t T
	if !isEmpty(raw) {
		_ = json.Unmarshal(raw, &t)
	}
	return t
}

// Edit changes the fields of T in the settings or status document *raw:
// fn gets them decoded, and what it leaves is written back, fields set to
// their zero value (and omitted by T's encoding) removed. Fields of the
// document that T does not have are kept as they are.
func Edit[T any](raw *json.RawMessage, fn func(*T)) {
	doc := map[string]json.RawMessage{}
	if !isEmpty(*raw) {
		_ = json.Unmarshal(*raw, &doc)
	}
	t := Read[T](*raw)
	before := fieldsOf(&t)
	fn(&t)
	after := fieldsOf(&t)
	for k := range before {
		if _, ok := after[k]; !ok {
			delete(doc, k)
		}
	}
	maps.Copy(doc, after)
	if len(doc) == 0 {
		*raw = nil
		return
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic(fmt.Sprintf("provider.Edit: %v", err)) // a map of raw JSON always encodes
	}
	*raw = b
}

func fieldsOf(v any) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	b, err := json.Marshal(v)
	if err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// Encode is the settings or status document of v, compact (nil when v
// has nothing to say, so the document's field is omitted).
func Encode(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil || string(b) == "{}" || string(b) == "null" {
		return nil
	}
	return b
}

// Duration is a time.Duration that JSON writes as Go's text form ("500ms",
// "2m0s") and reads from it.
type Duration time.Duration

func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 500ms or 2m", b)
	}
	*d = Duration(v)
	return nil
}
