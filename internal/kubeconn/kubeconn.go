// Package kubeconn turns a stored kubeconfig into Kubernetes clients and
// turns connection failures into messages a person can act on (a wrong
// server, an untrusted or expired certificate, rejected credentials).
package kubeconn

import (
	"cmp"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// RequestTimeout bounds every request to a cluster, so that one whose API
// server never answers (a private endpoint seen from outside) fails, with
// preflight's connection check first, instead of hanging.
const RequestTimeout = 30 * time.Second

// Cluster is a connection to one cluster.
type Cluster struct {
	Config  *rest.Config
	Client  kubernetes.Interface
	Dynamic dynamic.Interface
	// Server is the API server address, for messages.
	Server string
	// Context is the kubeconfig context used.
	Context string
}

// Parse reads a kubeconfig and checks it can be used by a server: one
// context (the named one, or the current one), no external files or exec
// plugins. It returns the kubeconfig reduced to that context, flattened.
func Parse(kubeconfig []byte, contextName string) (*clientcmdapi.Config, string, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("the kubeconfig is not valid: %v", err)
	}
	contextName = cmp.Or(contextName, cfg.CurrentContext)
	if contextName == "" {
		if len(cfg.Contexts) != 1 {
			return nil, "", errors.New("the kubeconfig has no current context: pass --context")
		}
		for name := range cfg.Contexts {
			contextName = name
		}
	}
	if _, ok := cfg.Contexts[contextName]; !ok {
		return nil, "", fmt.Errorf("the kubeconfig has no context %q (it has: %s)", contextName, strings.Join(slices.Sorted(maps.Keys(cfg.Contexts)), ", "))
	}
	cfg.CurrentContext = contextName
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return nil, "", fmt.Errorf("the kubeconfig's context %q: %v", contextName, err)
	}
	for name, ai := range cfg.AuthInfos {
		if ai.Exec != nil {
			return nil, "", fmt.Errorf("the kubeconfig's user %q signs in with the exec plugin %q, which the Berth server cannot run: use a kubeconfig with a token or client certificate (for AKS, attach by resource id instead)", name, ai.Exec.Command)
		}
		if ai.AuthProvider != nil {
			return nil, "", fmt.Errorf("the kubeconfig's user %q uses the auth provider %q, which the Berth server cannot run: use a token or client certificate", name, ai.AuthProvider.Name)
		}
		if ai.ClientCertificate != "" || ai.ClientKey != "" || ai.TokenFile != "" {
			return nil, "", fmt.Errorf("the kubeconfig's user %q refers to files on this machine; embed them (kubectl config view --flatten --minify) or let the berth CLI read the kubeconfig", name)
		}
	}
	for name, c := range cfg.Clusters {
		if c.CertificateAuthority != "" {
			return nil, "", fmt.Errorf("the kubeconfig's cluster %q refers to the CA file %s; embed it (kubectl config view --flatten --minify)", name, c.CertificateAuthority)
		}
		if c.Server == "" {
			return nil, "", fmt.Errorf("the kubeconfig's cluster %q has no server address", name)
		}
	}
	return cfg, contextName, nil
}

// Flatten reads a kubeconfig file as a user's machine sees it (resolving
// file references), reduces it to one context and returns it serialised,
// ready to send to the server.
func Flatten(path, contextName string) ([]byte, string, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read kubeconfig %s: %v", path, err)
	}
	contextName = cmp.Or(contextName, cfg.CurrentContext)
	names := slices.Sorted(maps.Keys(cfg.Contexts))
	switch {
	case len(names) == 0:
		return nil, "", fmt.Errorf("kubeconfig %s has no contexts: it needs one that names a cluster and a user (kubectl config set-context NAME --cluster C --user U --kubeconfig %s)", path, path)
	case contextName == "":
		return nil, "", fmt.Errorf("kubeconfig %s has no current context: pass --kube-context (it has: %s)", path, strings.Join(names, ", "))
	case cfg.Contexts[contextName] == nil:
		return nil, "", fmt.Errorf("kubeconfig %s has no context %q (it has: %s)", path, contextName, strings.Join(names, ", "))
	}
	cfg.CurrentContext = contextName
	if err := clientcmdapi.MinifyConfig(cfg); err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %v", path, err)
	}
	if err := clientcmdapi.FlattenConfig(cfg); err != nil {
		return nil, "", fmt.Errorf("kubeconfig %s: %v", path, err)
	}
	out, err := clientcmd.Write(*cfg)
	return out, cfg.CurrentContext, err
}

// Connect builds clients for a kubeconfig already checked by Parse.
func Connect(kubeconfig []byte, contextName string) (*Cluster, error) {
	cfg, ctxName, err := Parse(kubeconfig, contextName)
	if err != nil {
		return nil, err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*cfg, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("the kubeconfig cannot be used: %v", err)
	}
	rc.Timeout = RequestTimeout
	rc.QPS, rc.Burst = 50, 100
	rc.UserAgent = "berth"
	return FromConfig(rc, ctxName)
}

// FromConfig builds clients for a REST config.
func FromConfig(rc *rest.Config, contextName string) (*Cluster, error) {
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return &Cluster{Config: rc, Client: cs, Dynamic: dyn, Server: rc.Host, Context: contextName}, nil
}

// ErrUnreachable marks errors where the cluster could not be reached at all.
var ErrUnreachable = errors.New("cluster unreachable")

// ErrUnauthorized marks errors where the cluster rejected the credentials.
var ErrUnauthorized = errors.New("credentials rejected")

// Explain turns an error from talking to the cluster into a sentence that
// says what is wrong and what to do. Unreachable clusters wrap ErrUnreachable.
func (c *Cluster) Explain(err error) error {
	if err == nil {
		return nil
	}
	var (
		certInvalid x509.CertificateInvalidError
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		dnsErr      *net.DNSError
		opErr       *net.OpError
		urlErr      *url.Error
	)
	switch {
	case errors.As(err, &certInvalid) && certInvalid.Reason == x509.Expired:
		return fmt.Errorf("%w: the API server's certificate at %s has expired or is not yet valid (%v); renew it or fix the clock", ErrUnreachable, c.Server, certInvalid)
	case errors.As(err, &unknownAuth), errors.As(err, &certInvalid):
		return fmt.Errorf("%w: the API server at %s presents a certificate the kubeconfig's CA does not trust; check certificate-authority-data for context %q", ErrUnreachable, c.Server, c.Context)
	case errors.As(err, &hostErr):
		return fmt.Errorf("%w: the API server's certificate is not valid for %s: %v", ErrUnreachable, c.Server, hostErr)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("%w: the cluster at %s rejected the credentials of context %q (401 Unauthorized): the token or client certificate is wrong, revoked or expired", ErrUnauthorized, c.Server, c.Context)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("%w: cannot resolve the API server's host in %s: check the server address of context %q", ErrUnreachable, c.Server, c.Context)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: nothing answers at %s (connection refused): check the server address of context %q and that the cluster is running", ErrUnreachable, c.Server, c.Context)
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &opErr), isTimeout(err):
		return fmt.Errorf("%w: no answer from %s (%v): check the address and the network path to the cluster", ErrUnreachable, c.Server, err)
	case errors.As(err, &urlErr):
		return fmt.Errorf("%w: cannot talk to %s: %v", ErrUnreachable, c.Server, urlErr.Err)
	}
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
