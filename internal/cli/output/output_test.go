package output

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

type sslConfiguration struct {
	Status string `json:"status"`
	Cname  string `json:"cname,omitempty"`
}

type compute struct {
	Name              string            `json:"name"`
	Type              string            `json:"type"`
	ProvisioningState string            `json:"provisioningState"`
	NodeCount         int               `json:"nodeCount"`
	AllocatableCpus   float64           `json:"allocatableCpus,omitempty"`
	SSL               *sslConfiguration `json:"sslConfiguration,omitempty"`
	Errors            []string          `json:"provisioningErrors,omitempty"`
}

type list struct {
	Value    []compute `json:"value"`
	NextLink string    `json:"nextLink,omitempty"`
}

var computes = []compute{
	{Name: "prod", Type: "aks", ProvisioningState: "Succeeded", NodeCount: 3, AllocatableCpus: 11.58,
		SSL: &sslConfiguration{Status: "Auto", Cname: "prod.example.com"}},
	{Name: "dev", Type: "kubernetes", ProvisioningState: "Failed", NodeCount: 1,
		Errors: []string{"NotEnoughCpu", "NoIngress"}},
}

var computeCols = []Column{
	{Header: "Name", Path: "name"},
	{Header: "State", Path: "provisioningState"},
	{Header: "SSL", Path: "sslConfiguration.status"},
	{Header: "Errors", Path: "provisioningErrors"},
}

// versions is shaped like `az aks get-versions` output.
const versions = `{"orchestrators":[
 {"orchestratorType":"Kubernetes","orchestratorVersion":"1.36.5","default":null,"isPreview":false,"upgrades":[{"orchestratorVersion":"1.37.2"}]},
 {"orchestratorType":"Kubernetes","orchestratorVersion":"1.37.2","default":true,"isPreview":false,"upgrades":[]},
 {"orchestratorType":"Kubernetes","orchestratorVersion":"1.38.0","default":null,"isPreview":true,"upgrades":[]}
]}`

func TestPrint(t *testing.T) {
	versionData := json.RawMessage(versions)
	wrapper := list{Value: computes}
	tests := []struct {
		name   string
		v      any
		format Format
		query  string
		cols   []Column
		want   string
	}{
		{
			name:   "json keeps API field names and order",
			v:      computes[1],
			format: JSON,
			want: `{
  "name": "dev",
  "type": "kubernetes",
  "provisioningState": "Failed",
  "nodeCount": 1,
  "provisioningErrors": [
    "NotEnoughCpu",
    "NoIngress"
  ]
}
`,
		},
		{
			name:   "json prints a list wrapper as is, ignoring cols",
			v:      list{Value: []compute{}},
			format: JSON,
			cols:   computeCols,
			want:   "{\n  \"value\": []\n}\n",
		},
		{
			name:   "json does not escape HTML characters",
			v:      map[string]string{"a": "<b>&"},
			format: JSON,
			want:   "{\n  \"a\": \"<b>&\"\n}\n",
		},
		{
			name:   "yaml",
			v:      computes[0],
			format: YAML,
			want: `allocatableCpus: 11.58
name: prod
nodeCount: 3
provisioningState: Succeeded
sslConfiguration:
  cname: prod.example.com
  status: Auto
type: aks
`,
		},
		{
			name:   "query on a list wrapper, json",
			v:      wrapper,
			format: JSON,
			query:  "value[].name",
			want:   "[\n  \"prod\",\n  \"dev\"\n]\n",
		},
		{
			name:   "query on a list wrapper, tsv",
			v:      wrapper,
			format: TSV,
			query:  "value[].name",
			want:   "prod\ndev\n",
		},
		{
			name:   "query on a list wrapper, table of scalars",
			v:      wrapper,
			format: Table,
			query:  "value[].name",
			want:   "Result\n------\nprod\ndev\n",
		},
		{
			name:   "az example: default orchestrator version",
			v:      versionData,
			format: JSON,
			query:  "orchestrators[?default == `true`].orchestratorVersion",
			want:   "[\n  \"1.37.2\"\n]\n",
		},
		{
			name:   "az example, tsv",
			v:      versionData,
			format: TSV,
			query:  "orchestrators[?default == `true`].orchestratorVersion | [0]",
			want:   "1.37.2\n",
		},
		{
			name:   "table from query: scalar members in document order, headers capitalised",
			v:      versionData,
			format: Table,
			query:  "orchestrators",
			want: `OrchestratorType  OrchestratorVersion  IsPreview  Default
----------------  -------------------  ---------  -------
Kubernetes        1.36.5               false
Kubernetes        1.37.2               false      true
Kubernetes        1.38.0               true
`,
		},
		{
			name:   "table from a multi-select hash keeps the query's order",
			v:      wrapper,
			format: Table,
			query:  "value[].{State:provisioningState, Name:name, Cpus:allocatableCpus}",
			want: `State      Name  Cpus
---------  ----  -----
Succeeded  prod  11.58
Failed     dev
`,
		},
		{
			name:   "table of a list of lists",
			v:      wrapper,
			format: Table,
			query:  "value[].[name, nodeCount]",
			want:   "Column1  Column2\n-------  -------\nprod     3\ndev      1\n",
		},
		{
			name:   "table with columns unwraps the list wrapper",
			v:      wrapper,
			format: Table,
			cols:   computeCols,
			want: `Name  State      SSL   Errors
----  ---------  ----  -----------------------
prod  Succeeded  Auto
dev   Failed           NotEnoughCpu, NoIngress
`,
		},
		{
			name:   "table with columns: one object is one row",
			v:      computes[0],
			format: Table,
			cols:   computeCols[:3],
			want:   "Name  State      SSL\n----  ---------  ----\nprod  Succeeded  Auto\n",
		},
		{
			name:   "table without columns: one object, scalar members only",
			v:      computes[0],
			format: Table,
			want: `Name  Type  ProvisioningState  NodeCount  AllocatableCpus
----  ----  -----------------  ---------  ---------------
prod  aks   Succeeded          3          11.58
`,
		},
		{
			name:   "a query replaces the columns",
			v:      wrapper,
			format: Table,
			query:  "value[?name=='dev'].{Name:name, Nodes:nodeCount}",
			cols:   computeCols,
			want:   "Name  Nodes\n----  -----\ndev   1\n",
		},
		{
			name:   "empty list prints nothing in a table",
			v:      list{Value: []compute{}},
			format: Table,
			cols:   computeCols,
			want:   "",
		},
		{
			name:   "empty list prints nothing in a table, no columns",
			v:      []compute{},
			format: Table,
			want:   "",
		},
		{
			name:   "scalar table",
			v:      wrapper,
			format: Table,
			query:  "length(value)",
			want:   "2\n",
		},
		{
			name:   "tsv of a list of objects: sorted keys, nested skipped, aligned",
			v:      computes,
			format: TSV,
			want:   "11.58\tprod\t3\tSucceeded\taks\n\tdev\t1\tFailed\tkubernetes\n",
		},
		{
			name:   "table without columns or query unwraps the list wrapper",
			v:      list{Value: computes[1:], NextLink: "/api/v1/computes?page=2"},
			format: Table,
			want: `Name  Type        ProvisioningState  NodeCount
----  ----------  -----------------  ---------
dev   kubernetes  Failed             1
`,
		},
		{
			name:   "table cells stay on one line",
			v:      []map[string]string{{"message": "line one\nline two"}},
			format: Table,
			want:   "Message\n-----------------\nline one line two\n",
		},
		{
			name:   "tsv without columns or query unwraps the list wrapper",
			v:      list{Value: computes[1:]},
			format: TSV,
			want:   "dev\t1\tFailed\tkubernetes\n",
		},
		{
			name:   "tsv with columns",
			v:      wrapper,
			format: TSV,
			cols:   computeCols,
			want:   "prod\tSucceeded\tAuto\t\ndev\tFailed\t\tNotEnoughCpu,NoIngress\n",
		},
		{
			name:   "tsv of a multi-select hash keeps the query's order",
			v:      wrapper,
			format: TSV,
			query:  "value[].{n:name, a:nodeCount, s:sslConfiguration.status}",
			want:   "prod\t3\tAuto\ndev\t1\t\n",
		},
		{
			name:   "tsv of one object",
			v:      map[string]any{"b": true, "a": 1e6, "c": nil, "d": map[string]any{"x": 1}},
			format: TSV,
			want:   "1000000\ttrue\t\n",
		},
		{
			name:   "tsv of a list of lists",
			v:      wrapper,
			format: TSV,
			query:  "value[].[name, provisioningErrors, nodeCount]",
			want:   "prod\t\t3\ndev\t\t1\n",
		},
		{
			name:   "null result prints nothing",
			v:      wrapper,
			format: JSON,
			query:  "missing",
			want:   "",
		},
		{
			name:   "large integers print without an exponent",
			v:      map[string]any{"bytes": int64(123456789012)},
			format: JSON,
			want:   "{\n  \"bytes\": 123456789012\n}\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Print(&b, tt.v, tt.format, tt.query, tt.cols); err != nil {
				t.Fatalf("Print: %v", err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestPrintErrors(t *testing.T) {
	tests := []struct {
		name   string
		format Format
		query  string
		cols   []Column
		want   string
	}{
		{name: "unclosed bracket", format: JSON, query: "value[", want: "invalid --query expression: SyntaxError"},
		{name: "bad filter", format: Table, query: "value[?name == ]", want: "invalid --query expression:"},
		{name: "function on the wrong type", format: JSON, query: "length(`1`)", want: "invalid --query expression:"},
		{name: "unknown format", format: "xml", want: `invalid output format "xml": allowed values are table, json, yaml, tsv`},
		{name: "bad column path", format: Table, cols: []Column{{Header: "X", Path: "a[["}}, want: `column "X": invalid path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			err := Print(&b, list{Value: computes}, tt.format, tt.query, tt.cols)
			if err == nil {
				t.Fatalf("Print succeeded, printed %q", b.String())
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if b.Len() != 0 {
				t.Errorf("printed %q before failing", b.String())
			}
		})
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr string
	}{
		{in: "table", want: Table},
		{in: "json", want: JSON},
		{in: "YAML", want: YAML},
		{in: " tsv ", want: TSV},
		{in: "jsonc", wantErr: `invalid output format "jsonc": allowed values are table, json, yaml, tsv`},
		{in: "", wantErr: "allowed values are table, json, yaml, tsv"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFormat(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseFormat(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseFormat(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestMultiSelectHashKeys(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{expr: "name", want: nil},
		{expr: "[].{Name:name, State: provisioningState}", want: []string{"Name", "State"}},
		{expr: `[?tags.x == 'a:b'].{"my key": a, b: c[0:1], d: {e: f}}`, want: []string{"my key", "b", "d", "e"}},
		{expr: "[?x == `{\"k\": 1}`].{z: x}", want: []string{"z"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			got := multiSelectHashKeys(tt.expr)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIsTerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
	if IsTerminal(nil) {
		t.Error("nil is not a terminal")
	}
}
