package aks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/berth-ml/berth/internal/problem"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerservice/armcontainerservice/v6"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armsubscriptions"
	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/internal/operation"
)

// Credential choices of a workspace (settings.azureCredential).
const (
	CredentialDefault          = "default"
	CredentialEnvironment      = "environment"
	CredentialWorkloadIdentity = "workload-identity"
	CredentialManagedIdentity  = "managed-identity"
	CredentialAzureCLI         = "azure-cli"
)

// CredentialChoices lists the valid settings.azureCredential values.
var CredentialChoices = []string{CredentialDefault, CredentialEnvironment, CredentialWorkloadIdentity, CredentialManagedIdentity, CredentialAzureCLI}

// NewCredential is the production credential for a workspace's choice:
// azidentity's DefaultAzureCredential chain (environment, workload
// identity, managed identity, Azure CLI) or one link of it.
func NewCredential(choice string) (azcore.TokenCredential, error) {
	switch choice {
	case "", CredentialDefault:
		return azidentity.NewDefaultAzureCredential(nil)
	case CredentialEnvironment:
		return azidentity.NewEnvironmentCredential(nil)
	case CredentialWorkloadIdentity:
		return azidentity.NewWorkloadIdentityCredential(nil)
	case CredentialManagedIdentity:
		return azidentity.NewManagedIdentityCredential(nil)
	case CredentialAzureCLI:
		return azidentity.NewAzureCLICredential(nil)
	}
	return nil, fmt.Errorf("Azure credential %q is not known: use one of %s", choice, strings.Join(CredentialChoices, ", "))
}

// credentialError marks an error of the credential (no token), as opposed
// to one of Azure's answers.
type credentialError struct{ err error }

func (e *credentialError) Error() string { return e.err.Error() }
func (e *credentialError) Unwrap() error { return e.err }

// NonRetriable: the SDK's retry policy does not retry a missing credential.
func (e *credentialError) NonRetriable() {}

// markedCredential tags its credential's errors as credentialError.
type markedCredential struct{ azcore.TokenCredential }

func (c markedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	t, err := c.TokenCredential.GetToken(ctx, opts)
	if err != nil {
		return t, &credentialError{err}
	}
	return t, nil
}

// clients are Azure's clients for one subscription.
type clients struct {
	subscription string
	clusters     *armcontainerservice.ManagedClustersClient
	pools        *armcontainerservice.AgentPoolsClient
	skus         *armcompute.ResourceSKUsClient
	locations    *armsubscriptions.Client
	subnets      *armnetwork.SubnetsClient
}

func newClients(subscription string, cred azcore.TokenCredential, opts *arm.ClientOptions) (*clients, error) {
	c := &clients{subscription: subscription}
	cred = markedCredential{cred}
	var err error
	if c.clusters, err = armcontainerservice.NewManagedClustersClient(subscription, cred, opts); err != nil {
		return nil, err
	}
	if c.pools, err = armcontainerservice.NewAgentPoolsClient(subscription, cred, opts); err != nil {
		return nil, err
	}
	if c.skus, err = armcompute.NewResourceSKUsClient(subscription, cred, opts); err != nil {
		return nil, err
	}
	if c.locations, err = armsubscriptions.NewClient(cred, opts); err != nil {
		return nil, err
	}
	if c.subnets, err = armnetwork.NewSubnetsClient(subscription, cred, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// need is the role an Azure call needs, and on which scope, so that an
// authorization failure can say what to assign.
type need struct {
	action string // what Berth was doing: "create the managed cluster"
	role   string // the built-in role that allows it
	scope  string // the ARM scope to assign it on
}

// azureError maps an Azure error to a clear message with a code, as an
// api.ErrorDetail. Callers turn it into an operation failure or a
// validation detail.
func azureError(err error, n need) api.ErrorDetail {
	var re *azcore.ResponseError
	var credErr *credentialError
	switch {
	case errors.As(err, &re):
		msg := strings.TrimSuffix(responseMessage(re), ".")
		code := re.ErrorCode
		switch {
		case re.StatusCode == http.StatusTooManyRequests:
			return problem.Detail(api.CodeAzureThrottled, "", "Azure kept throttling requests (429 Too Many Requests) while Berth tried to %s, even after waiting as it asked; try again in a few minutes", n.action)
		case code == "RequestDisallowedByPolicy":
			return problem.Detail(api.CodeAzurePolicyDenied, "", "an Azure Policy assigned to this subscription or resource group forbids what Berth tried (%s): %s. If the policy forbids public IP addresses, use loadBalancerType InternalLoadBalancer (with a loadBalancerSubnet) instead", n.action, msg)
		case isQuota(code, msg):
			return problem.Detail(api.CodeAzureQuotaExceeded, "", "the subscription's quota is too small to %s: %s. Request a quota increase for the VM family in this location (Azure portal: Subscriptions > Usage + quotas), or use fewer agents (settings.agentCount) or a smaller settings.vmSize", n.action, msg)
		case code == "AuthorizationFailed" || code == "LinkedAuthorizationFailed" || code == "AuthorizationPermissionMismatch" || re.StatusCode == http.StatusForbidden:
			return problem.Detail(api.CodeAzureRoleMissing, "", "the Azure identity Berth uses is not allowed to %s: assign it the %q role on scope %s (Azure said: %s)", n.action, n.role, n.scope, msg)
		case re.StatusCode == http.StatusUnauthorized:
			return problem.Detail(api.CodeAzureCredentialsRejected, "", "Azure rejected Berth's credentials while trying to %s: %s", n.action, msg)
		case code == "ResourceGroupNotFound":
			return problem.Detail(api.CodeAzureResourceGroupNotFound, "", "cannot %s: %s; create the resource group or set the workspace's azureResourceGroup to an existing one", n.action, msg)
		case re.StatusCode == http.StatusConflict || code == "Conflict" || code == "ResourceExists":
			return problem.Detail(api.CodeAzureNameConflict, "", "cannot %s: %s", n.action, msg)
		case re.StatusCode == http.StatusNotFound:
			return problem.Detail(api.CodeAzureResourceNotFound, "", "cannot %s: %s", n.action, msg)
		}
		return problem.Detail(api.CodeAzureRequestFailed, "", "Azure refused to %s (%d %s): %s", n.action, re.StatusCode, code, msg)
	case errors.As(err, &credErr):
		return problem.Detail(api.CodeAzureCredentialsUnavailable, "", "Berth has no usable Azure credentials to %s: %v. Set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a workload or managed identity) for the server, or run `az login` where it runs", n.action, firstLine(err.Error()))
	}
	return problem.Detail(api.CodeAzureRequestFailed, "", "cannot %s: %v", n.action, err)
}

func isQuota(code, msg string) bool {
	lc := strings.ToLower(code + " " + msg)
	return strings.Contains(lc, "quota")
}

// responseMessage is Azure's own message from an error response body
// (`{"error":{"code":…,"message":…}}`, also inside a failed long-running
// operation's status).
func responseMessage(re *azcore.ResponseError) string {
	if re.RawResponse != nil {
		if body, err := runtime.Payload(re.RawResponse); err == nil {
			var b struct {
				Error   struct{ Code, Message string } `json:"error"`
				Message string                         `json:"message"`
			}
			if json.Unmarshal(body, &b) == nil {
				if b.Error.Message != "" {
					return b.Error.Message
				}
				if b.Message != "" {
					return b.Message
				}
			}
		}
	}
	return cmp.Or(re.ErrorCode, http.StatusText(re.StatusCode))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// failAzure turns an Azure error into an operation failure: server-side
// and network trouble is retried by the engine, the rest ends the
// operation with the mapped message.
func failAzure(ctx context.Context, err error, n need) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	re, answered := errors.AsType[*azcore.ResponseError](err)
	if answered && re.StatusCode >= 500 {
		return err
	}
	d := azureError(err, n)
	if !answered && d.Code == "AzureRequestFailed" {
		// No answer from Azure (the network, a broken poll): the step is
		// retried, resuming a long-running operation where it was.
		return err
	}
	return operation.Fail(d.Code, d.Message, d)
}
