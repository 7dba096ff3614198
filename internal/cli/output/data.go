package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// document is generic JSON data plus what encoding/json forgets: the order
// of the members of each object. Objects keep the order the API wrote them
// in (Go struct field order); objects a --query builds with a multi-select
// hash ({Name:name, State:state}) take the order of the expression.
type document struct {
	order    map[uintptr][]string // member order of each decoded object
	docRank  map[string]int       // first appearance of each key anywhere in the document
	hashRank map[string]int       // order of the query's multi-select hash keys
}

// decode parses JSON into map[string]any / []any / float64 / string / bool /
// nil (the types JMESPath works on), recording the order of object members.
func decode(raw []byte) (*document, any, error) {
	d := &document{order: map[uintptr][]string{}, docRank: map[string]int{}}
	dec := json.NewDecoder(bytes.NewReader(raw))
	v, err := d.value(dec)
	if err != nil {
		return nil, nil, err
	}
	return d, v, nil
}

func (d *document) value(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, float64, bool or nil
	}
	switch delim {
	case '{':
		m := map[string]any{}
		var keys []string
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			key, _ := kt.(string)
			if _, seen := d.docRank[key]; !seen {
				d.docRank[key] = len(d.docRank)
			}
			val, err := d.value(dec)
			if err != nil {
				return nil, err
			}
			if _, dup := m[key]; !dup {
				keys = append(keys, key)
			}
			m[key] = val
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		d.order[reflect.ValueOf(m).Pointer()] = keys
		return m, nil
	case '[':
		list := []any{}
		for dec.More() {
			val, err := d.value(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, val)
		}
		if _, err := dec.Token(); err != nil {
			return nil, err
		}
		return list, nil
	}
	return nil, fmt.Errorf("unexpected %v", delim)
}

func (d *document) setHashKeys(keys []string) {
	d.hashRank = map[string]int{}
	for _, k := range keys {
		if _, ok := d.hashRank[k]; !ok {
			d.hashRank[k] = len(d.hashRank)
		}
	}
}

// keys returns the members of m in display order. Objects from the API keep
// their order unless sorted is set (tsv, as the az CLI sorts plain objects);
// see sortKeys for objects the query built.
func (d *document) keys(m map[string]any, sorted bool) []string {
	ks, original := d.order[reflect.ValueOf(m).Pointer()]
	if original && !sorted {
		return ks
	}
	ks = slices.Collect(maps.Keys(m))
	d.sortKeys(ks, !original, sorted)
	return ks
}

// sortKeys orders keys by name; keys of objects the query built (built) go
// first in the order of the query's multi-select hashes and then, unless
// sorted, in the order they first appear in the document.
func (d *document) sortKeys(ks []string, built, sorted bool) {
	rank := func(ranks map[string]int, k string) int {
		if r, ok := ranks[k]; ok {
			return r
		}
		return math.MaxInt
	}
	sort.SliceStable(ks, func(i, j int) bool {
		a, b := ks[i], ks[j]
		if built {
			if ra, rb := rank(d.hashRank, a), rank(d.hashRank, b); ra != rb {
				return ra < rb
			}
			if !sorted {
				if ra, rb := rank(d.docRank, a), rank(d.docRank, b); ra != rb {
					return ra < rb
				}
			}
		}
		return a < b
	})
}

func (d *document) isOriginal(m map[string]any) bool {
	_, ok := d.order[reflect.ValueOf(m).Pointer()]
	return ok
}

// writeJSON writes v as JSON indented by two spaces, keeping member order.
func (d *document) writeJSON(b *bytes.Buffer, v any, indent string) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		keys := d.keys(t, false)
		for i, k := range keys {
			b.WriteString(indent + "  ")
			writeJSONString(b, k)
			b.WriteString(": ")
			d.writeJSON(b, t[k], indent+"  ")
			if i < len(keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case []any:
		if len(t) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, e := range t {
			b.WriteString(indent + "  ")
			d.writeJSON(b, e, indent+"  ")
			if i < len(t)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	case string:
		writeJSONString(b, t)
	case float64:
		b.WriteString(formatNumber(t))
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case nil:
		b.WriteString("null")
	default:
		// Not produced by decode or go-jmespath today; stay valid JSON anyway.
		raw, err := marshal(t)
		if err != nil {
			writeJSONString(b, fmt.Sprint(t))
			return
		}
		b.Write(bytes.TrimRight(raw, "\n"))
	}
}

// compactJSON renders v on one line (nested values in table cells).
func (d *document) compactJSON(v any) string {
	var b bytes.Buffer
	d.writeJSON(&b, v, "")
	var c bytes.Buffer
	if err := json.Compact(&c, b.Bytes()); err != nil {
		return b.String()
	}
	return c.String()
}

func writeJSONString(b *bytes.Buffer, s string) {
	raw, _ := marshal(s) // a string always encodes
	b.Write(bytes.TrimRight(raw, "\n"))
}

// formatNumber prints a JSON number without an exponent (1e21 and beyond
// excepted, where plain digits would only be noise).
func formatNumber(f float64) string {
	if math.Abs(f) < 1e21 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func isScalar(v any) bool {
	switch v.(type) {
	case map[string]any, []any:
		return false
	}
	return true
}

// scalarString formats a scalar for table and tsv: strings unquoted, booleans
// lower case, null empty.
func scalarString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case float64:
		return formatNumber(t)
	}
	return fmt.Sprint(v)
}

// multiSelectHashKeys returns the keys of the multi-select hashes in a JMESPath
// expression ("[].{Name:name, State:state}" → Name, State), in order. It
// skips literals and raw strings; the expression has already compiled.
func multiSelectHashKeys(expr string) []string {
	var keys []string
	var stack []byte
	inHash := func() bool { return len(stack) > 0 && stack[len(stack)-1] == '{' }
	followedByColon := func(i int) bool {
		for ; i < len(expr); i++ {
			switch expr[i] {
			case ' ', '\t', '\n', '\r':
				continue
			case ':':
				return true
			}
			return false
		}
		return false
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '\'' || c == '`':
			i = skipQuoted(expr, i)
			continue
		case c == '"':
			end := skipQuoted(expr, i)
			if inHash() && followedByColon(end) {
				var k string
				if json.Unmarshal([]byte(expr[i:end]), &k) == nil {
					keys = append(keys, k)
				}
			}
			i = end
			continue
		case c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z'):
			end := i
			for end < len(expr) && (expr[end] == '_' || ('a' <= expr[end] && expr[end] <= 'z') ||
				('A' <= expr[end] && expr[end] <= 'Z') || ('0' <= expr[end] && expr[end] <= '9')) {
				end++
			}
			if inHash() && followedByColon(end) {
				keys = append(keys, expr[i:end])
			}
			i = end
			continue
		case c == '{' || c == '[' || c == '(':
			stack = append(stack, c)
		case c == '}' || c == ']' || c == ')':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		}
		i++
	}
	return keys
}

// skipQuoted returns the index just past the quoted run starting at expr[i].
func skipQuoted(expr string, i int) int {
	q := expr[i]
	for j := i + 1; j < len(expr); j++ {
		switch expr[j] {
		case '\\':
			j++
		case q:
			return j + 1
		}
	}
	return len(expr)
}

var cellReplacer = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ")

// cleanCell keeps a table row on one line.
func cleanCell(s string) string {
	return cellReplacer.Replace(s)
}
