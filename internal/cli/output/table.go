package output

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jmespath/go-jmespath"
)

// compiledColumn is a Column with its path compiled.
type compiledColumn struct {
	Column
	jp *jmespath.JMESPath
}

func compileColumns(cols []Column) ([]compiledColumn, error) {
	out := make([]compiledColumn, len(cols))
	for i, c := range cols {
		jp, err := jmespath.Compile(c.Path)
		if err != nil {
			return nil, fmt.Errorf("output: column %q: invalid path %q: %w", c.Header, c.Path, err)
		}
		out[i] = compiledColumn{Column: c, jp: jp}
	}
	return out, nil
}

// rowsOf is data as rows: a list's items, or a single object as one row.
// ok is false when data is a scalar, which it prints to out as is.
func rowsOf(out *bytes.Buffer, data any) (items []any, ok bool) {
	switch t := data.(type) {
	case []any:
		return t, true
	case map[string]any:
		return []any{t}, true
	}
	out.WriteString(scalarString(data) + "\n")
	return nil, false
}

// columnRows evaluates cols against each row of data (see rowsOf).
func (d *document) columnRows(out *bytes.Buffer, data any, cols []Column, sep string, clean bool) (rows [][]string, ok bool, err error) {
	items, ok := rowsOf(out, data)
	if !ok {
		return nil, false, nil
	}
	cc, err := compileColumns(cols)
	if err != nil {
		return nil, true, err
	}
	for _, item := range items {
		row := make([]string, len(cc))
		for i, c := range cc {
			v, err := search(c.jp, item)
			if err != nil {
				return nil, true, fmt.Errorf("output: column %q: %w", c.Header, err)
			}
			row[i] = d.cellValue(v, sep)
			if clean {
				row[i] = cleanCell(row[i])
			}
		}
		rows = append(rows, row)
	}
	return rows, true, nil
}

// cellValue formats a column value: scalars as in scalarString, a list of
// scalars joined by sep, anything else as one-line JSON.
func (d *document) cellValue(v any, sep string) string {
	switch t := v.(type) {
	case map[string]any:
		return d.compactJSON(t)
	case []any:
		parts := make([]string, len(t))
		for i, e := range t {
			if !isScalar(e) {
				return d.compactJSON(t)
			}
			parts[i] = scalarString(e)
		}
		return strings.Join(parts, sep)
	}
	return scalarString(v)
}

func (d *document) tableColumns(out *bytes.Buffer, data any, cols []Column) error {
	rows, ok, err := d.columnRows(out, data, cols, ", ", true)
	if err != nil || !ok {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.Header
	}
	writeTable(out, headers, rows)
	return nil
}

// tableAuto prints data the way the az CLI's table output does without a
// table definition: a list of objects (or one object) as a table of their
// scalar members, headed by the member names with the first letter in upper
// case; a list of lists as Column1, Column2, ...; a list of scalars as Result;
// a scalar as is.
func (d *document) tableAuto(out *bytes.Buffer, data any) {
	items, ok := rowsOf(out, data)
	if !ok || len(items) == 0 {
		return
	}
	objects, lists, scalars := 0, 0, 0
	for _, it := range items {
		switch it.(type) {
		case map[string]any:
			objects++
		case []any:
			lists++
		default:
			scalars++
		}
	}
	var headers []string
	var rows [][]string
	switch len(items) {
	case objects:
		keys := d.unionKeys(items, false, func(v any) bool { return v != nil && isScalar(v) })
		if len(keys) == 0 {
			return
		}
		for _, k := range keys {
			headers = append(headers, capitalize(k))
		}
		for _, it := range items {
			m := it.(map[string]any)
			row := make([]string, len(keys))
			for i, k := range keys {
				if v := m[k]; isScalar(v) {
					row[i] = cleanCell(scalarString(v))
				}
			}
			rows = append(rows, row)
		}
	case lists:
		n := 0
		for _, it := range items {
			n = max(n, len(it.([]any)))
		}
		if n == 0 {
			return
		}
		for i := range n {
			headers = append(headers, "Column"+strconv.Itoa(i+1))
		}
		for _, it := range items {
			row := make([]string, n)
			for i, v := range it.([]any) {
				if isScalar(v) {
					row[i] = cleanCell(scalarString(v))
				}
			}
			rows = append(rows, row)
		}
	default: // scalars, or a mixture
		headers = []string{"Result"}
		for _, it := range items {
			rows = append(rows, []string{cleanCell(d.cellValue(it, ", "))})
		}
	}
	writeTable(out, headers, rows)
}

// unionKeys returns the keys of the objects in items whose value passes
// include in at least one of them: in first-seen order, or sorted.
func (d *document) unionKeys(items []any, sorted bool, include func(any) bool) []string {
	seen := map[string]bool{}
	var keys []string
	built := false
	for _, it := range items {
		m := it.(map[string]any)
		built = built || !d.isOriginal(m)
		for _, k := range d.keys(m, sorted) {
			if !seen[k] && include(m[k]) {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if sorted {
		d.sortKeys(keys, built, true)
	}
	return keys
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// writeTable writes left-aligned columns two spaces apart under a header and
// a dashed underline, as the az CLI does.
func writeTable(out *bytes.Buffer, headers []string, rows [][]string) {
	widths := make([]int, len(headers))
	for i, h := range headers {
		widths[i] = utf8.RuneCountInString(h)
	}
	for _, row := range rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	line := func(cells []string) {
		var b strings.Builder
		for i, c := range cells {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
			}
		}
		out.WriteString(strings.TrimRight(b.String(), " "))
		out.WriteByte('\n')
	}
	line(headers)
	dashes := make([]string, len(widths))
	for i, w := range widths {
		dashes[i] = strings.Repeat("-", w)
	}
	line(dashes)
	for _, row := range rows {
		line(row)
	}
}

func (d *document) tsvColumns(out *bytes.Buffer, data any, cols []Column) error {
	rows, ok, err := d.columnRows(out, data, cols, ",", false)
	if err != nil || !ok {
		return err
	}
	for _, row := range rows {
		out.WriteString(strings.Join(row, "\t") + "\n")
	}
	return nil
}

// tsvAuto prints data as the az CLI's tsv output does: no header, one line
// per list item, an object's scalar members tab-separated in key order (the
// query's order for objects a multi-select hash built), nested objects and
// lists skipped, null as an empty field. In a list of objects every line has
// the same fields, so columns line up when some objects lack a member.
func (d *document) tsvAuto(out *bytes.Buffer, data any) {
	items, ok := data.([]any)
	if !ok {
		items = []any{data}
	}
	allObjects := true
	for _, it := range items {
		if _, ok := it.(map[string]any); !ok {
			allObjects = false
			break
		}
	}
	if allLists := len(items) > 0; allLists {
		for _, it := range items {
			if _, ok := it.([]any); !ok {
				allLists = false
				break
			}
		}
		if allLists {
			d.tsvLists(out, items)
			return
		}
	}
	if allObjects && len(items) > 0 {
		keys := d.unionKeys(items, true, isScalar)
		for _, it := range items {
			m := it.(map[string]any)
			fields := make([]string, len(keys))
			for i, k := range keys {
				if v := m[k]; isScalar(v) {
					fields[i] = scalarString(v)
				}
			}
			out.WriteString(strings.Join(fields, "\t") + "\n")
		}
		return
	}
	for _, it := range items {
		var fields []string
		switch t := it.(type) {
		case map[string]any:
			for _, k := range d.keys(t, true) {
				if isScalar(t[k]) {
					fields = append(fields, scalarString(t[k]))
				}
			}
		case []any:
			for _, v := range t {
				if isScalar(v) {
					fields = append(fields, scalarString(v))
				}
			}
		default:
			fields = []string{scalarString(t)}
		}
		out.WriteString(strings.Join(fields, "\t") + "\n")
	}
}

// tsvLists prints a list of lists (a query like "[].[name, state]") one list
// per line. A position is a field when it holds a scalar or null in some list,
// so nested values become empty fields and lines keep the same fields.
func (d *document) tsvLists(out *bytes.Buffer, items []any) {
	var keep []bool
	for _, it := range items {
		for i, v := range it.([]any) {
			if i >= len(keep) {
				keep = append(keep, false)
			}
			keep[i] = keep[i] || isScalar(v)
		}
	}
	for _, it := range items {
		l := it.([]any)
		var fields []string
		for i, k := range keep {
			if !k {
				continue
			}
			f := ""
			if i < len(l) && isScalar(l[i]) {
				f = scalarString(l[i])
			}
			fields = append(fields, f)
		}
		out.WriteString(strings.Join(fields, "\t") + "\n")
	}
}
