package api

import (
	"fmt"
	"strconv"
	"strings"
)

// ModelRef names a registered model version: NAME[:VERSION].
type ModelRef struct {
	Name    string
	Version int // 0: the latest
}

// ParseModelRef reads NAME[:VERSION].
func ParseModelRef(s string) (ModelRef, error) {
	name, v, ok := strings.Cut(s, ":")
	if name == "" {
		return ModelRef{}, fmt.Errorf("model %q: the name is missing (use NAME or NAME:VERSION)", s)
	}
	if !ok || v == "latest" {
		return ModelRef{Name: name}, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return ModelRef{}, fmt.Errorf("model %q: the version must be a positive number (use NAME or NAME:VERSION)", s)
	}
	return ModelRef{Name: name, Version: n}, nil
}

// DeliveryPath is the API path a cluster replica's init container
// downloads its service's models from.
func DeliveryPath(serviceID string) string { return "/api/v1/delivery/services/" + serviceID }

// FrontendMetricsPath is where a cluster's front end reports its metrics
// to the control plane, with a service-account token for the audience
// berth:<attachment>.
func FrontendMetricsPath(computeID string) string {
	return "/api/v1/delivery/computes/" + computeID + "/frontend-metrics"
}

// RequestLogsPath is where a cluster's front end posts its request logs,
// authenticated as its metrics reports are.
func RequestLogsPath(computeID string) string {
	return "/api/v1/delivery/computes/" + computeID + "/request-logs"
}
