package kubernetes

import (
	"context"
	"net/http"
	"strings"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/installer"
	"github.com/berth-ml/berth/internal/problem"
	"github.com/berth-ml/berth/internal/store"
)

// A cluster's front end reports its metrics to the control plane (the
// API server will not proxy to pod addresses on every cluster, and a
// report needs no route from the control plane into the cluster): every
// metrics interval it posts them to the server's public URL with its
// projected service-account token, which the server checks here.

// metricsURL is where the compute's front end reports, or "" when the
// server has no public URL the cluster can reach.
func (p *Provider) metricsURL(c *store.Compute) string {
	if p.PublicURL == "" {
		return ""
	}
	return strings.TrimRight(p.PublicURL, "/") + api.FrontendMetricsPath(c.ID)
}

func (p *Provider) metricsInterval() time.Duration {
	if p.MetricsInterval > 0 {
		return p.MetricsInterval
	}
	return 10 * time.Second
}

// ReviewFrontendToken checks with the cluster's TokenReview API that a
// token is one of the compute's front-end pods', for this attachment's
// audience, and returns that pod's name.
func (p *Provider) ReviewFrontendToken(ctx context.Context, c *store.Compute, token string) (string, error) {
	cl, err := connect(c)
	if err != nil {
		return "", err
	}
	tr, err := cl.Client.AuthenticationV1().TokenReviews().Create(ctx, &authv1.TokenReview{
		Spec: authv1.TokenReviewSpec{Token: token, Audiences: []string{Audience(c)}}}, metav1.CreateOptions{})
	if err != nil {
		return "", problem.New(http.StatusBadGateway, api.CodeClusterUnreachable, "the token could not be checked with cluster %s: %v", c.Name, cl.Explain(err))
	}
	if !tr.Status.Authenticated {
		return "", problem.New(http.StatusUnauthorized, api.CodeUnauthorized, "cluster %s did not accept the token for audience %s", c.Name, Audience(c))
	}
	want := "system:serviceaccount:" + installer.Namespace + ":" + installer.FrontendName
	if tr.Status.User.Username != want {
		return "", problem.Forbidden("the token belongs to %s, not to the front end of compute %s (%s)", tr.Status.User.Username, c.Name, want)
	}
	pod := tr.Status.User.Extra["authentication.kubernetes.io/pod-name"]
	if len(pod) != 1 {
		return "", problem.Forbidden("the token is not bound to a pod: the front end reports with its projected token")
	}
	return pod[0], nil
}
