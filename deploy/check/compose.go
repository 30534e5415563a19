package main

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// fd2's own drain time in the compose file; Docker's stop grace period must exceed it.
const shutdownVariable = "FD2_SHUTDOWN_TIMEOUT"

func checkCompose(path string, found *problems) {
	options, err := cli.NewProjectOptions(
		[]string{path},
		cli.WithWorkingDirectory(filepath.Dir(path)),
		// Only the file's own defaults: the check must not depend on the caller's environment.
		cli.WithEnv(nil),
		cli.WithConsistency(true),
	)
	if err != nil {
		found.add("%s: %v", path, err)
		return
	}
	project, err := options.LoadProject(context.Background())
	if err != nil {
		found.add("%s: %v", path, err)
		return
	}
	for _, name := range []string{"fd2", "lb", "redis", "control-tower", "upstream"} {
		if _, ok := project.Services[name]; !ok {
			found.add("%s: no service %q", path, name)
		}
	}
	fd2, ok := project.Services["fd2"]
	if !ok {
		return
	}
	if fd2.GetScale() != 3 {
		found.add("%s: fd2 runs %d replicas, want 3", path, fd2.GetScale())
	}
	env := func(key string) string {
		if value := fd2.Environment[key]; value != nil {
			return *value
		}
		return ""
	}
	for _, key := range []string{"FD2_REDIS_URL", "FD2_CONTROL_TOWER", "FD2_CONTROL_TOWER_SECRET_REF"} {
		if env(key) == "" {
			found.add("%s: fd2 has no %s", path, key)
		}
	}
	if len(fd2.Secrets) == 0 {
		found.add("%s: fd2 gets its Control Tower secret from no compose secret", path)
	}
	shutdown, err := strconv.ParseFloat(env(shutdownVariable), 64)
	if err != nil {
		found.add("%s: fd2's %s is not a number of seconds", path, shutdownVariable)
	} else if fd2.StopGracePeriod == nil ||
		time.Duration(*fd2.StopGracePeriod) <= time.Duration(shutdown*float64(time.Second)) {
		found.add("%s: fd2's stop_grace_period must exceed %s (%gs)", path, shutdownVariable, shutdown)
	}
	probesReadyz := func(part string) bool { return strings.Contains(part, "/readyz") }
	if fd2.HealthCheck == nil || !slices.ContainsFunc(fd2.HealthCheck.Test, probesReadyz) {
		found.add("%s: fd2's healthcheck does not probe /readyz", path)
	}
	lb := project.Services["lb"]
	if dependency, ok := lb.DependsOn["fd2"]; !ok || dependency.Condition != types.ServiceConditionHealthy {
		found.add("%s: lb must wait for healthy fd2 replicas", path)
	}
	if len(lb.Ports) == 0 {
		found.add("%s: lb publishes no port", path)
	}
}
