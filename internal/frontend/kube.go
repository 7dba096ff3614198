package frontend

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// Watcher feeds a Frontend from the cluster: route ConfigMaps, the pods
// of services (Ready + pod IP), the TLS Secret, and the front end's own
// pods (its peers, for subsetting).
type Watcher struct {
	Client    kubernetes.Interface
	Frontend  *Frontend
	Namespace string // the front end's namespace (berth-system)
	TLSSecret string // default berth-fe-tls
	// Self is this front end's pod name ("" outside a cluster: no peers).
	Self string
	// PeerSelector selects the front end's pods (default app.kubernetes.io/name=berth-fe).
	PeerSelector string
	// PeerPort is where peers serve scoring (default 8080).
	PeerPort int

	pods, peers corelisters.PodLister
	routes      corelisters.ConfigMapLister
	kick        chan struct{}
}

// ServiceLabel is on every pod of a scoring service.
const ServiceLabel = "berth.dev/service"

// Run watches until ctx ends; the front end is ready once the caches sync.
func (w *Watcher) Run(ctx context.Context) error {
	w.TLSSecret = cmp.Or(w.TLSSecret, "berth-fe-tls")
	w.PeerSelector = cmp.Or(w.PeerSelector, "app.kubernetes.io/name=berth-fe")
	w.PeerPort = cmp.Or(w.PeerPort, 8080)
	w.kick = make(chan struct{}, 1)
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { w.poke() },
		UpdateFunc: func(any, any) { w.poke() },
		DeleteFunc: func(any) { w.poke() },
	}
	routes := informers.NewSharedInformerFactoryWithOptions(w.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = RouteLabel + "=true" }))
	pods := informers.NewSharedInformerFactoryWithOptions(w.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = ServiceLabel }))
	local := informers.NewSharedInformerFactoryWithOptions(w.Client, 0, informers.WithNamespace(w.Namespace))

	ri := routes.Core().V1().ConfigMaps()
	pi := pods.Core().V1().Pods()
	peerInf := local.Core().V1().Pods()
	secInf := local.Core().V1().Secrets()
	acmeInf := local.Core().V1().ConfigMaps()
	acmeInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.challenges(o, false) },
		UpdateFunc: func(_, o any) { w.challenges(o, false) },
		DeleteFunc: func(o any) { w.challenges(o, true) },
	})
	ri.Informer().AddEventHandler(kick)
	pi.Informer().AddEventHandler(kick)
	peerInf.Informer().AddEventHandler(kick)
	secInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { w.secret(o) },
		UpdateFunc: func(_, o any) { w.secret(o) },
		DeleteFunc: func(o any) {
			if s, ok := o.(*corev1.Secret); ok && s.Name == w.TLSSecret {
				w.Frontend.SetCertificate(nil, nil)
			}
		},
	})
	w.routes, w.pods, w.peers = ri.Lister(), pi.Lister(), peerInf.Lister()
	routes.Start(ctx.Done())
	pods.Start(ctx.Done())
	local.Start(ctx.Done())
	for _, ok := range []bool{
		cache.WaitForCacheSync(ctx.Done(), ri.Informer().HasSynced, pi.Informer().HasSynced),
		cache.WaitForCacheSync(ctx.Done(), peerInf.Informer().HasSynced, secInf.Informer().HasSynced, acmeInf.Informer().HasSynced),
	} {
		if !ok {
			return fmt.Errorf("watching the cluster: %w", ctx.Err())
		}
	}
	w.sync()
	w.Frontend.SetReady(true)
	defer w.Frontend.SetReady(false)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
		}
		w.sync()
	}
}

func (w *Watcher) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *Watcher) secret(o any) {
	s, ok := o.(*corev1.Secret)
	if !ok || s.Name != w.TLSSecret {
		return
	}
	if err := w.Frontend.SetCertificate(s.Data["cert.pem"], s.Data["key.pem"]); err != nil {
		w.Frontend.log.Error("the TLS Secret holds no usable certificate; keeping the previous one", "secret", s.Name, "err", err)
		return
	}
	w.Frontend.log.Info("serving the TLS certificate from the Secret", "secret", s.Name, "resourceVersion", s.ResourceVersion)
}

// ACMEChallenges is the ConfigMap of pending HTTP-01 answers the control
// plane writes while it obtains a certificate.
const ACMEChallenges = "berth-fe-acme"

func (w *Watcher) challenges(o any, deleted bool) {
	if t, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	cm, ok := o.(*corev1.ConfigMap)
	if !ok || cm.Name != ACMEChallenges {
		return
	}
	if deleted {
		w.Frontend.SetACMEChallenges(nil)
		return
	}
	w.Frontend.SetACMEChallenges(cm.Data)
}

func podReady(p *corev1.Pod) bool {
	if p.DeletionTimestamp != nil || p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// sync recomputes every service's routes and replicas.
func (w *Watcher) sync() {
	cms, err := w.routes.List(labels.Everything())
	if err != nil {
		return
	}
	peers, self := w.peerList()
	w.Frontend.SetPeers(peers)
	seen, endpoints := map[string]bool{}, map[string]bool{}
	for _, cm := range cms {
		if data, ok := cm.Data[EndpointKey]; ok {
			if e, err := ParseEndpointRoute([]byte(data)); err != nil {
				w.Frontend.log.Error("ignoring an endpoint route", "configmap", cm.Namespace+"/"+cm.Name, "err", err)
			} else {
				endpoints[e.Endpoint] = true
				w.Frontend.SetEndpoint(e)
			}
			continue
		}
		rt, err := ParseRoute([]byte(cm.Data[RouteKey]))
		if err != nil {
			w.Frontend.log.Error("ignoring a route", "configmap", cm.Namespace+"/"+cm.Name, "err", err)
			continue
		}
		rt.Namespace = cmp.Or(rt.Namespace, cm.Namespace)
		seen[rt.Service] = true
		w.Frontend.SetRoute(rt)
		pods, err := w.pods.Pods(rt.Namespace).List(labels.SelectorFromSet(rt.Selector))
		if err != nil {
			continue
		}
		var reps []Replica
		for _, p := range pods {
			if podReady(p) {
				reps = append(reps, Replica{Name: p.Name, Addr: net.JoinHostPort(p.Status.PodIP, strconv.Itoa(rt.Port))})
			}
		}
		a := Subset(reps, rt.MaxConcurrentRequestsPerContainer, len(peers), self)
		forward := ""
		if a.Forward >= 0 && a.Forward < len(peers) {
			forward = peers[a.Forward]
		}
		w.Frontend.SetReplicas(rt.Service, a.Replicas, forward)
	}
	for _, rt := range w.Frontend.Services() {
		if !seen[rt.Service] {
			w.Frontend.DeleteRoute(rt.Service)
		}
	}
	for _, e := range w.Frontend.Endpoints() {
		if !endpoints[e.Endpoint] {
			w.Frontend.DeleteEndpoint(e.Endpoint)
		}
	}
}

// peerList is the ready front ends' addresses sorted by pod name, and this
// one's index (-1 when it is not among them: it then uses every replica).
func (w *Watcher) peerList() ([]string, int) {
	if w.Self == "" {
		return nil, -1
	}
	sel, err := labels.Parse(w.PeerSelector)
	if err != nil {
		return nil, -1
	}
	pods, err := w.peers.Pods(w.Namespace).List(sel)
	if err != nil {
		return nil, -1
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].Name < pods[j].Name })
	var addrs []string
	self := -1
	for _, p := range pods {
		if !podReady(p) && p.Name != w.Self {
			continue
		}
		if p.Name == w.Self {
			self = len(addrs)
		}
		addrs = append(addrs, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(w.PeerPort)))
	}
	if self < 0 {
		return nil, -1
	}
	return addrs, self
}

// PeerAdmins are the other ready front ends' admin addresses.
func (w *Watcher) PeerAdmins(port int) []string {
	if w.peers == nil || w.Self == "" {
		return nil
	}
	sel, err := labels.Parse(w.PeerSelector)
	if err != nil {
		return nil
	}
	pods, _ := w.peers.Pods(w.Namespace).List(sel)
	var out []string
	for _, p := range pods {
		if p.Name != w.Self && podReady(p) {
			out = append(out, net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port)))
		}
	}
	return out
}
