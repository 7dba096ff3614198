package cli

import (
	"context"
	"strings"
	"time"

	"github.com/berth-ml/berth/api"
	"github.com/berth-ml/berth/client"
	"github.com/spf13/cobra"
)

// The reference's command lines, as its users type them (docs/from-azure-ml.md):
// `az ml computetarget …` is `berth compute …` (computetarget is an alias),
// its `-g RG` names the workspace's resource group, its purposes are
// spelled several ways, and the `az aks` commands it runs beside its own
// map to Berth's equivalents or to an error naming them.

// clusterPurpose reads --cluster-purpose as Berth spells it (FastProd,
// DevTest, in any case) or as the reference's SDK and docs do (FAST_PROD,
// dev-test, devtest): without dashes, underscores and case the two purposes
// still differ, so every such spelling names exactly one. Anything else is
// refused with Berth's spellings.
func clusterPurpose(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch strings.ToLower(strings.NewReplacer("-", "", "_", "", " ", "").Replace(v)) {
	case "fastprod":
		return api.PurposeFastProd, nil
	case "devtest":
		return api.PurposeDevTest, nil
	}
	return "", usageErrorf("--cluster-purpose %q is not a cluster purpose: Berth spells them FastProd (production: at least 12 vCPUs and 3 nodes) and DevTest", v)
}

// registerResourceGroup adds the reference's -g RG to a compute command.
func (a *app) registerResourceGroup(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVarP(&a.resourceGroup, "workspace-resource-group", "g", "",
		"the workspace's Azure resource group, as the reference's -g names it: checked against the workspace's (berth workspace update --azure-resource-group)")
}

// checkResourceGroup compares -g RG with the workspace's Azure resource
// group (Azure's names are case-insensitive) and refuses, changing
// nothing, when they differ.
func (a *app) checkResourceGroup(c *client.Client, ws string) error {
	if a.resourceGroup == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w, err := c.GetWorkspace(ctx, ws)
	if err != nil {
		return err
	}
	switch rg := w.Settings.AzureResourceGroup; {
	case rg == "":
		return usageErrorf("-g %s: workspace %q records no Azure resource group to check it against; set it with `berth workspace update -n %s --azure-resource-group %s`, or leave -g out",
			a.resourceGroup, ws, ws, a.resourceGroup)
	case !strings.EqualFold(rg, a.resourceGroup):
		return usageErrorf("-g %s differs from workspace %q's Azure resource group %s: in Berth -g names the workspace's resource group (the reference's meaning) and is only checked; leave it out, or pick the workspace with -w",
			a.resourceGroup, ws, rg)
	}
	return nil
}

// azAKSCommand maps the `az aks` commands the reference runs beside its
// own: get-versions is `berth versions -l`; the others name what to do.
func (a *app) azAKSCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "aks", Hidden: true, Short: "The reference's `az aks` commands, mapped to Berth's"}
	versions := a.versionsCommand()
	versions.Use, versions.Short = "get-versions -l LOCATION", "Same as `berth versions -l LOCATION`"
	cmd.AddCommand(versions)
	for _, m := range []struct{ use, say string }{
		{"show", "Berth does not read Azure resources itself: run `az aks show -n CLUSTER -g RG --query id -o tsv` and attach the id with `berth compute attach aks -n NAME -i ID`, or attach with `berth compute attach aks -n NAME --resource-group RG --cluster-name CLUSTER`"},
		{"get-credentials", "`berth compute get-credentials -n NAME [-f FILE]` prints the kubeconfig Berth uses for a compute (owners only)"},
		{"create", "`berth compute create aks -n NAME` creates an AKS cluster and installs Berth's front end on it"},
		{"delete", "`berth compute delete -n NAME` deletes an AKS cluster Berth created; `berth compute detach -n NAME` leaves any cluster in place"},
		{"scale", "`berth compute scale -n NAME --node-count N` scales an AKS cluster Berth created"},
	} {
		say := m.say
		cmd.AddCommand(&cobra.Command{Use: m.use, DisableFlagParsing: true, RunE: func(*cobra.Command, []string) error {
			return usageErrorf("`berth aks %s` is not a Berth command: %s", m.use, say)
		}})
	}
	return cmd
}
