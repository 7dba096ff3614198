package local

import "os"

// replicaBaseEnv is what a replica's environment holds besides the
// contract and --env: what Windows programs need to start (the system
// directory and PATH).
func replicaBaseEnv() map[string]string {
	env := map[string]string{}
	for _, k := range []string{"SystemRoot", "PATH", "PATHEXT", "TEMP", "TMP"} {
		if v := os.Getenv(k); v != "" {
			env[k] = v
		}
	}
	return env
}
