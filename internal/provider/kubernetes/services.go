package kubernetes

// Services on a cluster: a Deployment per service (with its
// ServiceAccount, and its namespace when Berth makes it) and a route
// ConfigMap the cluster's front end watches. Model delivery is in
// delivery.go.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/frontend"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/kubeconn"
	"github.com/berth-ml/berth/internal/operation"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/provider"
	"github.com/berth-ml/berth/internal/store"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsac "k8s.io/client-go/applyconfigurations/apps/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
	metaac "k8s.io/client-go/applyconfigurations/meta/v1"
)

// CheckService: a cluster's replicas fetch their models from the control
// plane unless they are baked into the image, so fetching needs an address
// pods can reach.
func (p *Provider) CheckService(_ *store.Compute, s *api.ServiceSpec) []api.ErrorDetail {
	out := provider.CheckReplicas(s, MaxServiceReplicas, "a cluster")
	if s.ModelDelivery == api.ModelDeliveryFetch && p.PublicURL == "" {
		out = append(out, problem.Detail(api.CodeModelDeliveryUnavailable, "modelDelivery",
			"replicas fetch their models from the control plane, but this server has no address pods can reach: start it with --public-url URL (or BERTH_PUBLIC_URL), or bake the models into the image and deploy with `modelDelivery` image"))
	}
	return out
}

// MaxServiceReplicas bounds a service's replicas on a cluster: far above
// what one scoring service needs, low enough that a typo (100000) is
// refused instead of scheduled.
const MaxServiceReplicas = 500

// ServiceSteps: deploy and update apply the objects and wait for the
// replicas; delete removes what Berth made for the service.
func (p *Provider) ServiceSteps(kind api.OperationKind) []provider.ServiceStep {
	switch kind {
	case api.OpDeploy, api.OpUpdate:
		return []provider.ServiceStep{{Name: "apply", Run: p.applyService}, {Name: "wait for replicas", Run: p.waitService}}
	case api.OpDelete:
		return []provider.ServiceStep{{Name: "remove", Run: removeService}}
	}
	return nil
}

// serviceLabels are a service's objects' labels: Berth's, its compute's
// attachment and its name.
func serviceLabels(c *store.Compute, sv *store.Service) map[string]string {
	return map[string]string{
		installer.LabelManagedBy:  "berth",
		installer.LabelAttachment: c.AttachmentID,
		installer.LabelComponent:  "service",
		frontend.ServiceLabel:     sv.Name,
	}
}

func routeName(sv *store.Service) string { return "berth-route-" + sv.Name }

// PublishRoute writes the service's route ConfigMap, which the cluster's
// front ends watch.
func (p *Provider) PublishRoute(ctx context.Context, c *store.Compute, sv *store.Service, rt *frontend.Route) error {
	cl, err := connect(c)
	if err != nil {
		return err
	}
	return applyRoute(ctx, cl, c, sv, rt)
}

func applyRoute(ctx context.Context, cl *kubeconn.Cluster, c *store.Compute, sv *store.Service, rt *frontend.Route) error {
	data, _ := json.Marshal(rt)
	l := serviceLabels(c, sv)
	l[frontend.RouteLabel] = "true"
	in := &installer.Installer{Cluster: cl}
	_, err := in.Apply(ctx, []installer.Object{{Kind: installer.KindConfigMap, Name: routeName(sv), Namespace: sv.Namespace,
		Apply: coreac.ConfigMap(routeName(sv), sv.Namespace).WithLabels(l).WithData(map[string]string{frontend.RouteKey: string(data)})}}, false)
	return err
}

// PublishEndpoint writes (or, for nil, removes) the endpoint's route
// ConfigMap in the front end's namespace, which the front ends watch.
func (p *Provider) PublishEndpoint(ctx context.Context, c *store.Compute, name string, rt *frontend.EndpointRoute) error {
	cl, err := connect(c)
	if err != nil {
		return err
	}
	cm := "berth-endpoint-" + name
	if rt == nil {
		err := cl.Client.CoreV1().ConfigMaps(installer.Namespace).Delete(ctx, cm, metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	data, _ := json.Marshal(rt)
	l := map[string]string{installer.LabelManagedBy: "berth", installer.LabelAttachment: c.AttachmentID,
		installer.LabelComponent: "endpoint", frontend.RouteLabel: "true"}
	in := &installer.Installer{Cluster: cl}
	_, err = in.Apply(ctx, []installer.Object{{Kind: installer.KindConfigMap, Name: cm, Namespace: installer.Namespace,
		Apply: coreac.ConfigMap(cm, installer.Namespace).WithLabels(l).WithData(map[string]string{frontend.EndpointKey: string(data)})}}, false)
	return err
}

func quantity(v float64, unit string) resource.Quantity {
	if unit == "cpu" {
		return *resource.NewMilliQuantity(int64(v*1000+0.5), resource.DecimalSI)
	}
	return *resource.NewQuantity(int64(v*(1<<30)+0.5), resource.BinarySI)
}

func probe(pr *api.Probe, path string) *coreac.ProbeApplyConfiguration {
	return coreac.Probe().WithHTTPGet(coreac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("http"))).
		WithInitialDelaySeconds(int32(pr.InitialDelaySeconds)).WithPeriodSeconds(int32(pr.PeriodSeconds)).
		WithTimeoutSeconds(int32(pr.TimeoutSeconds)).WithSuccessThreshold(int32(pr.SuccessThreshold)).WithFailureThreshold(int32(pr.FailureThreshold))
}

// deployment is a service's Deployment.
func (p *Provider) deployment(c *store.Compute, sv *store.Service, replicas int32) installer.Object {
	l := serviceLabels(c, sv)
	req := corev1.ResourceList{corev1.ResourceCPU: quantity(sv.CPU, "cpu"), corev1.ResourceMemory: quantity(sv.MemoryGB, "mem")}
	lim := corev1.ResourceList{}
	if sv.CPULimit > 0 {
		lim[corev1.ResourceCPU] = quantity(sv.CPULimit, "cpu")
	}
	if sv.MemoryLimitGB > 0 {
		lim[corev1.ResourceMemory] = quantity(sv.MemoryLimitGB, "mem")
	}
	if sv.GPU > 0 {
		g := *resource.NewQuantity(int64(sv.GPU), resource.DecimalSI)
		req["nvidia.com/gpu"], lim["nvidia.com/gpu"] = g, g
	}
	res := coreac.ResourceRequirements().WithRequests(req)
	if len(lim) > 0 {
		res.WithLimits(lim)
	}
	// --command services run Berth's image (it has `berth model-server`).
	image, args := sv.Image, []string(nil)
	if image == "" {
		image, args = p.Image, sv.Command
	}
	env := []*coreac.EnvVarApplyConfiguration{
		coreac.EnvVar().WithName("BERTH_SERVICE").WithValue(sv.Name),
		coreac.EnvVar().WithName("BERTH_MODELS").WithValue(strings.Join(sv.Models, ",")),
		coreac.EnvVar().WithName("PORT").WithValue(strconv.Itoa(sv.Port)),
	}
	for k, v := range sv.Env {
		env = append(env, coreac.EnvVar().WithName(k).WithValue(v))
	}
	ctr := coreac.Container().WithName(ModelContainerName).WithImage(image).WithEnv(env...).
		// A kubelet puts the last lines of a container that failed in
		// its status: the deploy reports them even without pods/log.
		WithTerminationMessagePolicy(corev1.TerminationMessageFallbackToLogsOnError).
		WithPorts(coreac.ContainerPort().WithName("http").WithContainerPort(int32(sv.Port))).
		WithResources(res).
		WithLivenessProbe(probe(sv.Liveness, "/healthz")).WithReadinessProbe(probe(sv.Readiness, "/readyz"))
	if len(args) > 0 {
		ctr.WithCommand(args...)
	}
	pod := coreac.PodSpec().WithServiceAccountName(ServiceAccountName(sv)).WithAutomountServiceAccountToken(false)
	if sv.ModelDelivery != api.ModelDeliveryImage {
		p.withDelivery(c, sv, pod, ctr)
	}
	return installer.Object{Kind: installer.KindDeployment, Name: sv.Name, Namespace: sv.Namespace,
		Apply: appsac.Deployment(sv.Name, sv.Namespace).WithLabels(l).WithSpec(appsac.DeploymentSpec().
			WithReplicas(replicas).
			// Rolling updates never take a serving replica away first.
			WithStrategy(appsac.DeploymentStrategy().WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(appsac.RollingUpdateDeployment().WithMaxUnavailable(intstr.FromInt32(0)).WithMaxSurge(intstr.FromInt32(1)))).
			WithSelector(metaac.LabelSelector().WithMatchLabels(map[string]string{frontend.ServiceLabel: sv.Name})).
			WithTemplate(coreac.PodTemplateSpec().WithLabels(l).WithSpec(pod.WithContainers(ctr))))}
}

// serviceCluster connects to a service's cluster (once per attempt); a
// compute whose credentials do not work fails the operation.
func serviceCluster(r *operation.Run, c *store.Compute) (*kubeconn.Cluster, error) {
	cl, err := cluster(r, c)
	if err != nil {
		return nil, operation.Fail(api.CodeInvalidKubeconfig, err.Error())
	}
	return cl, nil
}

func (p *Provider) applyService(ctx context.Context, r *operation.Run, t *provider.ServiceTarget) error {
	sv, c := t.Service, t.Compute
	cl, err := serviceCluster(r, c)
	if err != nil {
		return err
	}
	in := &installer.Installer{Cluster: cl, Progress: r.Event}
	if _, err := cl.Client.CoreV1().Namespaces().Get(ctx, sv.Namespace, metav1.GetOptions{}); err != nil {
		l := serviceLabels(c, sv)
		delete(l, frontend.ServiceLabel)
		if _, err := in.Apply(ctx, []installer.Object{{Kind: installer.KindNamespace, Name: sv.Namespace,
			Apply: coreac.Namespace(sv.Namespace).WithLabels(l)}}, false); err != nil {
			return operation.Fail(api.CodeDeployFailed, err.Error())
		}
		r.Event("Created namespace %s", sv.Namespace)
	}
	replicas := int32(sv.Replicas)
	if sv.Autoscale != nil && sv.Autoscale.Enabled {
		replicas = int32(sv.Autoscale.MinReplicas)
		// Keep what the autoscaler decided.
		if d, err := cl.Client.AppsV1().Deployments(sv.Namespace).Get(ctx, sv.Name, metav1.GetOptions{}); err == nil && d.Spec.Replicas != nil {
			replicas = max(replicas, min(*d.Spec.Replicas, int32(sv.Autoscale.MaxReplicas)))
		}
		// A service that scales to zero starts one replica, which the
		// operation waits for; the autoscaler stops it once idle.
		replicas = max(replicas, 1)
	}
	sa := installer.Object{Kind: installer.KindServiceAccount, Name: ServiceAccountName(sv), Namespace: sv.Namespace,
		Apply: coreac.ServiceAccount(ServiceAccountName(sv), sv.Namespace).WithLabels(serviceLabels(c, sv)).WithAutomountServiceAccountToken(false)}
	if _, err := in.Apply(ctx, []installer.Object{sa, p.deployment(c, sv, replicas)}, false); err != nil {
		return operation.Fail(api.CodeDeployFailed, err.Error())
	}
	if err := applyRoute(ctx, cl, c, sv, t.Route); err != nil {
		return operation.Fail(api.CodeDeployFailed, err.Error())
	}
	r.Event("Applied Deployment %s/%s (%d replica(s), models %s) and its route", sv.Namespace, sv.Name, replicas, strings.Join(sv.Models, ", "))
	return nil
}

func (p *Provider) waitService(ctx context.Context, r *operation.Run, t *provider.ServiceTarget) error {
	sv, c := t.Service, t.Compute
	cl, err := serviceCluster(r, c)
	if err != nil {
		return err
	}
	timeout := p.readyTimeout()
	deadline := time.Now().Add(timeout)
	last := int32(-1)
	seen := map[string]int32{} // restarts reported, by pod
	for {
		d, err := cl.Client.AppsV1().Deployments(sv.Namespace).Get(ctx, sv.Name, metav1.GetOptions{})
		if err != nil {
			return cl.Explain(err)
		}
		if d.Status.ReadyReplicas != last {
			r.Event("Replicas ready: %d of %d", d.Status.ReadyReplicas, *d.Spec.Replicas)
			last = d.Status.ReadyReplicas
		}
		if d.Status.ReadyReplicas >= 1 && d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas >= *d.Spec.Replicas &&
			d.Status.Replicas == d.Status.UpdatedReplicas {
			sv.ReadyReplicas = int(d.Status.ReadyReplicas)
			sv.ScoringURI, sv.SwaggerURI = scoringURIs(c, sv)
			return r.Store.UpdateService(ctx, sv)
		}
		if err := modelsRefused(ctx, cl, sv); err != nil {
			return err
		}
		if err := replicasFailing(ctx, cl, sv, seen, r.Warn); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return operation.Fail(api.CodeReplicasNotReady, fmt.Sprintf("no replica of %s became ready within %s (check `berth service logs -n %s`)", sv.Name, timeout, sv.Name))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// modelsRefused fails the operation when a replica's model-init container
// ended in error: it retries what may pass by itself (the control plane
// restarting) and exits only on what will not (an artifact refused, a
// token the cluster does not accept), so waiting longer cannot help. The
// failure carries the container's last lines.
func modelsRefused(ctx context.Context, cl *kubeconn.Cluster, sv *store.Service) error {
	pods, err := cl.Client.CoreV1().Pods(sv.Namespace).List(ctx, metav1.ListOptions{LabelSelector: frontend.ServiceLabel + "=" + sv.Name})
	if err != nil {
		return nil // the Deployment's answer decides; a list that fails is tried again
	}
	for _, pod := range pods.Items {
		for _, st := range pod.Status.InitContainerStatuses {
			term := cmp.Or(st.State.Terminated, st.LastTerminationState.Terminated)
			if st.Name != InitContainerName || term == nil || term.ExitCode == 0 {
				continue
			}
			n := int64(20)
			logs, _ := cl.Client.CoreV1().Pods(sv.Namespace).GetLogs(pod.Name, &corev1.PodLogOptions{Container: InitContainerName, TailLines: &n}).DoRaw(ctx)
			return operation.Fail(api.CodeModelUnpackFailed, fmt.Sprintf("replica %s could not get its models (%s exited with code %d): %s",
				pod.Name, InitContainerName, term.ExitCode, strings.TrimSpace(string(logs))))
		}
	}
	return nil
}

// ModelContainerName is the container of a service's pods that runs its
// model server.
const ModelContainerName = "model"

// imagePullFailures are the waiting reasons of a container whose image
// cannot be had: the kubelet only tries again, and so would waiting.
var imagePullFailures = map[string]bool{"ImagePullBackOff": true, "ErrImageNeverPull": true, "InvalidImageName": true}

// replicasFailing records each new exit of a replica's model server as an
// event (its exit code and last lines), and fails the operation on what
// waiting will not fix: a server that exited provider.CrashLoopExits times
// (CrashLoopBackOff), one killed for using more memory than its limit
// (OOMKilled), an image the cluster cannot pull.
func replicasFailing(ctx context.Context, cl *kubeconn.Cluster, sv *store.Service, seen map[string]int32, warn func(format string, args ...any)) error {
	pods, err := cl.Client.CoreV1().Pods(sv.Namespace).List(ctx, metav1.ListOptions{LabelSelector: frontend.ServiceLabel + "=" + sv.Name})
	if err != nil {
		return nil // the Deployment's answer decides; a list that fails is tried again
	}
	for _, pod := range pods.Items {
		for _, st := range pod.Status.ContainerStatuses {
			if st.Name != ModelContainerName {
				continue
			}
			if w := st.State.Waiting; w != nil && imagePullFailures[w.Reason] {
				return operation.Fail(api.CodeImagePullFailed, fmt.Sprintf("replica %s cannot get its image %s (%s): %s", pod.Name, st.Image, w.Reason, w.Message))
			}
			term := st.LastTerminationState.Terminated
			if term == nil || st.RestartCount <= seen[pod.Name] {
				continue
			}
			seen[pod.Name] = st.RestartCount
			how := fmt.Sprintf("exit code %d", term.ExitCode)
			if term.Reason != "" && term.Reason != "Error" {
				how += ", " + term.Reason
			}
			lines := lastLines(ctx, cl, sv, pod.Name, term)
			warn("Replica %s exited (%s); its last lines:\n%s", pod.Name, how, lines)
			switch {
			case term.Reason == "OOMKilled":
				return operation.Fail(api.CodeReplicaCrashLoop, fmt.Sprintf("replica %s of %s was killed for using more memory than its limit (%s): raise it with --memory-limit; its last lines:\n%s",
					pod.Name, sv.Name, how, lines))
			case st.RestartCount >= provider.CrashLoopExits && st.State.Waiting != nil && st.State.Waiting.Reason == "CrashLoopBackOff":
				return operation.Fail(api.CodeReplicaCrashLoop, fmt.Sprintf("replica %s of %s exited %d times (CrashLoopBackOff; last: %s); its last lines:\n%s",
					pod.Name, sv.Name, st.RestartCount, how, lines))
			}
		}
	}
	return nil
}

// lastLines are the last lines a pod's model server printed before it
// exited: its previous container's log, or else what the kubelet kept of
// it in its status (FallbackToLogsOnError).
func lastLines(ctx context.Context, cl *kubeconn.Cluster, sv *store.Service, pod string, term *corev1.ContainerStateTerminated) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n := int64(provider.CrashLines)
	raw, err := cl.Client.CoreV1().Pods(sv.Namespace).GetLogs(pod, &corev1.PodLogOptions{Container: ModelContainerName, Previous: true, TailLines: &n}).DoRaw(ctx)
	text := strings.TrimRight(string(raw), "\n")
	if err != nil || text == "" {
		lines := strings.Split(strings.TrimRight(term.Message, "\n"), "\n")
		text = strings.Join(lines[max(0, len(lines)-provider.CrashLines):], "\n")
	}
	return text
}

// scoringURIs are the scoring and swagger URIs through the compute's front end.
func scoringURIs(c *store.Compute, sv *store.Service) (string, string) {
	base := scoringBase(c) + "/api/v1/service/" + sv.Name
	return base + "/score", base + "/swagger.json"
}

// ScoringBase: the front end's TLS name when it has a certificate, else
// the cloud's DNS name for its address, else the address.
func (*Provider) ScoringBase(c *store.Compute) string { return scoringBase(c) }

func scoringBase(c *store.Compute) string {
	scheme, host := "http", c.Endpoint
	if fqdn := StatusOf(c).FQDN; fqdn != "" {
		host = fqdn // a cloud's DNS name for the public IP (AKS)
	}
	switch c.SSLConfiguration.Status {
	case api.SSLEnabled:
		scheme, host = "https", c.SSLConfiguration.Cname
	case api.SSLAuto:
		scheme, host = "https", c.SSLConfiguration.FQDN
	}
	return scheme + "://" + host
}

func removeService(ctx context.Context, r *operation.Run, t *provider.ServiceTarget) error {
	sv, c := t.Service, t.Compute
	cl, err := serviceCluster(r, c)
	if err != nil {
		return err
	}
	in := &installer.Installer{Cluster: cl, Progress: r.Event}
	sel := installer.ManagedSelector + "," + installer.LabelAttachment + "=" + c.AttachmentID + "," + frontend.ServiceLabel + "=" + sv.Name
	if err := in.Remove(ctx, sel, nil); err != nil {
		return err
	}
	r.Event("Removed the service's objects from the cluster")
	return nil
}

// ServiceLogs writes the last lines of the service's pods' logs (of their
// previous containers with Previous) and, to follow them, what they print
// next until ctx ends.
func (p *Provider) ServiceLogs(ctx context.Context, c *store.Compute, sv *store.Service, o provider.LogOptions, w io.Writer) error {
	cl, err := connect(c)
	if err != nil {
		return err
	}
	pods, err := cl.Client.CoreV1().Pods(sv.Namespace).List(ctx, metav1.ListOptions{LabelSelector: frontend.ServiceLabel + "=" + sv.Name})
	if err != nil {
		return problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "%v", cl.Explain(err))
	}
	var names []string
	for _, pod := range pods.Items {
		if o.Replica == "" || pod.Name == o.Replica {
			names = append(names, pod.Name)
		}
	}
	if len(names) == 0 {
		return problem.NotFound("service %s has no replica%s", sv.Name, map[bool]string{true: " " + o.Replica}[o.Replica != ""])
	}
	lw := &provider.LogWriter{W: w}
	n := int64(o.Tail)
	var wg sync.WaitGroup
	for _, name := range names {
		opts := &corev1.PodLogOptions{Container: ModelContainerName, TailLines: &n, Previous: o.Previous, Follow: o.Follow}
		if !o.Follow {
			raw, err := cl.Client.CoreV1().Pods(sv.Namespace).GetLogs(name, opts).DoRaw(ctx)
			if err != nil {
				raw = []byte(fmt.Sprintf("(no logs: %v)\n", cl.Explain(err)))
			}
			if err := lw.Write(name, string(raw)); err != nil {
				return err
			}
			continue
		}
		wg.Go(func() {
			rc, err := cl.Client.CoreV1().Pods(sv.Namespace).GetLogs(name, opts).Stream(ctx)
			if err != nil {
				lw.Write(name, fmt.Sprintf("(no logs: %v)\n", cl.Explain(err)))
				return
			}
			defer rc.Close()
			sc := bufio.NewScanner(rc)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if lw.Write(name, sc.Text()+"\n") != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return nil
}
