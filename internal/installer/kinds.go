package installer

import "k8s.io/apimachinery/pkg/runtime/schema"

// Kind is a resource kind Berth installs.
type Kind struct {
	Kind       string
	GVR        schema.GroupVersionResource
	APIVersion string
	Namespaced bool
}

// The kinds Berth installs, in the order they are removed (workloads first,
// the namespace — the attachment marker — last).
var (
	KindDeployment          = Kind{"Deployment", schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, "apps/v1", true}
	KindService             = Kind{"Service", schema.GroupVersionResource{Version: "v1", Resource: "services"}, "v1", true}
	KindPodDisruptionBudget = Kind{"PodDisruptionBudget", schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}, "policy/v1", true}
	KindConfigMap           = Kind{"ConfigMap", schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, "v1", true}
	KindSecret              = Kind{"Secret", schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, "v1", true}
	KindRoleBinding         = Kind{"RoleBinding", schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}, "rbac.authorization.k8s.io/v1", true}
	KindRole                = Kind{"Role", schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "roles"}, "rbac.authorization.k8s.io/v1", true}
	KindServiceAccount      = Kind{"ServiceAccount", schema.GroupVersionResource{Version: "v1", Resource: "serviceaccounts"}, "v1", true}
	KindClusterRoleBinding  = Kind{"ClusterRoleBinding", schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterrolebindings"}, "rbac.authorization.k8s.io/v1", false}
	KindClusterRole         = Kind{"ClusterRole", schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "clusterroles"}, "rbac.authorization.k8s.io/v1", false}
	KindPod                 = Kind{"Pod", schema.GroupVersionResource{Version: "v1", Resource: "pods"}, "v1", true}
	KindNamespace           = Kind{"Namespace", schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, "v1", false}
)

// RemovalOrder lists the kinds detach deletes, in order; pods are only
// waited for (their Deployments own them).
var RemovalOrder = []Kind{KindDeployment, KindService, KindPodDisruptionBudget, KindConfigMap, KindSecret,
	KindRoleBinding, KindRole, KindServiceAccount, KindClusterRoleBinding, KindClusterRole}
