package simcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Readiness in kwok's pod-ready stage: the conditions it sets True and the
// containers it marks ready.
var (
	readyCondition = regexp.MustCompile(`status: "True"(\s+)type: (Ready|ContainersReady)\b`)
	readyContainer = regexp.MustCompile(`(\n\s+)ready: true`)
)

// writeContainerStages writes, into dir, kwok's stages with its pod-ready
// stage changed to leave pods not Ready: IPs and the Running phase still
// come from kwok, readiness from the container kubelet's probes.
func writeContainerStages(stagesFile, dir string) (string, error) {
	data, err := os.ReadFile(stagesFile)
	if err != nil {
		return "", err
	}
	docs := strings.Split(string(data), "\n---\n")
	changed := false
	for i, d := range docs {
		if !strings.Contains(d, "kind: Stage") || !strings.Contains(d, "name: pod-ready\n") {
			continue
		}
		n := len(readyCondition.FindAllStringIndex(d, -1))
		if n != 2 || !readyContainer.MatchString(d) {
			return "", fmt.Errorf("kwok's pod-ready stage in %s is not as expected (found %d ready conditions)", stagesFile, n)
		}
		d = readyCondition.ReplaceAllString(d, `status: "False"${1}type: $2`)
		docs[i] = readyContainer.ReplaceAllString(d, "${1}ready: false")
		changed = true
	}
	if !changed {
		return "", fmt.Errorf("no pod-ready stage in %s", stagesFile)
	}
	out := filepath.Join(dir, "kwok-stages-containers.yaml")
	return out, os.WriteFile(out, []byte(strings.Join(docs, "\n---\n")), 0o644)
}
