package simcluster

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// InternalLoadBalancerAnnotation marks a Service of type LoadBalancer as
// internal, as on AKS. The fake load-balancer controller then gives it an
// address from InternalLoadBalancerRange rather than PublicLoadBalancerRange.
const InternalLoadBalancerAnnotation = "service.beta.kubernetes.io/azure-load-balancer-internal"

// The loopback ranges the fake load-balancer controller takes ingress
// addresses from. A test can listen on such an address itself to stand in
// for the load balancer.
const (
	PublicLoadBalancerRange   = "127.100.0.0/16"
	InternalLoadBalancerRange = "127.101.0.0/16"
)

// lbController stands in for a cloud's service controller: it writes
// status.loadBalancer.ingress of Services of type LoadBalancer (without a
// spec.loadBalancerClass) with a loopback address, stable per Service, from
// the public or the internal range.
type lbController struct {
	client   kubernetes.Interface
	logf     func(format string, args ...any)
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[string]

	mu       sync.Mutex
	assigned map[string]lbAddress // namespace/name → address
	used     map[string]bool      // addresses handed out
	next     [2]uint32            // next host number to try, public and internal
	// bindable, when set, skips addresses this machine already listens on
	// (another cluster's forwarding load balancer).
	bindable func(ip string) bool
}

type lbAddress struct {
	ip       string
	internal bool
}

func newLBController(client kubernetes.Interface, logf func(string, ...any)) *lbController {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Services(metav1.NamespaceAll).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return client.CoreV1().Services(metav1.NamespaceAll).Watch(ctx, o)
		},
	}
	l := &lbController{
		client:   client,
		logf:     logf,
		informer: cache.NewSharedIndexInformer(lw, &corev1.Service{}, 0, cache.Indexers{}),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 5*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "simcluster-loadbalancer"},
		),
		assigned: map[string]lbAddress{},
		used:     map[string]bool{},
		next:     [2]uint32{1, 1},
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			l.queue.Add(key)
		}
	}
	_, _ = l.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	})
	return l
}

// run runs the controller until ctx is done.
func (l *lbController) run(ctx context.Context) {
	go func() {
		<-ctx.Done()
		l.queue.ShutDown()
	}()
	var wg sync.WaitGroup
	wg.Go(func() { l.informer.RunWithContext(ctx) })
	for {
		key, quit := l.queue.Get()
		if quit {
			break
		}
		if err := l.sync(ctx, key); err != nil && ctx.Err() == nil {
			if l.queue.NumRequeues(key) >= 3 {
				l.logf("simcluster: load balancer for service %s: %v (retrying)", key, err)
			}
			l.queue.AddRateLimited(key)
		} else {
			l.queue.Forget(key)
		}
		l.queue.Done(key)
	}
	wg.Wait()
}

func (l *lbController) sync(ctx context.Context, key string) error {
	obj, exists, err := l.informer.GetIndexer().GetByKey(key)
	if err != nil {
		return err
	}
	if !exists {
		l.release(key)
		return nil
	}
	svc := obj.(*corev1.Service)
	if svc.Spec.LoadBalancerClass != nil {
		// Another controller's, as with a cloud's own.
		l.release(key)
		return nil
	}
	var want []corev1.LoadBalancerIngress
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		internal := svc.Annotations[InternalLoadBalancerAnnotation] == "true"
		ip, err := l.address(key, internal, svc.Spec.LoadBalancerIP)
		if err != nil {
			// Retrying would not help: wait for the Service to change.
			l.logf("simcluster: load balancer for service %s: %v", key, err)
			return nil
		}
		vip := corev1.LoadBalancerIPModeVIP
		want = []corev1.LoadBalancerIngress{{IP: ip, IPMode: &vip}}
	} else if !l.release(key) {
		// Not ours: leave its status alone.
		return nil
	}
	if ingressEqual(svc.Status.LoadBalancer.Ingress, want) {
		return nil
	}
	svc = svc.DeepCopy()
	svc.Status.LoadBalancer.Ingress = want
	_, err = l.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	// A conflict means a newer version is on its way to the informer, which
	// queues the Service again; retrying does no harm either.
	return err
}

func ingressEqual(got, want []corev1.LoadBalancerIngress) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i].IP != want[i].IP || got[i].Hostname != "" || len(got[i].Ports) != 0 {
			return false
		}
	}
	return true
}

// address returns the Service's address, handing out a new one when it has
// none yet or has moved between internal and public. A loopback
// spec.loadBalancerIP is honoured as is.
func (l *lbController) address(key string, internal bool, requested string) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if requested != "" {
		if ip := net.ParseIP(requested); ip == nil || !ip.IsLoopback() || ip.To4() == nil {
			return "", fmt.Errorf("spec.loadBalancerIP %q is not an IPv4 loopback address", requested)
		}
	}
	if a, ok := l.assigned[key]; ok {
		if a.internal == internal && (requested == "" || requested == a.ip) {
			return a.ip, nil
		}
		delete(l.used, a.ip)
		delete(l.assigned, key)
	}
	ip := requested
	if ip == "" {
		var err error
		if ip, err = l.allocate(internal); err != nil {
			return "", err
		}
	}
	l.assigned[key] = lbAddress{ip: ip, internal: internal}
	l.used[ip] = true
	return ip, nil
}

// allocate returns an unused address of the range; l.mu is held.
func (l *lbController) allocate(internal bool) (string, error) {
	r, second := 0, byte(100)
	if internal {
		r, second = 1, 101
	}
	for range 0xfffe {
		n := l.next[r]
		l.next[r]++
		if l.next[r] > 0xfffe {
			l.next[r] = 1
		}
		ip := net.IPv4(127, second, byte(n>>8), byte(n)).String()
		if !l.used[ip] && (l.bindable == nil || l.bindable(ip)) {
			return ip, nil
		}
	}
	return "", fmt.Errorf("no free address left in 127.%d.0.0/16", second)
}

// release forgets the Service's address and tells whether it had one.
func (l *lbController) release(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	a, ok := l.assigned[key]
	if ok {
		delete(l.used, a.ip)
		delete(l.assigned, key)
	}
	return ok
}
