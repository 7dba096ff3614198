package store

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"time"
)

// Migration 4 rewrites every compute document written before typed
// settings: its map "properties" (all strings) splits into "settings",
// what the user asked, and "status", what Berth found, by the key lists
// each compute type had at schema version 3, with values converted to
// their types ("3" → 3). A key no list names, or a value that does not
// convert, goes to status.legacy as it was, so nothing is lost. The
// parameters of create and attach operations, which carry the request,
// get the same split of their settings.
//
// The lists are frozen here, as they were: later changes to the providers
// must not change what this migration did.

// kind of a value at schema 3, and how it converts.
type propKind int

const (
	propString   propKind = iota
	propInt               // "3" → 3
	propDuration          // "150ms", kept as text once it parses
	propTime              // RFC 3339, kept as text once it parses
)

// propPlace says where a key of a type's properties goes.
type propPlace struct {
	settings, status bool
	kind             propKind
}

var (
	toSettings = propPlace{settings: true}
	toStatus   = propPlace{status: true}
	toBoth     = propPlace{settings: true, status: true}
)

func (p propPlace) as(k propKind) propPlace { p.kind = k; return p }

// installStatus are the keys of the kubernetes install path's status, which
// AKS computes have too.
var installStatus = map[string]propPlace{
	"certificateError":    toStatus,
	"certificateFailures": toStatus.as(propInt),
	"certificateRetryAt":  toStatus.as(propTime),
	"acmeAccount":         toStatus,
	"givenContext":        toStatus,
	"dnsLabel":            toStatus,
	"dnsZone":             toStatus,
	"fqdn":                toStatus,
}

// propPlaces is where each key of a compute of type and origin goes.
func propPlaces(typ, origin string) map[string]propPlace {
	out := map[string]propPlace{}
	switch typ {
	case "kubernetes":
		maps.Copy(out, installStatus)
		out["context"], out["credentialMode"] = toSettings, toSettings
	case "aks":
		maps.Copy(out, installStatus)
		for _, k := range []string{"subscriptionId", "azureCredential", "resourceGroup", "clusterName", "agentPoolName", "resourceId", "location", "vmSize"} {
			out[k] = toStatus
		}
		out["credentialMode"] = toSettings
		// Scaling records the node count asked for, attached or created.
		out["agentCount"] = toSettings.as(propInt)
		if origin == "created" {
			// The request, with the defaults the create step filled in.
			for _, k := range []string{"kubernetesVersion", "vnetResourceGroupName", "vnetName", "subnetName", "serviceCidr", "dnsServiceIp", "dockerBridgeCidr"} {
				out[k] = toSettings
			}
			// Asked for, and where the cluster is.
			out["location"], out["vmSize"] = toBoth, toBoth
		} else {
			// The cluster the attach named.
			out["resourceId"] = toBoth
		}
	case "local":
		out["port"] = toStatus.as(propInt)
	case "test":
		out["effectsDir"] = toSettings
		out["stepDelay"] = toSettings.as(propDuration)
		for _, k := range []string{"steps", "failAt", "flakyAt"} {
			out[k] = toSettings.as(propInt)
		}
	}
	return out
}

// convert is a property's value in its typed form, or false.
func (k propKind) convert(v string) (any, bool) {
	switch k {
	case propInt:
		n, err := strconv.Atoi(v)
		return n, err == nil
	case propDuration:
		_, err := time.ParseDuration(v)
		return v, err == nil
	case propTime:
		_, err := time.Parse(time.RFC3339, v)
		return v, err == nil
	}
	return v, true
}

// splitProperties is the settings and status of a type's properties.
func splitProperties(typ, origin string, props map[string]string) (settings, status map[string]any) {
	settings, status = map[string]any{}, map[string]any{}
	places := propPlaces(typ, origin)
	legacy := map[string]string{}
	for k, v := range props {
		p, known := places[k]
		val, ok := p.kind.convert(v)
		if !known || !ok {
			legacy[k] = v
			continue
		}
		if p.settings {
			settings[k] = val
		}
		if p.status {
			status[k] = val
		}
	}
	if len(legacy) > 0 {
		status["legacy"] = legacy
	}
	return settings, status
}

// mergeInto sets the fields of m in the JSON object doc[key] (kept as it
// is where m has nothing).
func mergeInto(doc map[string]json.RawMessage, key string, m map[string]any) error {
	if len(m) == 0 {
		return nil
	}
	obj := map[string]json.RawMessage{}
	if raw, ok := doc[key]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &obj); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	for k, v := range m {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		obj[k] = b
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	doc[key] = b
	return nil
}

// takeProperties decodes a document (a compute's, or a create or attach
// request's) and takes its properties out, with its type and origin; the
// document is nil when it has no properties (already migrated, or never
// had any).
func takeProperties(doc []byte) (d map[string]json.RawMessage, props map[string]string, typ, origin string, err error) {
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, nil, "", "", err
	}
	raw, ok := d["properties"]
	if !ok {
		return nil, nil, "", "", nil
	}
	delete(d, "properties")
	if err := json.Unmarshal(raw, &props); err != nil {
		return nil, nil, "", "", fmt.Errorf("properties: %w", err)
	}
	json.Unmarshal(d["type"], &typ)
	json.Unmarshal(d["origin"], &origin)
	return d, props, typ, origin, nil
}

// rewriteComputeDoc is a compute document without properties, or false
// when it has none (already migrated, or never had any).
func rewriteComputeDoc(doc []byte) ([]byte, bool, error) { return rewriteDoc(doc, splitProperties) }

// requestSettings: a create or attach request's properties were all settings (the request
// was checked when it was made), in their typed form.
func requestSettings(typ, origin string, props map[string]string) (settings, status map[string]any) {
	places := propPlaces(typ, origin)
	settings = map[string]any{}
	for k, v := range props {
		settings[k] = v
		if val, ok := places[k].kind.convert(v); ok {
			settings[k] = val
		}
	}
	return settings, nil
}

// rewriteDoc takes a document's properties out and merges them, as split
// divides them, into its settings and status; false when it has none.
func rewriteDoc(doc []byte, split func(typ, origin string, props map[string]string) (settings, status map[string]any)) ([]byte, bool, error) {
	d, props, typ, origin, err := takeProperties(doc)
	if d == nil || err != nil {
		return nil, false, err
	}
	settings, status := split(typ, origin, props)
	if err := mergeInto(d, "settings", settings); err != nil {
		return nil, false, err
	}
	if err := mergeInto(d, "status", status); err != nil {
		return nil, false, err
	}
	out, err := json.Marshal(d)
	return out, true, err
}

func migrateTypedSettings(ctx context.Context, tx *Store) error {
	// Read everything first: PostgreSQL runs one statement at a time on
	// the transaction's connection.
	type row struct{ id, doc string }
	scan := func(sc scanner) (*row, error) {
		var r row
		return &r, sc.Scan(&r.id, &r.doc)
	}
	computes, err := list(ctx, tx, scan, `SELECT id, doc FROM computes`)
	if err != nil {
		return err
	}
	for _, c := range computes {
		doc, changed, err := rewriteComputeDoc([]byte(c.doc))
		if err != nil {
			return fmt.Errorf("compute %s: %w", c.id, err)
		}
		if changed {
			if _, err := tx.exec(ctx, `UPDATE computes SET doc = ? WHERE id = ?`, string(doc), c.id); err != nil {
				return err
			}
		}
	}

	ops, err := list(ctx, tx, scan, `SELECT id, params FROM operations WHERE kind IN ('create', 'attach') AND params <> ''`)
	if err != nil {
		return err
	}
	for _, o := range ops {
		params, err := tx.box.Open(o.doc)
		if err != nil {
			return fmt.Errorf("operation %s: %w", o.id, err)
		}
		out, changed, err := rewriteDoc(params, requestSettings)
		if err != nil {
			return fmt.Errorf("operation %s: %w", o.id, err)
		}
		if changed {
			if _, err := tx.exec(ctx, `UPDATE operations SET params = ? WHERE id = ?`, tx.box.Seal(out), o.id); err != nil {
				return err
			}
		}
	}
	return nil
}
