//go:build unix

package local

// ReplicaPath is a local replica's PATH unless its --env sets one.
const ReplicaPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// replicaBaseEnv is what a replica's environment holds besides the
// contract and --env: a PATH of the system's directories.
func replicaBaseEnv() map[string]string { return map[string]string{"PATH": ReplicaPath} }
