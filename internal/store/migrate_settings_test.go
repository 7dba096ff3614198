package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestSplitPropertiesKeepsEverything: keys of a type the migration does
// not know, and values that do not convert, land in status.legacy as they
// were; a document without properties is left alone.
func TestSplitPropertiesKeepsEverything(t *testing.T) {
	doc := []byte(`{"name":"x","type":"fixed-hosts","origin":"attached","properties":{"hosts":"a,b"},"status":{"seen":1}}`)
	out, changed, err := rewriteComputeDoc(doc)
	if err != nil || !changed {
		t.Fatalf("rewrite: %v %v", changed, err)
	}
	var got map[string]any
	json.Unmarshal(out, &got)
	want := map[string]any{"name": "x", "type": "fixed-hosts", "origin": "attached",
		"status": map[string]any{"seen": 1.0, "legacy": map[string]any{"hosts": "a,b"}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("unknown type: %s", out)
	}
	if _, changed, _ := rewriteComputeDoc(out); changed {
		t.Error("a migrated document was rewritten again")
	}
	settings, status := splitProperties("aks", "created", map[string]string{"agentCount": "three", "vmSize": "Standard_D3_v2", "workspaceRegion": "westus2"})
	if !reflect.DeepEqual(settings, map[string]any{"vmSize": "Standard_D3_v2"}) ||
		!reflect.DeepEqual(status, map[string]any{"vmSize": "Standard_D3_v2", "legacy": map[string]string{"agentCount": "three", "workspaceRegion": "westus2"}}) {
		t.Errorf("aks: settings %v, status %v", settings, status)
	}
}
