package api

import "time"

// Endpoint is one scoring URI over several versions of a model, each a
// service with a share of the traffic (docs/endpoints.md).
type Endpoint struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Workspace string `json:"workspace"`
	Compute   string `json:"compute"`
	// Auth is the endpoint's: key, token or none. Versions never change it.
	Auth       string            `json:"auth"`
	Versions   []EndpointVersion `json:"versions"`
	ScoringURI string            `json:"scoringUri,omitempty"`
	SwaggerURI string            `json:"swaggerUri,omitempty"`
	CreatedAt  time.Time         `json:"createdAt"`
	UpdatedAt  time.Time         `json:"updatedAt"`
}

// EndpointVersion is one version of an endpoint and its traffic.
type EndpointVersion struct {
	Name string `json:"name"`
	// Service is the service that runs the version.
	Service string `json:"service"`
	// Traffic is the percentage of requests it serves; MirrorTraffic the
	// percentage of requests also copied to it (answers thrown away).
	Traffic       int  `json:"traffic"`
	MirrorTraffic int  `json:"mirrorTraffic,omitempty"`
	Control       bool `json:"control,omitempty"`
	// State and ReadyReplicas are its service's, as shown.
	State         string `json:"state,omitempty"`
	ReadyReplicas int    `json:"readyReplicas"`
}

// EndpointList is the answer of GET /workspaces/{ws}/endpoints.
type EndpointList struct {
	Value []Endpoint `json:"value"`
}

// EndpointRequest is the body of POST /workspaces/{ws}/endpoints.
type EndpointRequest struct {
	Name    string `json:"name"`
	Compute string `json:"compute"`
	// Auth is key (the default), token or none.
	Auth string `json:"auth,omitempty"`
}

// EndpointVersionRequest adds a version: a service deployed with the
// spec (auth is the endpoint's), taking its share of the traffic. Traffic
// defaults to 100 for an endpoint's first version and 0 otherwise.
type EndpointVersionRequest struct {
	Version string `json:"version"`
	ServiceSpec
	Traffic       *int  `json:"traffic,omitempty"`
	MirrorTraffic *int  `json:"mirrorTraffic,omitempty"`
	Control       *bool `json:"control,omitempty"`
}

// EndpointVersionUpdate changes a version: its shares (one atomic change
// of the endpoint's traffic) and, when Spec has fields set, its service
// (a rolling update).
type EndpointVersionUpdate struct {
	ServiceSpec
	Traffic       *int  `json:"traffic,omitempty"`
	MirrorTraffic *int  `json:"mirrorTraffic,omitempty"`
	Control       *bool `json:"control,omitempty"`
}

// EndpointTrafficRequest sets every listed version's traffic at once
// (PATCH /workspaces/{ws}/endpoints/{name}); the versions not listed keep
// theirs, and the result must sum to 100.
type EndpointTrafficRequest struct {
	Traffic map[string]int `json:"traffic"`
}

// EndpointChange is the answer of a change to an endpoint's versions: the
// endpoint as it now is and the operations started on its versions'
// services (none for a traffic change alone).
type EndpointChange struct {
	Endpoint   Endpoint    `json:"endpoint"`
	Operations []Operation `json:"operations"`
}
