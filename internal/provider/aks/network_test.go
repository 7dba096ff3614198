package aks_test

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/kubeconn"
	"github.com/berth-ml/berth/internal/preflight"
	"github.com/berth-ml/berth/internal/server"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// refused checks a berth command failed with every part in its stderr and
// left nothing behind: no compute of that name, no Berth namespace.
func (e *env) refused(name string, r result, parts ...string) {
	e.t.Helper()
	if r.code == 0 {
		e.t.Fatalf("succeeded:\n%s%s", r.stdout, r.stderr)
	}
	mustContain(e.t, "refusal", r.stderr, parts...)
	if s := e.berth("compute", "show", "-n", name); s.code == 0 {
		e.t.Errorf("the refused request recorded compute %s", name)
	}
	if _, err := cluster.Client().CoreV1().Namespaces().Get(context.Background(), installer.Namespace, metav1.GetOptions{}); err == nil {
		e.t.Errorf("the refused request installed namespace %s", installer.Namespace)
	}
}

// attachDetach attaches cluster id as compute name, checks the attach's
// output has every part, then detaches it and waits until Berth is gone
// from the package's cluster.
func (e *env) attachDetach(name, id string, parts ...string) {
	e.t.Helper()
	r := e.ok("compute", "attach", "aks", "-n", name, "-i", id)
	mustContain(e.t, "attach of "+name, r.stdout+r.stderr, parts...)
	e.ok("compute", "detach", "-n", name)
	waitNamespaceGone(e.t, cluster)
}

// TestAuthorizedIPRanges: attach reports an API server's authorized IP
// ranges; with the control plane's egress addresses recorded on the
// workspace it says whether they are inside them and refuses, before any
// change, when they are not; without them it warns that the control plane
// must be inside. A created cluster reports that it has none.
func TestAuthorizedIPRanges(t *testing.T) {
	_, fake := simulatedAzure(t)
	id := fake.AddCluster("team-rg", "ranged", "westus2", "1.37.2")
	fake.SetAccess("team-rg", "ranged", []string{"203.0.113.0/24", "198.51.100.7"}, "", nil)
	e := start(t, fake)

	e.attachDetach("ranged1", id, "accepts only its authorized IP ranges 203.0.113.0/24, 198.51.100.7: Berth's control plane must connect from inside them",
		"--control-plane-egress-cidr")

	r := e.berth("workspace", "update", "-n", "ml-team", "--control-plane-egress-cidr", "not-a-cidr")
	if r.code == 0 || !strings.Contains(r.stderr, `--control-plane-egress-cidr "not-a-cidr" is not a CIDR`) {
		t.Errorf("bad egress CIDR: %+v", r)
	}
	e.ok("workspace", "update", "-n", "ml-team", "--control-plane-egress-cidr", "203.0.113.16/28,192.0.2.0/24")
	for _, args := range [][]string{{"--dry-run"}, nil} {
		r = e.berth(append([]string{"compute", "attach", "aks", "-n", "ranged2", "-i", id}, args...)...)
		e.refused("ranged2", r, "accepts only its authorized IP ranges (apiServerAccessProfile.authorizedIPRanges: 203.0.113.0/24, 198.51.100.7)",
			"the control plane's egress addresses 192.0.2.0/24", "are not inside them", "--api-server-authorized-ip-ranges 203.0.113.0/24,198.51.100.7,192.0.2.0/24")
	}

	e.ok("workspace", "update", "-n", "ml-team", "--control-plane-egress-cidr", "203.0.113.16/28,198.51.100.7/32")
	e.attachDetach("ranged3", id, "accepts only its authorized IP ranges 203.0.113.0/24, 198.51.100.7; the control plane's egress addresses 203.0.113.16/28,198.51.100.7/32 are inside them")
}

// TestPrivateClusterFailsFast: attaching a private cluster whose API
// server does not answer the control plane fails within the preflight's
// timeout (its client's, kubeconn.RequestTimeout) saying why, and
// leaves nothing; a private cluster the control plane can reach attaches,
// with a warning.
func TestPrivateClusterFailsFast(t *testing.T) {
	cl, fake := simulatedAzure(t)
	// A private endpoint as seen from outside its network: connections
	// open, and nothing ever answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	far := fake.AddCluster("team-rg", "private-far", "westus2", "1.37.2")
	fake.SetAccess("team-rg", "private-far", nil, "private-far-1a2b.privatelink.westus2.azmk8s.io",
		bytes.ReplaceAll(cl.Kubeconfig, []byte(cl.Server), []byte("https://"+ln.Addr().String())))
	near := fake.AddCluster("team-rg", "private-near", "westus2", "1.37.2")
	fake.SetAccess("team-rg", "private-near", nil, "private-near-3c4d.privatelink.westus2.azmk8s.io", nil)
	e := start(t, fake)

	began := time.Now()
	r := e.berth("compute", "attach", "aks", "-n", "far1", "-i", far)
	took := time.Since(began)
	if r.code == 0 {
		t.Fatalf("attaching an unreachable private cluster succeeded:\n%s%s", r.stdout, r.stderr)
	}
	mustContain(t, "private cluster refusal", r.stderr, "no answer from https://"+ln.Addr().String(),
		"the cluster is private (enablePrivateCluster): its API server private-far-1a2b.privatelink.westus2.azmk8s.io answers only inside its virtual network",
		"nothing was installed")
	if limit := kubeconn.RequestTimeout + time.Minute; took > limit {
		t.Errorf("the attach took %s, more than the preflight's timeout %s with a minute's slack", took, kubeconn.RequestTimeout)
	}
	e.attachDetach("near1", near, "The cluster is private (enablePrivateCluster): Berth reaches its API server private-near-3c4d.privatelink.westus2.azmk8s.io only from inside its virtual network")
}

// TestPreviewVersion: creating with a preview Kubernetes version, or
// attaching a cluster that runs one, succeeds with a warning event, as in
// the reference.
func TestPreviewVersion(t *testing.T) {
	cl, fake := simulatedAzure(t)
	id := fake.AddCluster("team-rg", "edge", "eastus", "1.38.0")
	e := start(t, fake, func(cfg *server.Config) { cfg.KubernetesVersions = preflight.VersionRange{MinMinor: 33, MaxMinor: 38} })

	r := e.ok("compute", "create", "aks", "-n", "edge0", "--kubernetes-version", "1.38")
	mustContain(t, "create with a preview version", r.stdout+r.stderr,
		"Kubernetes 1.38 is a preview version in westus2: it works, but Azure does not support preview versions for production workloads")
	e.deleteAKS("edge0", cl)
	e.attachDetach("edge1", id, "Kubernetes 1.38.0 is a preview version in eastus")
}
