package simcluster

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
)

// lbForwarder is the data path of the fake load balancers in a cluster
// whose pods run (Options.Containers): for each port of each Service of
// type LoadBalancer it listens on the Service's ingress address and
// forwards every TCP connection to a Ready pod of the Service, on the
// port's target port, as a cloud load balancer and kube-proxy would.
type lbForwarder struct {
	client kubernetes.Interface
	lb     *lbController
	logf   func(format string, args ...any)

	mu        sync.Mutex
	listeners map[string]net.Listener // ip:port → listener
	next      int
}

func (f *lbForwarder) run(ctx context.Context) {
	defer f.closeAll()
	for ctx.Err() == nil {
		f.sync(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func (f *lbForwarder) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, l := range f.listeners {
		l.Close()
		delete(f.listeners, k)
	}
}

// sync opens a listener for every Service port with an ingress address and
// closes those of ports that are gone.
func (f *lbForwarder) sync(ctx context.Context) {
	want := map[string]*corev1.Service{}
	ports := map[string]corev1.ServicePort{}
	for _, obj := range f.lb.informer.GetStore().List() {
		svc := obj.(*corev1.Service)
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP == "" {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
					continue
				}
				key := net.JoinHostPort(ing.IP, strconv.Itoa(int(p.Port)))
				want[key], ports[key] = svc, p
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listeners == nil {
		f.listeners = map[string]net.Listener{}
	}
	for key, l := range f.listeners {
		if want[key] == nil {
			l.Close()
			delete(f.listeners, key)
		}
	}
	for key, svc := range want {
		if f.listeners[key] != nil {
			continue
		}
		l, err := net.Listen("tcp", key)
		if err != nil {
			f.logf("simcluster: load balancer of service %s/%s cannot listen on %s: %v", svc.Namespace, svc.Name, key, err)
			continue
		}
		f.listeners[key] = l
		go f.serve(ctx, l, svc.Namespace, svc.Name, ports[key].Port)
	}
}

func (f *lbForwarder) serve(ctx context.Context, l net.Listener, ns, name string, port int32) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			target, err := f.backend(ctx, ns, name, port)
			if err != nil {
				f.logf("simcluster: load balancer of service %s/%s: %v", ns, name, err)
				return
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				f.logf("simcluster: load balancer of service %s/%s: %v", ns, name, err)
				return
			}
			defer up.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				io.Copy(dst, src)
				if tc, ok := dst.(*net.TCPConn); ok {
					tc.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(up, conn)
			go pipe(conn, up)
			<-done
			<-done
		}()
	}
}

// backend picks a Ready pod of the Service (at random, as kube-proxy does)
// and returns its address for the Service's port.
func (f *lbForwarder) backend(ctx context.Context, ns, name string, port int32) (string, error) {
	svc, err := f.client.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil || len(svc.Spec.Selector) == 0 {
		return "", fmt.Errorf("no port %d or no selector", port)
	}
	pods, err := f.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(svc.Spec.Selector).String()})
	if err != nil {
		return "", err
	}
	var ready []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !isReady(&p) {
			continue
		}
		target := int(sp.TargetPort.IntValue())
		if sp.TargetPort.StrVal != "" {
			target = 0
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.Name == sp.TargetPort.StrVal {
						target = int(cp.ContainerPort)
					}
				}
			}
		}
		if target == 0 {
			target = int(sp.Port)
		}
		ready = append(ready, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(target)))
	}
	if len(ready) == 0 {
		return "", fmt.Errorf("no Ready pod for port %d", port)
	}
	return ready[rand.IntN(len(ready))], nil
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// bindable tells whether this machine can listen on the address's ports
// 80 and 443 (nothing else does).
func bindable(ip string) bool {
	for _, port := range []string{"80", "443"} {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
