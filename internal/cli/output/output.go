// Package output prints command results the way the az CLI does: the same
// JSON objects the API returns, optionally filtered by a JMESPath --query, as
// a table, JSON, YAML or tab-separated values.
package output

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/jmespath/go-jmespath"
	"golang.org/x/term"
	"sigs.k8s.io/yaml"
)

// Format is an output format selected with -o/--output.
type Format string

// The output formats.
const (
	Table Format = "table"
	JSON  Format = "json"
	YAML  Format = "yaml"
	TSV   Format = "tsv"
	// None prints nothing (as the az CLI's -o none): for scripts that only
	// want the exit code.
	None Format = "none"
)

// Formats lists the accepted output formats in the order help text shows them.
var Formats = []Format{Table, JSON, YAML, TSV, None}

// ParseFormat parses an -o/--output value (case-insensitive).
func ParseFormat(s string) (Format, error) {
	want := Format(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Formats, want) {
		return want, nil
	}
	return "", fmt.Errorf("invalid output format %q: allowed values are %s", s, allowedFormats())
}

func allowedFormats() string {
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// Column is one column of a command's default table (and tsv) view.
type Column struct {
	// Header is the column title.
	Header string
	// Path is a JMESPath expression evaluated against each row, for example
	// "name" or "sslConfiguration.status".
	Path string
}

// Print writes v to w in the given format.
//
// v is first converted to generic JSON data, so field names are the JSON ones
// the API uses. A non-empty query (JMESPath, as the az CLI's --query) is then
// applied. When no query is given, cols (if non-nil) is the table and tsv view;
// an API list wrapper {"value": [...]} is shown as its list in table and tsv
// (json and yaml print it as is). A null result prints nothing, as in the az
// CLI.
func Print(w io.Writer, v any, format Format, query string, cols []Column) error {
	switch format {
	case None:
		return nil
	case Table, JSON, YAML, TSV:
	default:
		return fmt.Errorf("invalid output format %q: allowed values are %s", string(format), allowedFormats())
	}

	raw, err := marshal(v)
	if err != nil {
		return fmt.Errorf("output: encode result: %w", err)
	}
	d, data, err := decode(raw)
	if err != nil {
		return fmt.Errorf("output: decode result: %w", err)
	}

	if query != "" {
		jp, err := jmespath.Compile(query)
		if err != nil {
			return queryError(query, err)
		}
		data, err = search(jp, data)
		if err != nil {
			return queryError(query, err)
		}
		d.setHashKeys(multiSelectHashKeys(query))
	}
	if data == nil {
		return nil
	}

	var out bytes.Buffer
	switch format {
	case JSON:
		d.writeJSON(&out, data, "")
		out.WriteByte('\n')
	case YAML:
		var j bytes.Buffer
		d.writeJSON(&j, data, "")
		y, err := yaml.JSONToYAML(j.Bytes())
		if err != nil {
			return fmt.Errorf("output: convert to yaml: %w", err)
		}
		out.Write(y)
	case Table, TSV:
		useCols := query == "" && cols != nil
		if query == "" {
			data = unwrapList(data)
		}
		var err error
		switch {
		case useCols && format == Table:
			err = d.tableColumns(&out, data, cols)
		case useCols:
			err = d.tsvColumns(&out, data, cols)
		case format == Table:
			d.tableAuto(&out, data)
		default:
			d.tsvAuto(&out, data)
		}
		if err != nil {
			return err
		}
	}
	_, err = w.Write(out.Bytes())
	return err
}

// IsTerminal reports whether f is a terminal (so a spinner or colours make sense).
func IsTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

func queryError(query string, err error) error {
	if se, ok := err.(jmespath.SyntaxError); ok {
		return fmt.Errorf("invalid --query expression: %v (at offset %d in %q)", se, se.Offset, query)
	}
	return fmt.Errorf("invalid --query expression: %v (in %q)", err, query)
}

// search runs a compiled expression; the library panics on some odd inputs,
// which must not crash the CLI.
func search(jp *jmespath.JMESPath, data any) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return jp.Search(data)
}

func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// unwrapList returns the list inside an API list wrapper: an object with a
// "value" array whose other members (nextLink, count, ...) are all scalars.
func unwrapList(data any) any {
	m, ok := data.(map[string]any)
	if !ok {
		return data
	}
	list, ok := m["value"].([]any)
	if !ok {
		return data
	}
	for k, v := range m {
		if k != "value" && !isScalar(v) {
			return data
		}
	}
	return list
}
