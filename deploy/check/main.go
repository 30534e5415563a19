// Command check validates deploy/ without a Docker engine or a cluster: the compose file as Docker
// Compose itself loads it (compose-go: schema, interpolation, references), the Kubernetes
// manifests decoded strictly into the API's own Go types (unknown or misplaced fields fail), and
// the operational rules fd2 depends on. `make deploy-check` runs it; it exits 1 on any problem.
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// problems collects every failure, so one run reports them all.
type problems []string

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	var found problems
	checkCompose(filepath.Join(root, "compose", "compose.yaml"), &found)
	checkKubernetes(filepath.Join(root, "kubernetes"), &found)
	if len(found) > 0 {
		for _, problem := range found {
			fmt.Fprintln(os.Stderr, "deploy-check:", problem)
		}
		os.Exit(1)
	}
	fmt.Println("deploy-check: compose file and Kubernetes manifests are valid")
}
