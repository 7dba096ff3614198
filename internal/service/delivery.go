package service

// Model delivery into a cluster's replicas (docs/model-delivery.md).
//
// Each replica pod runs an init container (`berth model-init`, from Berth's
// image) that downloads the service's model versions from the control plane
// into an emptyDir shared with the model container. It authenticates with
// the pod's own projected service-account token: short-lived (10 minutes),
// bound to the pod, and meant for Berth alone (audience berth:<attachment>).
// The kubelet mints one for every pod, so pods the autoscaler starts hours
// after the deployment get a fresh token without the control plane issuing
// anything. The control plane checks the token with the cluster's
// TokenReview API and serves only the models of the service whose
// ServiceAccount the token belongs to.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/store"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreac "k8s.io/client-go/applyconfigurations/core/v1"
)

const (
	// ModelsPath is where replicas find their models: one folder per
	// version, ModelsPath/NAME/VERSION.
	ModelsPath = "/var/berth/models"
	// TokenPath holds the pod's delivery token (file "token").
	TokenPath = "/var/run/secrets/berth"
	// DeliveryTokenSeconds is the delivery token's lifetime (Kubernetes'
	// minimum; the kubelet renews it).
	DeliveryTokenSeconds = 600
	// InitContainerName is the init container that fetches models.
	InitContainerName = "berth-models"
)

// ServiceAccountName is the identity of a service's pods.
func ServiceAccountName(sv *store.Service) string { return "berth-svc-" + sv.Name }

// Audience is the audience of delivery tokens for a compute's cluster: a
// token the cluster minted for anything else is refused.
func Audience(c *store.Compute) string { return "berth:" + c.AttachmentID }

// DeliveryPath is the API path an init container downloads a model from.
func DeliveryPath(serviceID string) string { return "/api/v1/delivery/services/" + serviceID }

// checkDelivery reports a delivery mode the compute cannot honour.
func (m *Manager) checkDelivery(c *store.Compute, s *api.ServiceSpec) []api.ErrorDetail {
	switch {
	case c.Type == api.ComputeLocal && s.ModelDelivery == api.ModelDeliveryImage:
		return []api.ErrorDetail{problem.Detail(api.CodeInvalidValue, "modelDelivery", "the local compute hands models to its replicas itself; --model-delivery image needs a cluster")}
	case c.Type != api.ComputeLocal && s.ModelDelivery == api.ModelDeliveryFetch && m.PublicURL == "":
		return []api.ErrorDetail{problem.Detail(api.CodeModelDeliveryUnavailable, "modelDelivery",
			"replicas fetch their models from the control plane, but this server has no address pods can reach: start it with --public-url URL (or BERTH_PUBLIC_URL), or bake the models into the image and deploy with --model-delivery image")}
	}
	return nil
}

// modelDirs are the folders the model container finds its models in.
func modelDirs(sv *store.Service) []string {
	dirs := make([]string, 0, len(sv.Models))
	for _, ref := range sv.Models {
		if r, err := ParseModelRef(ref); err == nil {
			dirs = append(dirs, path.Join(ModelsPath, r.Name, fmt.Sprint(r.Version)))
		}
	}
	return dirs
}

// withDelivery adds the init container, volumes and mounts that bring the
// models into a replica pod.
func (m *Manager) withDelivery(c *store.Compute, sv *store.Service, pod *coreac.PodSpecApplyConfiguration, ctr *coreac.ContainerApplyConfiguration) {
	dirs := modelDirs(sv)
	ctr.WithVolumeMounts(coreac.VolumeMount().WithName("models").WithMountPath(ModelsPath).WithReadOnly(true)).
		WithEnv(coreac.EnvVar().WithName("BERTH_MODEL_DIRS").WithValue(strings.Join(dirs, ",")))
	if len(dirs) > 0 {
		ctr.WithEnv(coreac.EnvVar().WithName("BERTH_MODEL_DIR").WithValue(dirs[0]))
	}
	initCtr := coreac.Container().WithName(InitContainerName).WithImage(m.Image).
		WithCommand("berth", "model-init").
		WithEnv(
			coreac.EnvVar().WithName("BERTH_MODEL_SOURCE").WithValue(strings.TrimRight(m.PublicURL, "/")+DeliveryPath(sv.ID)),
			coreac.EnvVar().WithName("BERTH_MODELS").WithValue(strings.Join(sv.Models, ",")),
			coreac.EnvVar().WithName("BERTH_TOKEN_FILE").WithValue(path.Join(TokenPath, "token")),
			coreac.EnvVar().WithName("BERTH_MODELS_PATH").WithValue(ModelsPath),
		).
		WithVolumeMounts(
			coreac.VolumeMount().WithName("models").WithMountPath(ModelsPath),
			coreac.VolumeMount().WithName("berth-token").WithMountPath(TokenPath).WithReadOnly(true),
		)
	pod.WithInitContainers(initCtr).WithVolumes(
		coreac.Volume().WithName("models").WithEmptyDir(coreac.EmptyDirVolumeSource()),
		coreac.Volume().WithName("berth-token").WithProjected(coreac.ProjectedVolumeSource().WithSources(
			coreac.VolumeProjection().WithServiceAccountToken(coreac.ServiceAccountTokenProjection().
				WithAudience(Audience(c)).WithExpirationSeconds(DeliveryTokenSeconds).WithPath("token")))),
	)
}

// AuthorizeDelivery checks a replica's delivery token and returns the
// model version it may download. Only the models of the token's service
// (as deployed, or as its running update wants them) are served.
func (m *Manager) AuthorizeDelivery(ctx context.Context, serviceID, token, model string, version int) (*store.Model, error) {
	if token == "" {
		return nil, problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "model delivery needs the pod's service-account token (Authorization: Bearer <token>)")
	}
	sv, err := m.Store.GetServiceByID(ctx, serviceID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.NotFound("no service has id %s (was it deleted?)", serviceID)
	} else if err != nil {
		return nil, err
	}
	c, err := m.Store.GetComputeByID(ctx, sv.ComputeID)
	if err != nil {
		return nil, err
	}
	if c.Type == api.ComputeLocal {
		return nil, problem.New(http.StatusBadRequest, api.CodeNotAClusterService, "service %s runs on the local compute, which delivers its models itself", sv.Name)
	}
	cl, err := connect(c)
	if err != nil {
		return nil, err
	}
	tr, err := cl.Client.AuthenticationV1().TokenReviews().Create(ctx, &authv1.TokenReview{
		Spec: authv1.TokenReviewSpec{Token: token, Audiences: []string{Audience(c)}}}, metav1.CreateOptions{})
	if err != nil {
		return nil, problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the token could not be checked with cluster %s: %v", c.Name, cl.Explain(err))
	}
	if !tr.Status.Authenticated {
		reason := tr.Status.Error
		if reason == "" {
			reason = "not authenticated"
		}
		return nil, problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "cluster %s did not accept the token for audience %s: %s", c.Name, Audience(c), reason)
	}
	want := "system:serviceaccount:" + sv.Namespace + ":" + ServiceAccountName(sv)
	if tr.Status.User.Username != want {
		return nil, problem.Forbidden("the token belongs to %s, not to the pods of service %s (%s)", tr.Status.User.Username, sv.Name, want)
	}
	ref := fmt.Sprintf("%s:%d", model, version)
	if !slices.Contains(m.deliverable(ctx, sv), ref) {
		return nil, problem.Forbidden("service %s does not use model %s", sv.Name, ref)
	}
	md, err := m.Store.GetModel(ctx, sv.WorkspaceID, model, version)
	if errors.Is(err, store.ErrNotFound) {
		return nil, problem.NotFound("model %s is no longer registered", ref)
	}
	return md, err
}

// deliverable are the model versions a service's pods may fetch: those
// deployed and those of an update being rolled out.
func (m *Manager) deliverable(ctx context.Context, sv *store.Service) []string {
	refs := append([]string{}, sv.Models...)
	if sv.CurrentOperation == "" {
		return refs
	}
	op, err := m.Store.GetOperation(ctx, sv.CurrentOperation)
	if err != nil || op.Kind != api.OpUpdate {
		return refs
	}
	var spec api.ServiceSpec
	if json.Unmarshal(op.Params, &spec) == nil {
		refs = append(refs, spec.Models...)
	}
	return refs
}
