// Package api holds the JSON types of Berth's REST API. The server and the Go
// SDK (package client) share them, so what the CLI prints with -o json is
// exactly what the API returns.
package api

import (
	"cmp"
	"encoding/json"
	"time"
)

// Version is the API version prefix every route lives under.
const Version = "v1"

// Roles a token can carry. Each role includes the ones after it.
const (
	RoleOwner       = "owner"
	RoleContributor = "contributor"
	RoleReader      = "reader"
)

// Workspace groups compute targets, models and services.
type Workspace struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Region    string            `json:"region"`
	Settings  WorkspaceSettings `json:"settings"`
	CreatedAt time.Time         `json:"createdAt"`
	// Computes is filled by show, not by list.
	Computes []Compute `json:"computes,omitempty"`
}

// WorkspaceSettings are the workspace-wide knobs later providers use.
// Secret fields (the EAB HMAC key, the DNS-01 TSIG secret) are stored
// encrypted and never returned: reads answer them as "" with a *Set flag.
type WorkspaceSettings struct {
	// DNSZone is where automatic certificates' names live:
	// <label><6 random>.<dnsZone>.
	DNSZone          string `json:"dnsZone,omitempty"`
	ACMEDirectoryURL string `json:"acmeDirectoryUrl,omitempty"`
	ACMEEmail        string `json:"acmeEmail,omitempty"`
	// ACMECACertPEM are extra roots the ACME client trusts for the
	// directory's HTTPS (a private or test CA); none means the system's.
	ACMECACertPEM string `json:"acmeCaCertPem,omitempty"`
	// ACMEProfile asks the CA for a certificate profile (draft-ietf-acme-profiles).
	ACMEProfile string `json:"acmeProfile,omitempty"`
	// External account binding, for CAs that require one.
	ACMEEABKeyID      string `json:"acmeEabKid,omitempty"`
	ACMEEABHMACKey    string `json:"acmeEabHmacKey,omitempty"`
	ACMEEABHMACKeySet bool   `json:"acmeEabHmacKeySet,omitempty"`
	// DNS01 is the DNS provider that answers DNS-01 challenges (needed for
	// automatic certificates behind an internal load balancer).
	DNS01               *DNS01Settings `json:"dns01,omitempty"`
	AzureSubscriptionID string         `json:"azureSubscriptionId,omitempty"`
	AzureResourceGroup  string         `json:"azureResourceGroup,omitempty"`
	// AzureCredential picks how the server authenticates to Azure for this
	// workspace: default (DefaultAzureCredential's chain), environment,
	// workload-identity, managed-identity or azure-cli.
	AzureCredential string `json:"azureCredential,omitempty"`
	// ControlPlaneEgressCIDR lists the control plane's egress addresses
	// (comma-separated CIDRs), so attaching a cluster whose API server
	// accepts only authorized IP ranges can tell whether Berth is allowed.
	ControlPlaneEgressCIDR string `json:"controlPlaneEgressCidr,omitempty"`
}

// DNS01 provider names.
const DNS01RFC2136 = "rfc2136"

// DNS01Settings configure a DNS-01 provider. Berth links a curated list:
// rfc2136 (RFC 2136 dynamic updates with TSIG: BIND, Knot, PowerDNS,
// Windows DNS, most self-hosted servers).
type DNS01Settings struct {
	Provider      string `json:"provider"`
	Nameserver    string `json:"nameserver,omitempty"`
	TSIGKey       string `json:"tsigKey,omitempty"`
	TSIGAlgorithm string `json:"tsigAlgorithm,omitempty"`
	TSIGSecret    string `json:"tsigSecret,omitempty"`
	TSIGSecretSet bool   `json:"tsigSecretSet,omitempty"`
	// Resolvers are the nameservers Berth asks to see the record has
	// propagated before it asks the CA to validate (default: Nameserver).
	Resolvers []string `json:"resolvers,omitempty"`
}

// Redacted is the settings as the API shows them: secrets blanked.
func (s WorkspaceSettings) Redacted() WorkspaceSettings {
	if s.ACMEEABHMACKey != "" {
		s.ACMEEABHMACKey, s.ACMEEABHMACKeySet = "", true
	}
	if s.DNS01 != nil {
		d := *s.DNS01
		if d.TSIGSecret != "" {
			d.TSIGSecret, d.TSIGSecretSet = "", true
		}
		s.DNS01 = &d
	}
	return s
}

// WorkspaceUpdateRequest is the body of PATCH /workspaces/{ws}: settings to
// change (empty fields keep their value; dns01 replaces the provider).
type WorkspaceUpdateRequest struct {
	Settings WorkspaceSettings `json:"settings"`
}

// WorkspaceCreateRequest is the body of POST /workspaces.
type WorkspaceCreateRequest struct {
	Name     string            `json:"name"`
	Region   string            `json:"region,omitempty"`
	Settings WorkspaceSettings `json:"settings,omitempty"`
}

// Compute types.
const (
	ComputeKubernetes = "kubernetes"
	ComputeAKS        = "aks"
	ComputeLocal      = "local"
)

// Origins.
const (
	OriginCreated  = "created"
	OriginAttached = "attached"
)

// Cluster purposes.
const (
	PurposeFastProd = "FastProd"
	PurposeDevTest  = "DevTest"
)

// Load balancer types.
const (
	LoadBalancerPublicIP = "PublicIp"
	LoadBalancerInternal = "InternalLoadBalancer"
)

// SSL statuses.
const (
	SSLDisabled = "Disabled"
	SSLEnabled  = "Enabled"
	SSLAuto     = "Auto"
)

// Provisioning states.
const (
	StateCreating  = "Creating"
	StateAttaching = "Attaching"
	StateUpdating  = "Updating"
	StateDetaching = "Detaching"
	StateDeleting  = "Deleting"
	StateScaling   = "Scaling"
	StateSucceeded = "Succeeded"
	StateFailed    = "Failed"
	StateCanceled  = "Canceled"
)

// Health values.
const (
	HealthUnknown     = "Unknown"
	HealthHealthy     = "Healthy"
	HealthUnhealthy   = "Unhealthy"
	HealthUnreachable = "Unreachable"
	HealthDisplaced   = "Displaced"
)

// CertificateStatus is the part of a compute's status that every type with
// automatic certificates records while issuance fails: the CA's reason, how
// many attempts failed in a row, and when the next one is. Decode a
// compute's Status into it to read them whatever the compute's type.
type CertificateStatus struct {
	CertificateError    string     `json:"certificateError,omitempty"`
	CertificateFailures int        `json:"certificateFailures,omitempty"`
	CertificateRetryAt  *time.Time `json:"certificateRetryAt,omitempty"`
}

// SSLConfiguration is the TLS termination of a compute's front end.
type SSLConfiguration struct {
	Status          string     `json:"status"`
	Cname           string     `json:"cname,omitempty"`
	LeafDomainLabel string     `json:"leafDomainLabel,omitempty"`
	OverwriteDomain bool       `json:"overwriteDomain,omitempty"`
	FQDN            string     `json:"fqdn,omitempty"`
	NotAfter        *time.Time `json:"notAfter,omitempty"`
}

// Compute is an inference cluster (compute target) of a workspace.
type Compute struct {
	ID                 string           `json:"id"`
	Name               string           `json:"name"`
	Workspace          string           `json:"workspace"`
	Type               string           `json:"type"`
	Origin             string           `json:"origin"`
	ClusterPurpose     string           `json:"clusterPurpose"`
	LoadBalancerType   string           `json:"loadBalancerType"`
	LoadBalancerSubnet string           `json:"loadBalancerSubnet,omitempty"`
	SSLConfiguration   SSLConfiguration `json:"sslConfiguration"`
	ProvisioningState  string           `json:"provisioningState"`
	ProvisioningErrors []ErrorDetail    `json:"provisioningErrors"`
	Health             string           `json:"health"`
	// Settings are the type-specific settings the user asked for (a JSON
	// object: agent count, VM size, kubeconfig context…), as the type's
	// provider decoded and completed them with its defaults.
	Settings json.RawMessage `json:"settings,omitempty"`
	// Status is what Berth found and recorded about the compute that is
	// specific to its type (a JSON object: FQDN, DNS label, agent pool,
	// certificate retries…).
	Status json.RawMessage `json:"status,omitempty"`
	// Observed facts, filled by the provider.
	KubernetesVersion string     `json:"kubernetesVersion,omitempty"`
	NodeCount         int        `json:"nodeCount,omitempty"`
	AllocatableCpus   float64    `json:"allocatableCpus,omitempty"`
	Endpoint          string     `json:"endpoint,omitempty"`
	LastReconcile     *time.Time `json:"lastReconcile,omitempty"`
	// FrontendImage is the image the cluster's front end Deployment runs,
	// as last observed (after a server upgrade it differs from the
	// server's until the compute is reconciled).
	FrontendImage string `json:"frontendImage,omitempty"`
	// AttachmentID identifies this compute's attachment in the cluster
	// (the attachment marker and the berth.dev/attachment label).
	AttachmentID string `json:"attachmentId,omitempty"`
	// HasCredentials tells whether the compute holds stored credentials; the
	// credentials themselves are only served by the owner-only credentials call.
	HasCredentials bool `json:"hasCredentials"`
	// CurrentOperation is the id of the active operation, if any.
	CurrentOperation string    `json:"currentOperation,omitempty"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

// ComputeRequest is the body of POST /workspaces/{ws}/computes (create or
// attach, by origin) and of PATCH /workspaces/{ws}/computes/{name} (update;
// empty fields keep their value).
type ComputeRequest struct {
	Name               string      `json:"name"`
	Type               string      `json:"type"`
	Origin             string      `json:"origin"`
	ClusterPurpose     string      `json:"clusterPurpose,omitempty"`
	LoadBalancerType   string      `json:"loadBalancerType,omitempty"`
	LoadBalancerSubnet string      `json:"loadBalancerSubnet,omitempty"`
	SSL                *SSLRequest `json:"ssl,omitempty"`
	// Settings are the type-specific settings (a JSON object, decoded
	// strictly by the type's provider: an unknown field is an error).
	Settings json.RawMessage `json:"settings,omitempty"`
	// Credentials (a kubeconfig, for example) are stored encrypted and never
	// returned by show or list.
	Credentials string `json:"credentials,omitempty"`
	// Force takes over a cluster already attached elsewhere; the previous
	// compute becomes Displaced.
	Force bool `json:"force,omitempty"`
	// DryRun runs the preflight checks only and answers with their report.
	DryRun bool `json:"dryRun,omitempty"`
}

// Check statuses.
const (
	CheckPassed  = "Passed"
	CheckFailed  = "Failed"
	CheckSkipped = "Skipped"
)

// Check is the outcome of one preflight check.
type Check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// Details lists each problem a failed check found.
	Details []ErrorDetail `json:"details,omitempty"`
}

// PreflightReport is the answer of a dry run: every check and its outcome.
type PreflightReport struct {
	Passed bool    `json:"passed"`
	Checks []Check `json:"checks"`
	// Request is what a create would send to its cloud (AKS: the ARM
	// request), when the type can tell.
	Request *CloudRequest `json:"request,omitempty"`
}

// CloudRequest is a request to a cloud's API, as a dry run shows it.
type CloudRequest struct {
	Method string `json:"method"`
	URL    string `json:"url"`
	Body   any    `json:"body,omitempty"`
}

// SSLRequest carries the SSL flags of create, attach and update.
type SSLRequest struct {
	CertPEM         string `json:"certPem,omitempty"`
	KeyPEM          string `json:"keyPem,omitempty"`
	Cname           string `json:"cname,omitempty"`
	LeafDomainLabel string `json:"leafDomainLabel,omitempty"`
	OverwriteDomain bool   `json:"overwriteDomain,omitempty"`
	Renew           bool   `json:"renew,omitempty"`
	Disable         bool   `json:"disable,omitempty"`
}

// ComputeList is the answer of GET /workspaces/{ws}/computes.
type ComputeList struct {
	Value []Compute `json:"value"`
}

// WorkspaceList is the answer of GET /workspaces.
type WorkspaceList struct {
	Value []Workspace `json:"value"`
}

// DetachRequest is the body of POST .../computes/{name}/detach.
type DetachRequest struct {
	// Force detaches even when the cluster cannot be reached; what could
	// not be removed is reported in the operation's events.
	Force bool `json:"force,omitempty"`
}

// ScaleRequest is the body of POST .../computes/{name}/scale.
type ScaleRequest struct {
	NodeCount int `json:"nodeCount"`
}

// Credentials is the answer of GET .../computes/{name}/credentials (owners only).
type Credentials struct {
	Value string `json:"value"`
}

// OperationKind is what an operation does.
type OperationKind string

// Operation kinds.
const (
	OpCreate    OperationKind = "create"
	OpAttach    OperationKind = "attach"
	OpUpdate    OperationKind = "update"
	OpDetach    OperationKind = "detach"
	OpDelete    OperationKind = "delete"
	OpScale     OperationKind = "scale"
	OpReconcile OperationKind = "reconcile"
	// OpRenew renews an automatic certificate (started by the control
	// plane when a third of its lifetime is left, or after a failure).
	OpRenew OperationKind = "renew"
	// OpDeploy deploys a service (its delete is OpDelete, its update OpUpdate).
	OpDeploy OperationKind = "deploy"
)

// OperationState is where an operation is in its life.
type OperationState string

// Operation states.
const (
	OpPending   OperationState = "Pending"
	OpRunning   OperationState = "Running"
	OpSucceeded OperationState = "Succeeded"
	OpFailed    OperationState = "Failed"
	OpCanceled  OperationState = "Canceled"
)

// Operation is one asynchronous change to a target.
type Operation struct {
	ID         string         `json:"id"`
	Workspace  string         `json:"workspace"`
	TargetType string         `json:"targetType"`
	TargetName string         `json:"targetName"`
	TargetID   string         `json:"targetId"`
	Kind       OperationKind  `json:"kind"`
	State      OperationState `json:"state"`
	Step       string         `json:"step,omitempty"`
	Attempt    int            `json:"attempt"`
	Error      *Error         `json:"error,omitempty"`
	CreatedAt  time.Time      `json:"createdAt"`
	StartedAt  *time.Time     `json:"startedAt,omitempty"`
	FinishedAt *time.Time     `json:"finishedAt,omitempty"`
}

// Terminal reports whether the operation has finished.
func (o *Operation) Terminal() bool {
	return o.State == OpSucceeded || o.State == OpFailed || o.State == OpCanceled
}

// Event levels.
const (
	LevelInfo  = "info"
	LevelWarn  = "warning"
	LevelError = "error"
)

// Event is a timestamped line of an operation's progress.
type Event struct {
	Seq     int64     `json:"seq"`
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// EventList is the answer of GET /operations/{id}/events.
type EventList struct {
	Value []Event `json:"value"`
}

// OperationList is the answer of operation listings.
type OperationList struct {
	Value []Operation `json:"value"`
}

// Token is an API token as listed; the secret is only in TokenCreated.
type Token struct {
	ID          string     `json:"id"`
	Role        string     `json:"role"`
	Workspace   string     `json:"workspace,omitempty"`
	Description string     `json:"description,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	LastUsedAt  *time.Time `json:"lastUsedAt,omitempty"`
}

// TokenCreateRequest is the body of POST /tokens.
type TokenCreateRequest struct {
	Role        string `json:"role"`
	Workspace   string `json:"workspace,omitempty"`
	Description string `json:"description,omitempty"`
}

// TokenCreated is the answer of POST /tokens: the only time the token is shown.
type TokenCreated struct {
	Token
	Secret string `json:"token"`
}

// TokenList is the answer of GET /tokens.
type TokenList struct {
	Value []Token `json:"value"`
}

// ComputeUpdateRequest is the body of PATCH /workspaces/{ws}/computes/{name}:
// what `berth compute update` may change in place. Empty fields keep their value.
type ComputeUpdateRequest struct {
	ClusterPurpose     string      `json:"clusterPurpose,omitempty"`
	LoadBalancerType   string      `json:"loadBalancerType,omitempty"`
	LoadBalancerSubnet string      `json:"loadBalancerSubnet,omitempty"`
	SSL                *SSLRequest `json:"ssl,omitempty"`
}

// Apply merges the update's cluster purpose and load balancer into c (empty
// fields keep their value; a public load balancer has no subnet). TLS is
// not merged here: what it becomes (FQDN, expiry) depends on the provider.
func (u *ComputeUpdateRequest) Apply(c *Compute) {
	c.ClusterPurpose = cmp.Or(u.ClusterPurpose, c.ClusterPurpose)
	if u.LoadBalancerType != "" {
		c.LoadBalancerType = u.LoadBalancerType
		if u.LoadBalancerType == LoadBalancerPublicIP {
			c.LoadBalancerSubnet = ""
		}
	}
	c.LoadBalancerSubnet = cmp.Or(u.LoadBalancerSubnet, c.LoadBalancerSubnet)
}

// ReconcileRequest is the body of POST .../computes/{name}/reconcile.
type ReconcileRequest struct{}

// Orchestrator is one Kubernetes version, in the shape of the reference's
// `az aks get-versions` JSON.
type Orchestrator struct {
	OrchestratorType    string    `json:"orchestratorType"`
	OrchestratorVersion string    `json:"orchestratorVersion"`
	Default             bool      `json:"default"`
	IsPreview           bool      `json:"isPreview"`
	Upgrades            []Upgrade `json:"upgrades"`
	// Supported says whether Berth can attach or create clusters of it.
	Supported bool `json:"supported"`
}

// Upgrade is a version an orchestrator version can upgrade to.
type Upgrade struct {
	OrchestratorType    string `json:"orchestratorType"`
	OrchestratorVersion string `json:"orchestratorVersion"`
	IsPreview           bool   `json:"isPreview"`
}

// BuildInfo says which Berth a program is: GET /api/v1/version answers
// with the server's, and `berth version` prints the client's beside it.
type BuildInfo struct {
	// Version is the release (0.3.0) or, for an untagged build,
	// dev-<12 hex digits of the commit>[-dirty].
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
	// APIVersion is the REST API version the program speaks (v1).
	APIVersion string `json:"apiVersion"`
	// FrontendImage is the image a server installs into clusters for the
	// front end and uses for service replicas' init containers; reconcile
	// rolls clusters running another image to it. Servers only.
	FrontendImage string `json:"frontendImage,omitempty"`
}

// VersionList is the answer of GET /versions.
type VersionList struct {
	Location      string         `json:"location,omitempty"`
	Orchestrators []Orchestrator `json:"orchestrators"`
}

// Model is one version of a registered model.
type Model struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Version     int               `json:"version"`
	Workspace   string            `json:"workspace"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	// Format is "file" (one file, FileName) or "tar.gz" (a directory).
	Format    string    `json:"format"`
	FileName  string    `json:"fileName"`
	Size      int64     `json:"size"`
	SHA256    string    `json:"sha256"`
	CreatedAt time.Time `json:"createdAt"`
}

// ModelList is the answer of model listings.
type ModelList struct {
	Value []Model `json:"value"`
}

// Auth modes of a service.
const (
	AuthKey   = "key"
	AuthToken = "token"
	AuthNone  = "none"
)

// Probe is a liveness or readiness probe's timing.
type Probe struct {
	InitialDelaySeconds int `json:"initialDelaySeconds"`
	PeriodSeconds       int `json:"periodSeconds"`
	TimeoutSeconds      int `json:"timeoutSeconds"`
	SuccessThreshold    int `json:"successThreshold"`
	FailureThreshold    int `json:"failureThreshold"`
}

// AutoscaleSettings are a service's scaling settings.
type AutoscaleSettings struct {
	Enabled           bool `json:"enabled"`
	MinReplicas       int  `json:"minReplicas"`
	MaxReplicas       int  `json:"maxReplicas"`
	RefreshSeconds    int  `json:"refreshSeconds"`
	TargetUtilization int  `json:"targetUtilization"`
	// ScaleToZeroAfterSeconds, when set, lets the service scale to zero:
	// MinReplicas is then 0 and the last replica stops once it has been
	// idle that long. Without it a MinReplicas of 0 means the default, 1.
	ScaleToZeroAfterSeconds int `json:"scaleToZeroAfterSeconds,omitempty"`
}

// ServiceSpec is what a service runs and how; the request of deploy and
// update, and part of the service as shown.
type ServiceSpec struct {
	Compute string `json:"compute"`
	// Models are NAME or NAME:VERSION (latest when no version).
	Models                []string           `json:"models"`
	Image                 string             `json:"image,omitempty"`
	Command               []string           `json:"command,omitempty"`
	Port                  int                `json:"port,omitempty"`
	CPU                   float64            `json:"cpu,omitempty"`
	MemoryGB              float64            `json:"memoryGb,omitempty"`
	CPULimit              float64            `json:"cpuLimit,omitempty"`
	MemoryLimitGB         float64            `json:"memoryLimitGb,omitempty"`
	GPU                   int                `json:"gpu,omitempty"`
	Replicas              int                `json:"replicas,omitempty"`
	Autoscale             *AutoscaleSettings `json:"autoscale,omitempty"`
	MaxConcurrentRequests int                `json:"maxConcurrentRequestsPerContainer,omitempty"`
	MaxQueueWaitMs        int                `json:"maxQueueWaitMs,omitempty"`
	ScoringTimeoutMs      int                `json:"scoringTimeoutMs,omitempty"`
	Auth                  string             `json:"auth,omitempty"`
	Namespace             string             `json:"namespace,omitempty"`
	Liveness              *Probe             `json:"livenessProbe,omitempty"`
	Readiness             *Probe             `json:"readinessProbe,omitempty"`
	Env                   map[string]string  `json:"env,omitempty"`
	// ModelDelivery is how models reach a cluster's replicas: "fetch" (the
	// default: an init container downloads them from the control plane) or
	// "image" (they are baked into the image; nothing is fetched).
	ModelDelivery string `json:"modelDelivery,omitempty"`
	// ColdStartTimeoutMs is how long a request for a service scaled to
	// zero waits for a replica (with autoscale.scaleToZeroAfterSeconds).
	ColdStartTimeoutMs int `json:"coldStartTimeoutMs,omitempty"`
	// LogRequests is the percentage (0–100) of scoring requests logged
	// with their answers (docs/endpoints.md "Request logging"); nil or 0
	// logs none. The bodies are cut at LogBodyLimit bytes (default 64 KiB
	// while logging). LogSink, an http(s) URL, receives them as CloudEvents
	// instead of the artifact store; an empty one in an update clears it.
	LogRequests  *int    `json:"logRequests,omitempty"`
	LogBodyLimit int     `json:"logBodyLimit,omitempty"`
	LogSink      *string `json:"logSink,omitempty"`
}

// Model delivery modes.
const (
	ModelDeliveryFetch = "fetch"
	ModelDeliveryImage = "image"
)

// ServiceRequest is the body of POST /workspaces/{ws}/services.
type ServiceRequest struct {
	Name string `json:"name"`
	ServiceSpec
}

// Service states (the reference's).
const (
	ServiceTransitioning = "Transitioning"
	ServiceHealthy       = "Healthy"
	ServiceUnhealthy     = "Unhealthy"
	ServiceFailed        = "Failed"
)

// Service is a deployed scoring web service.
type Service struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Workspace string `json:"workspace"`
	ServiceSpec
	State         string        `json:"state"`
	Errors        []ErrorDetail `json:"errors"`
	ScoringURI    string        `json:"scoringUri,omitempty"`
	SwaggerURI    string        `json:"swaggerUri,omitempty"`
	ReadyReplicas int           `json:"readyReplicas"`
	// Endpoint, when set, is the endpoint this service is a version of: it
	// is served, keyed and changed only through the endpoint.
	Endpoint string `json:"endpoint,omitempty"`
	// Generation counts the changes of the spec (the local runtime restarts
	// replicas when it grows).
	Generation       int       `json:"generation"`
	CurrentOperation string    `json:"currentOperation,omitempty"`
	CreatedAt        time.Time `json:"createdAt"`
	UpdatedAt        time.Time `json:"updatedAt"`
}

// ServiceList is the answer of GET /workspaces/{ws}/services.
type ServiceList struct {
	Value []Service `json:"value"`
}

// ServiceKeys are a key-auth service's keys (owners only).
type ServiceKeys struct {
	PrimaryKey   string `json:"primaryKey"`
	SecondaryKey string `json:"secondaryKey"`
}

// RegenKeyRequest is the body of POST .../services/{name}/regen-key.
type RegenKeyRequest struct {
	Key   string `json:"key"`             // primary or secondary
	Value string `json:"value,omitempty"` // a chosen value (default: random)
}

// ServiceToken is a short-lived JWT for a token-auth service.
type ServiceToken struct {
	AccessToken string    `json:"accessToken"`
	TokenType   string    `json:"tokenType"`
	ExpiryOn    time.Time `json:"expiryOn"`
}

// Certificate is the TLS certificate a compute's front end serves.
type Certificate struct {
	// CertPEM is the chain, leaf first.
	CertPEM string `json:"certPem"`
	// CAPEM is the issuing CA of a local compute (trust it to call it).
	CAPEM string `json:"caPem,omitempty"`
	// KeyPEM is only returned to owners who ask for it.
	KeyPEM string `json:"keyPem,omitempty"`
}

// Metrics is the recent traffic of a service, or of a compute's front end
// as a whole, as the server read it from the front end: one point per
// StepSeconds (10 for at most an hour back, else 60), oldest first. The
// server keeps 24 hours in memory; intervals it did not read are absent.
type Metrics struct {
	Compute     string         `json:"compute"`
	Service     string         `json:"service,omitempty"`
	Since       string         `json:"since"`
	StepSeconds int            `json:"stepSeconds"`
	Points      []MetricsPoint `json:"points"`
}

// MetricsPoint is one interval. Rates are per second over the interval;
// latencies are in milliseconds, absent when no request finished in it.
type MetricsPoint struct {
	Time            time.Time          `json:"time"`
	RequestsPerSec  float64            `json:"requestsPerSecond"`
	ErrorsPerSec    map[string]float64 `json:"errorsPerSecond,omitempty"`
	LatencyP50Ms    *float64           `json:"latencyP50Ms,omitempty"`
	LatencyP99Ms    *float64           `json:"latencyP99Ms,omitempty"`
	QueueP50Ms      *float64           `json:"queueP50Ms,omitempty"`
	QueueP99Ms      *float64           `json:"queueP99Ms,omitempty"`
	ReadyReplicas   int                `json:"readyReplicas"`
	DesiredReplicas int                `json:"desiredReplicas"`
}
