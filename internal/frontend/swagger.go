package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The swagger document (GET /api/v1/service/{name}/swagger.json) is served
// without credentials, as the scoring reference does. So that such a
// request cannot reach a replica, hold a slot, or send it a body, the
// front end answers it from its own copy: fetched from a replica (or the
// peer front end that holds the service's slots) by one request at a time
// outside the admission queue, kept for swaggerTTL (a replica's error
// answer for swaggerErrorTTL), and dropped when the route or the replicas
// change.
const (
	swaggerTTL      = 30 * time.Second
	swaggerErrorTTL = 5 * time.Second
	swaggerTimeout  = 10 * time.Second
	maxSwaggerBytes = 4 << 20
)

type swaggerDoc struct {
	status      int
	contentType string
	body        []byte
	expires     time.Time
}

func (f *Frontend) serveSwagger(w http.ResponseWriter, s *service, rt *Route) {
	doc, err := f.swaggerOf(s, rt)
	switch {
	case errors.Is(err, ErrNoReplicas):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "NoReadyReplicas", fmt.Sprintf("No ready replicas for service %s", rt.Service))
		return
	case err != nil:
		f.log.Warn("fetching the swagger document failed", "service", rt.Service, "err", err)
		writeError(w, http.StatusBadGateway, "SwaggerUnavailable", fmt.Sprintf("the swagger document of service %s could not be fetched from its replicas", rt.Service))
		return
	}
	h := w.Header()
	if doc.contentType != "" {
		h.Set("Content-Type", doc.contentType)
	}
	h.Set("Content-Length", strconv.Itoa(len(doc.body)))
	w.WriteHeader(doc.status)
	w.Write(doc.body)
}

// swaggerOf is the service's document: the copy while it is fresh, or one
// fetched now (a single fetch for all the requests that wait for it).
func (f *Frontend) swaggerOf(s *service, rt *Route) (*swaggerDoc, error) {
	if d := s.swagger.Load(); d != nil && time.Now().Before(d.expires) {
		return d, nil
	}
	v, err, _ := s.swaggerFetch.Do("", func() (any, error) {
		if d := s.swagger.Load(); d != nil && time.Now().Before(d.expires) {
			return d, nil
		}
		d, err := f.fetchSwagger(s, rt)
		if err == nil {
			s.swagger.Store(d)
		}
		return d, err
	})
	if err != nil {
		return nil, err
	}
	return v.(*swaggerDoc), nil
}

func (f *Frontend) fetchSwagger(s *service, rt *Route) (*swaggerDoc, error) {
	addr, path := "", "/swagger.json"
	extra := [][2]string{{"X-Berth-Service", rt.Service}}
	if a, ok := s.pool.anyAddr(); ok {
		addr = a
	} else if peer := s.forward.Load(); peer != nil {
		addr, path = *peer, "/api/v1/service/"+rt.Service+"/swagger.json"
		extra = [][2]string{{forwardedHeader, "1"}}
	} else {
		return nil, ErrNoReplicas
	}
	deadline := time.Now().Add(min(rt.scoringTimeout(), swaggerTimeout))
	ex, err := f.up.Do(context.Background(), deadline, addr, http.MethodGet, path, nil, nil, extra, nil, nil, 0)
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	body, err := io.ReadAll(io.LimitReader(ex.Body, maxSwaggerBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxSwaggerBytes {
		return nil, fmt.Errorf("the swagger document is larger than %d bytes", maxSwaggerBytes)
	}
	d := &swaggerDoc{status: ex.StatusCode, contentType: ex.Header.Get("Content-Type"), body: body, expires: time.Now().Add(swaggerTTL)}
	if d.status != http.StatusOK {
		d.expires = time.Now().Add(swaggerErrorTTL)
	}
	return d, nil
}
