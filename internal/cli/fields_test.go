package cli

import (
	"testing"

	"github.com/berth-ml/berth/api"
)

// TestFlagNames: the API names fields, the command line shows its flags.
func TestFlagNames(t *testing.T) {
	aks := flagNamesFor("berth compute create aks")
	for _, tc := range []struct {
		d    api.ErrorDetail
		want string
	}{
		{api.ErrorDetail{Target: "settings.agentCount", Message: "settings.agentCount must be a positive integer (got 0)"},
			"--agent-count must be a positive integer (got 0)"},
		{api.ErrorDetail{Target: "settings.vnetResourceGroupName", Message: "missing: settings.vnetResourceGroupName, settings.vnetName"},
			"missing: --vnet-resourcegroup-name, --vnet-name"},
		{api.ErrorDetail{Target: "ssl.certPem", Message: "the certificate (ssl.certPem) is not PEM"},
			"the certificate (--ssl-cert-file) is not PEM"},
		{api.ErrorDetail{Target: "ssl.keyPem", Message: "a custom certificate needs the certificate, the key and the cname together"},
			"--ssl-key-file: a custom certificate needs the certificate, the key and the cname together"},
		{api.ErrorDetail{Target: "ssl.leafDomainLabel", Message: "set workspace ml's DNS zone (workspace.settings.dnsZone)"},
			"--ssl-leaf-domain-label: set workspace ml's DNS zone (berth workspace update --dns-zone)"},
		{api.ErrorDetail{Target: "name", Message: "compute name \"x_\" must start with a letter"},
			"--name: compute name \"x_\" must start with a letter"},
	} {
		if got := aks.detail(tc.d); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.d.Message, got, tc.want)
		}
	}
	svc := flagNamesFor("berth service deploy")
	for msg, want := range map[string]string{
		"cpu -1 must be positive":                                          "--cpu -1 must be positive",
		"cpuLimit 0.5 must be at least the CPU request 1":                  "--cpu-limit 0.5 must be at least the CPU request 1",
		"the local compute runs each replica as a process":                 "the local compute runs each replica as a process",
		"give `image` or `command`, not both":                              "give --image or --command, not both",
		"run `berth versions -l X` first":                                  "run `berth versions -l X` first",
		"autoscale.maxReplicas 1 must be at least autoscale.minReplicas 2": "--autoscale-max 1 must be at least --autoscale-min 2",
	} {
		if got := svc.message(msg); got != want {
			t.Errorf("%q:\n got %q\nwant %q", msg, got, want)
		}
	}
	// A command without a table leaves the fields as they are.
	if got := flagNamesFor("berth compute wait").message("settings.vmSize is too small"); got != "settings.vmSize is too small" {
		t.Errorf("no table: %q", got)
	}
}
