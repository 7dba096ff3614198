package cli

import (
	"cmp"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/berth-ml/berth/api"
)

// The API's problems name the request's fields (a detail's Target, and the
// fields its message mentions: "settings.agentCount must be a positive
// integer"), so Go SDK callers read the names they set. People at the
// command line set flags instead: each command has a table from the fields
// of the request it sends to its flags, and problems are printed in flag
// terms ("--agent-count must be a positive integer").

// fieldFlags maps request fields to the flags that set them.
type fieldFlags map[string]string

func merge(tables ...fieldFlags) fieldFlags {
	out := fieldFlags{}
	for _, t := range tables {
		maps.Copy(out, t)
	}
	return out
}

var (
	// workspaceFields are named by any command's problems when the
	// workspace must change first.
	workspaceFields = fieldFlags{
		"workspace.settings.dnsZone":             "berth workspace update --dns-zone",
		"workspace.settings.dns01":               "berth workspace update --dns01-provider rfc2136 --dns01-nameserver HOST:PORT --dns01-tsig-key NAME --dns01-tsig-secret SECRET",
		"workspace.settings.azureSubscriptionId": "berth workspace update --azure-subscription-id",
		"workspace.settings.azureResourceGroup":  "berth workspace update --azure-resource-group",
		"workspace.settings.azureCredential":     "berth workspace update --azure-credential",

		"workspace.settings.controlPlaneEgressCidr": "berth workspace update --control-plane-egress-cidr",
	}
	sslFields = fieldFlags{
		"ssl.certPem": "--ssl-cert-file", "ssl.keyPem": "--ssl-key-file", "ssl.cname": "--ssl-cname",
		"ssl.leafDomainLabel": "--ssl-leaf-domain-label", "ssl.overwriteDomain": "--ssl-overwrite-domain",
		"ssl.renew": "--ssl-renew", "ssl.disable": "--ssl-disable", "ssl": "SSL flags",
	}
	computeFields = merge(sslFields, fieldFlags{
		"name": "--name", "clusterPurpose": "--cluster-purpose", "loadBalancerType": "--load-balancer-type",
		"loadBalancerSubnet": "--load-balancer-subnet", "force": "--force", "dryRun": "--dry-run",
	})
	aksCreateFields = merge(computeFields, fieldFlags{
		"settings.agentCount": "--agent-count", "settings.vmSize": "--vm-size", "settings.location": "--location",
		"settings.kubernetesVersion": "--kubernetes-version", "settings.vnetResourceGroupName": "--vnet-resourcegroup-name",
		"settings.vnetName": "--vnet-name", "settings.subnetName": "--subnet-name", "settings.serviceCidr": "--service-cidr",
		"settings.dnsServiceIp": "--dns-service-ip", "settings.dockerBridgeCidr": "--docker-bridge-cidr",
		"settings.credentialMode": "--credential-mode", "settings.vnet…": "--vnet…",
	})
	workspaceSettingsFields = fieldFlags{
		"name": "--name", "region": "--region",
		"settings.dnsZone": "--dns-zone", "settings.acmeDirectoryUrl": "--acme-directory-url", "settings.acmeEmail": "--acme-email",
		"settings.acmeCaCertPem": "--acme-ca-file", "settings.acmeProfile": "--acme-profile", "settings.acmeEabKid": "--acme-eab-kid",
		"settings.acmeEabHmacKey": "--acme-eab-hmac-key", "settings.dns01.provider": "--dns01-provider",
		"settings.dns01.nameserver": "--dns01-nameserver", "settings.dns01.tsigKey": "--dns01-tsig-key",
		"settings.dns01.tsigAlgorithm": "--dns01-tsig-algorithm", "settings.dns01.tsigSecret": "--dns01-tsig-secret",
		"settings.azureSubscriptionId": "--azure-subscription-id", "settings.azureResourceGroup": "--azure-resource-group",
		"settings.azureCredential": "--azure-credential", "settings.controlPlaneEgressCidr": "--control-plane-egress-cidr",
	}
	serviceFields = fieldFlags{
		"name": "--name", "compute": "--compute", "models": "--model", "image": "--image", "command": "--command",
		"port": "--port", "cpu": "--cpu", "memoryGb": "--memory", "cpuLimit": "--cpu-limit", "memoryLimitGb": "--memory-limit",
		"gpu": "--gpu", "replicas": "--replicas", "autoscale.minReplicas": "--autoscale-min", "autoscale.maxReplicas": "--autoscale-max",
		"autoscale.refreshSeconds": "--autoscale-refresh-seconds", "autoscale.targetUtilization": "--autoscale-target-utilization",
		"maxConcurrentRequestsPerContainer": "--max-concurrent-requests", "maxQueueWaitMs": "--max-queue-wait-ms",
		"scoringTimeoutMs": "--scoring-timeout-ms", "auth": "--auth", "namespace": "--namespace", "env": "--env",
		"modelDelivery": "--model-delivery", "coldStartTimeoutMs": "--cold-start-timeout",
		"autoscale.scaleToZeroAfterSeconds": "--scale-to-zero-after",
	}
)

// commandFields are the tables of the commands that send requests, by
// command path without the program's name.
var commandFields = map[string]fieldFlags{
	"compute attach kubernetes": merge(computeFields, fieldFlags{
		"credentials": "--kubeconfig", "settings.context": "--kube-context", "settings.credentialMode": "--credential-mode",
	}),
	"compute attach aks": merge(computeFields, fieldFlags{
		"settings.resourceId": "--resource-id", "settings.resourceGroup": "--resource-group",
		"settings.clusterName": "--cluster-name", "settings.credentialMode": "--credential-mode",
		"settings.agentCount": "--agent-count", "settings.vmSize": "--vm-size", "settings.location": "--location",
		"settings.kubernetesVersion": "--kubernetes-version",
	}),
	"compute create aks":   aksCreateFields,
	"compute create local": computeFields,
	"compute update":       computeFields,
	"compute detach":       {"force": "--force"},
	"compute scale":        {"nodeCount": "--node-count"},
	"workspace create":     workspaceSettingsFields,
	"workspace update":     workspaceSettingsFields,
	"service deploy":       serviceFields,
	"service update":       serviceFields,
	"service regen-key":    {"key": "--key", "value": "--value"},
}

// flagNames rewrites problems of the command at path (as cobra names it,
// "berth compute create aks") in terms of its flags.
type flagNames struct {
	table fieldFlags
	// fields in the order they are replaced: longest first, so that
	// settings.vnetName is not taken for a part of settings.vnetNameX.
	fields []string
}

func flagNamesFor(path string) *flagNames {
	_, path, _ = strings.Cut(path, " ")
	t := merge(workspaceFields, commandFields[path])
	f := &flagNames{table: t}
	for k := range t {
		f.fields = append(f.fields, k)
	}
	slices.SortFunc(f.fields, func(x, y string) int { return cmp.Or(cmp.Compare(len(y), len(x)), strings.Compare(x, y)) })
	return f
}

// fieldRef matches what may be a field in a message: a word, with dots,
// or anything in backquotes.
var fieldRef = regexp.MustCompile("`[^`]+`|[A-Za-z][A-Za-z0-9]*(?:\\.[A-Za-z][A-Za-z0-9…]*)*")

// message is a problem's message with the fields it names written as
// flags. A field with a dot or a capital letter (settings.agentCount,
// loadBalancerSubnet) is one wherever it appears; a plain word (cpu,
// command) only in backquotes or at the start of the message, where the
// API puts the field a problem is about ("cpu -1 must be positive").
func (f *flagNames) message(msg string) string {
	first := true
	return fieldRef.ReplaceAllStringFunc(msg, func(w string) string {
		atStart := first
		first = false
		if strings.HasPrefix(w, "`") {
			if flag, ok := f.table[strings.Trim(w, "`")]; ok {
				return flag
			}
			return w
		}
		flag, ok := f.table[w]
		switch {
		case !ok:
			return w
		case strings.ContainsAny(w, ".ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
			return flag
		case atStart && strings.HasPrefix(msg, w+" "):
			return flag
		}
		return w
	})
}

// detail is one problem as the command line shows it: its message in flag
// terms, after the flag it is about when the message does not say.
func (f *flagNames) detail(d api.ErrorDetail) string {
	msg := f.message(d.Message)
	if flag, ok := f.table[d.Target]; ok && strings.HasPrefix(flag, "-") && !strings.Contains(msg, flag) {
		return flag + ": " + msg
	}
	return msg
}
