package kubernetes

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
// TokenReview API (ReviewDeliveryToken); the service life cycle then serves
// only the models of the service whose ServiceAccount the token belongs to.

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"path"
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

// modelDirs are the folders the model container finds its models in.
func modelDirs(sv *store.Service) []string {
	dirs := make([]string, 0, len(sv.Models))
	for _, ref := range sv.Models {
		if r, err := api.ParseModelRef(ref); err == nil {
			dirs = append(dirs, path.Join(ModelsPath, r.Name, fmt.Sprint(r.Version)))
		}
	}
	return dirs
}

// withDelivery adds the init container, volumes and mounts that bring the
// models into a replica pod.
func (p *Provider) withDelivery(c *store.Compute, sv *store.Service, pod *coreac.PodSpecApplyConfiguration, ctr *coreac.ContainerApplyConfiguration) {
	dirs := modelDirs(sv)
	ctr.WithVolumeMounts(coreac.VolumeMount().WithName("models").WithMountPath(ModelsPath).WithReadOnly(true)).
		WithEnv(coreac.EnvVar().WithName("BERTH_MODEL_DIRS").WithValue(strings.Join(dirs, ",")))
	if len(dirs) > 0 {
		ctr.WithEnv(coreac.EnvVar().WithName("BERTH_MODEL_DIR").WithValue(dirs[0]))
	}
	initCtr := coreac.Container().WithName(InitContainerName).WithImage(p.Image).
		WithCommand("berth", "model-init").
		WithEnv(
			coreac.EnvVar().WithName("BERTH_MODEL_SOURCE").WithValue(strings.TrimRight(p.PublicURL, "/")+api.DeliveryPath(sv.ID)),
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

// ReviewDeliveryToken checks with the cluster's TokenReview API that a
// delivery token is one the cluster minted for Berth and belongs to the
// service's pods.
func (p *Provider) ReviewDeliveryToken(ctx context.Context, c *store.Compute, sv *store.Service, token string) error {
	cl, err := connect(c)
	if err != nil {
		return err
	}
	tr, err := cl.Client.AuthenticationV1().TokenReviews().Create(ctx, &authv1.TokenReview{
		Spec: authv1.TokenReviewSpec{Token: token, Audiences: []string{Audience(c)}}}, metav1.CreateOptions{})
	if err != nil {
		return problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the token could not be checked with cluster %s: %v", c.Name, cl.Explain(err))
	}
	if !tr.Status.Authenticated {
		reason := cmp.Or(tr.Status.Error, "not authenticated")
		return problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "cluster %s did not accept the token for audience %s: %s", c.Name, Audience(c), reason)
	}
	want := "system:serviceaccount:" + sv.Namespace + ":" + ServiceAccountName(sv)
	if tr.Status.User.Username != want {
		return problem.Forbidden("the token belongs to %s, not to the pods of service %s (%s)", tr.Status.User.Username, sv.Name, want)
	}
	return nil
}
