package frontend

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// StaticConfig defines services without a cluster: for running berth-fe
// on one machine (benchmarks, the local compute) with fixed replicas.
type StaticConfig struct {
	Services []StaticService `json:"services"`
	CertFile string          `json:"certFile,omitempty"`
	KeyFile  string          `json:"keyFile,omitempty"`
}

// StaticService is a route and the addresses of its replicas.
type StaticService struct {
	Route    json.RawMessage `json:"route"`
	Replicas []string        `json:"replicas"`
}

// LoadStatic reads a StaticConfig file into the front end.
func (f *Frontend) LoadStatic(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var cfg StaticConfig
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, s := range cfg.Services {
		rt, err := ParseRoute(s.Route)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		f.SetRoute(rt)
		var reps []Replica
		for i, addr := range s.Replicas {
			reps = append(reps, Replica{Name: fmt.Sprintf("%s-%d", rt.Service, i), Addr: addr, Slots: rt.MaxConcurrentRequestsPerContainer})
		}
		f.SetReplicas(rt.Service, reps, "")
	}
	if cfg.CertFile != "" {
		c, err := os.ReadFile(cfg.CertFile)
		if err != nil {
			return err
		}
		k, err := os.ReadFile(cfg.KeyFile)
		if err != nil {
			return err
		}
		if err := f.SetCertificate(c, k); err != nil {
			return fmt.Errorf("%s: certificate: %w", path, err)
		}
	}
	f.SetReady(true)
	return nil
}
