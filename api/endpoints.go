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
}
