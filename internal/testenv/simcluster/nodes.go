package simcluster

import (
	"context"
	"fmt"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// normalizeNodes fills in defaults and checks the quantities. Nodes without
// a name are named kwok-node-N, N counting on from seq.
func normalizeNodes(specs []NodeSpec, seq int) ([]NodeSpec, error) {
	out := make([]NodeSpec, len(specs))
	seen := map[string]bool{}
	for i, n := range specs {
		if n.Name == "" {
			n.Name = fmt.Sprintf("kwok-node-%d", seq+i+1)
		}
		if n.CPU == "" {
			n.CPU = "4"
		}
		if n.Memory == "" {
			n.Memory = "16Gi"
		}
		if n.Pods == "" {
			n.Pods = "110"
		}
		for what, q := range map[string]string{"cpu": n.CPU, "memory": n.Memory, "pods": n.Pods} {
			if _, err := resource.ParseQuantity(q); err != nil {
				return nil, fmt.Errorf("simcluster: node %s: %s %q: %v", n.Name, what, q, err)
			}
		}
		if seen[n.Name] {
			return nil, fmt.Errorf("simcluster: two nodes named %s", n.Name)
		}
		seen[n.Name] = true
		out[i] = n
	}
	return out, nil
}

// nodeObject is the Node kwok takes over: like a kubelet registering, it
// starts with the not-ready taint, which the node lifecycle controller
// removes once kwok has made the node Ready.
func nodeObject(n NodeSpec) *corev1.Node {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse(n.CPU),
		corev1.ResourceMemory: resource.MustParse(n.Memory),
		corev1.ResourcePods:   resource.MustParse(n.Pods),
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name,
			Annotations: map[string]string{
				KwokNodeAnnotation:             "fake",
				"node.alpha.kubernetes.io/ttl": "0",
			},
			Labels: map[string]string{
				"kubernetes.io/hostname": n.Name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"kubernetes.io/role":     "agent",
				"type":                   "kwok",
			},
		},
		Spec: corev1.NodeSpec{
			Taints: []corev1.Taint{{Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule}},
		},
		Status: corev1.NodeStatus{
			Capacity:    res,
			Allocatable: allocatable(res),
			NodeInfo: corev1.NodeSystemInfo{
				Architecture:    "amd64",
				OperatingSystem: "linux",
				KubeletVersion:  Version,
			},
		},
	}
}

// allocatable is what a kubelet leaves for pods out of a node's capacity,
// below it as on real clusters: CPU less the system reservation of AKS and
// GKE (6% of the first core, 1% of the second, 0.5% of the next two, 0.25%
// of the rest: 80m of 4 cores), memory less AKS's 750Mi eviction threshold
// (at most a quarter of it). Code that counts allocatable where the rule
// means capacity fails on these nodes as it would on a real cluster.
func allocatable(capacity corev1.ResourceList) corev1.ResourceList {
	out := capacity.DeepCopy()
	cpu := capacity.Cpu().MilliValue()
	var reserved float64
	prev := int64(0)
	for _, tier := range []struct {
		upTo  int64
		share float64
	}{{1000, 0.06}, {2000, 0.01}, {4000, 0.005}, {math.MaxInt64, 0.0025}} {
		if cpu > prev {
			reserved += float64(min(cpu, tier.upTo)-prev) * tier.share
		}
		prev = tier.upTo
	}
	out[corev1.ResourceCPU] = *resource.NewMilliQuantity(cpu-int64(math.Ceil(reserved)), resource.DecimalSI)
	mem := capacity.Memory().Value()
	out[corev1.ResourceMemory] = *resource.NewQuantity(mem-min(750<<20, mem/4), resource.BinarySI)
	return out
}

func (c *Cluster) createNode(ctx context.Context, n NodeSpec) error {
	_, err := c.client.CoreV1().Nodes().Create(ctx, nodeObject(n), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create node %s: %w", n.Name, err)
	}
	return nil
}

// nodesReady tells whether every node is Ready and without the not-ready
// or unreachable taints, so that pods can be scheduled onto it.
func (c *Cluster) nodesReady(ctx context.Context, nodes []NodeSpec) (bool, error) {
	for _, n := range nodes {
		node, err := c.client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return false, fmt.Errorf("node %s is gone", n.Name)
			}
			return false, nil
		}
		ready := false
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return false, fmt.Errorf("node %s is not Ready", n.Name)
		}
		for _, t := range node.Spec.Taints {
			if t.Key == corev1.TaintNodeNotReady || t.Key == corev1.TaintNodeUnreachable {
				return false, fmt.Errorf("node %s still has taint %s", n.Name, t.Key)
			}
		}
	}
	return true, nil
}

// AddNode adds a node to the running cluster and waits until it is Ready.
// Empty fields take NodeSpec's defaults.
func (c *Cluster) AddNode(spec NodeSpec) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var nodes []NodeSpec
	for {
		c.mu.Lock()
		seq := c.nodeSeq
		c.nodeSeq++
		c.mu.Unlock()
		var err error
		if nodes, err = normalizeNodes([]NodeSpec{spec}, seq); err != nil {
			return err
		}
		err = c.createNode(ctx, nodes[0])
		if err == nil {
			break
		}
		// A generated name may be taken by a node named by hand.
		if spec.Name != "" || !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("simcluster: %w", err)
		}
	}
	if err := c.waitFor(ctx, time.Minute, "node "+nodes[0].Name+" to be Ready", func() (bool, error) {
		return c.nodesReady(ctx, nodes)
	}); err != nil {
		return fmt.Errorf("simcluster: %w", err)
	}
	return nil
}
