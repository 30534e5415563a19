package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// kustomization is the part of kustomization.yaml the check reads: which files are applied.
type kustomization struct {
	Resources []string `json:"resources"`
}

// manifests holds the decoded objects by kind (one of each is expected).
type manifests struct {
	deployment *appsv1.Deployment
	service    *corev1.Service
	configMap  *corev1.ConfigMap
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	secret     *corev1.Secret
	account    *corev1.ServiceAccount
}

func checkKubernetes(dir string, found *problems) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			found.add("scheme: %v", err)
			return
		}
	}
	// Strict: a field the API does not have (a typo, a wrong level) is an error, as the API
	// server's strict field validation makes it.
	decoder := serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		found.add("%v", err)
		return
	}
	var kustom kustomization
	if err := yaml.UnmarshalStrict(raw, &kustom, yaml.DisallowUnknownFields); err != nil {
		// Other kustomization fields are kustomize's; only the resource list is read here.
		if err := yaml.Unmarshal(raw, &kustom); err != nil {
			found.add("kustomization.yaml: %v", err)
			return
		}
	}
	var all manifests
	// The example Secret is not applied, but must still be a valid Secret of the right shape.
	for _, name := range append(slices.Clone(kustom.Resources), "secret.example.yaml") {
		decodeFile(filepath.Join(dir, name), decoder, &all, found)
	}
	checkObjects(&all, found)
}

func decodeFile(path string, decoder runtime.Decoder, all *manifests, found *problems) {
	file, err := os.Open(path)
	if err != nil {
		found.add("%v", err)
		return
	}
	defer file.Close()
	reader := utilyaml.NewYAMLReader(bufioReader(file))
	for index := 0; ; index++ {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			found.add("%s: %v", path, err)
			return
		}
		if len(bytes.TrimSpace(document)) == 0 {
			continue
		}
		object, kind, err := decoder.Decode(document, nil, nil)
		if err != nil {
			found.add("%s (document %d): %v", path, index+1, err)
			// A strict-decoding error still yields the object: its other rules are checked too.
			if !runtime.IsStrictDecodingError(err) || object == nil {
				continue
			}
		}
		where := fmt.Sprintf("%s: %s", filepath.Base(path), kind.Kind)
		switch typed := object.(type) {
		case *appsv1.Deployment:
			all.deployment = typed
			checkName(where, typed.Name, found)
		case *corev1.Service:
			all.service = typed
			checkName(where, typed.Name, found)
		case *corev1.ConfigMap:
			all.configMap = typed
			checkName(where, typed.Name, found)
		case *policyv1.PodDisruptionBudget:
			all.pdb = typed
			checkName(where, typed.Name, found)
		case *autoscalingv2.HorizontalPodAutoscaler:
			all.hpa = typed
			checkName(where, typed.Name, found)
		case *corev1.Secret:
			all.secret = typed
			checkName(where, typed.Name, found)
		case *corev1.ServiceAccount:
			all.account = typed
			checkName(where, typed.Name, found)
		default:
			found.add("%s: a kind this check does not know", where)
		}
	}
}

func checkName(where, name string, found *problems) {
	for _, message := range validation.IsDNS1123Subdomain(name) {
		found.add("%s: name %q: %s", where, name, message)
	}
}

func checkObjects(all *manifests, found *problems) {
	for what, missing := range map[string]bool{
		"Deployment": all.deployment == nil, "Service": all.service == nil,
		"ConfigMap": all.configMap == nil, "PodDisruptionBudget": all.pdb == nil,
		"HorizontalPodAutoscaler": all.hpa == nil, "Secret (example)": all.secret == nil,
		"ServiceAccount": all.account == nil,
	} {
		if missing {
			found.add("kubernetes: no %s", what)
		}
	}
	if all.deployment == nil || all.configMap == nil {
		return
	}
	deployment := all.deployment
	podLabels := labels.Set(deployment.Spec.Template.Labels)
	selects := func(what string, selector map[string]string) {
		if len(selector) == 0 || !labels.SelectorFromSet(selector).Matches(podLabels) {
			found.add("%s does not select the Deployment's pods", what)
		}
	}
	if deployment.Spec.Selector == nil {
		found.add("Deployment has no selector")
	} else {
		selects("Deployment selector", deployment.Spec.Selector.MatchLabels)
	}
	if all.service != nil {
		selects("Service", all.service.Spec.Selector)
	}
	if all.pdb != nil {
		if all.pdb.Spec.Selector == nil {
			found.add("PodDisruptionBudget has no selector")
		} else {
			selects("PodDisruptionBudget", all.pdb.Spec.Selector.MatchLabels)
		}
		if all.pdb.Spec.MaxUnavailable == nil && all.pdb.Spec.MinAvailable == nil {
			found.add("PodDisruptionBudget limits nothing")
		}
	}
	if all.hpa != nil {
		target := all.hpa.Spec.ScaleTargetRef
		if target.Kind != "Deployment" || target.Name != deployment.Name {
			found.add("HorizontalPodAutoscaler scales %s/%s, not the Deployment", target.Kind, target.Name)
		}
		if all.hpa.Spec.MinReplicas == nil || *all.hpa.Spec.MinReplicas < 2 {
			found.add("HorizontalPodAutoscaler may scale below 2 replicas")
		}
		if all.pdb != nil && all.pdb.Spec.MaxUnavailable != nil && all.hpa.Spec.MinReplicas != nil &&
			all.pdb.Spec.MaxUnavailable.IntValue() >= int(*all.hpa.Spec.MinReplicas) {
			found.add("PodDisruptionBudget allows every pod down at the autoscaler's minimum")
		}
	}
	checkPod(deployment, all.configMap, all.secret, found)
}

func checkPod(deployment *appsv1.Deployment, config *corev1.ConfigMap, secret *corev1.Secret, found *problems) {
	pod := deployment.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		found.add("Deployment: want one container, have %d", len(pod.Containers))
		return
	}
	container := pod.Containers[0]
	probe := func(what string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			found.add("Deployment: %s must be an HTTP GET of %s", what, path)
			return
		}
		port := p.HTTPGet.Port.String()
		if !slices.ContainsFunc(container.Ports, func(c corev1.ContainerPort) bool {
			return c.Name == port || strconv.Itoa(int(c.ContainerPort)) == port
		}) {
			found.add("Deployment: %s probes port %s, which the container does not expose", what, port)
		}
	}
	probe("readinessProbe", container.ReadinessProbe, "/readyz")
	probe("livenessProbe", container.LivenessProbe, "/healthz")

	// Graceful termination: preStop pause + fd2's drain must end before SIGKILL.
	shutdown, err := strconv.ParseFloat(config.Data["FD2_SHUTDOWN_TIMEOUT"], 64)
	if err != nil {
		found.add("ConfigMap: FD2_SHUTDOWN_TIMEOUT is not a number of seconds")
	}
	pause := int64(0)
	if container.Lifecycle != nil && container.Lifecycle.PreStop != nil && container.Lifecycle.PreStop.Sleep != nil {
		pause = container.Lifecycle.PreStop.Sleep.Seconds
	}
	if pod.TerminationGracePeriodSeconds == nil ||
		float64(*pod.TerminationGracePeriodSeconds) <= float64(pause)+shutdown {
		found.add("Deployment: terminationGracePeriodSeconds must exceed the preStop pause (%ds) + FD2_SHUTDOWN_TIMEOUT (%gs)", pause, shutdown)
	}

	// Secrets by reference: no secret value in the pod spec or the ConfigMap.
	for _, variable := range container.Env {
		if variable.Name == "FD2_REDIS_URL" && (variable.ValueFrom == nil || variable.ValueFrom.SecretKeyRef == nil) {
			found.add("Deployment: FD2_REDIS_URL must come from a Secret (secretKeyRef)")
		}
	}
	if !slices.ContainsFunc(container.Env, func(v corev1.EnvVar) bool { return v.Name == "FD2_REDIS_URL" }) {
		found.add("Deployment: no FD2_REDIS_URL (the replicas share limits and manifests through Redis)")
	}
	for key, value := range config.Data {
		if len(key) > 4 && key[len(key)-4:] == "_REF" && !hasScheme(value, "file:", "env:", "vault:", "config:") {
			found.add("ConfigMap: %s is not a secret reference", key)
		}
	}
	checkSecretKeys(pod, secret, found)

	context := container.SecurityContext
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		found.add("Deployment: pods must run as non-root")
	}
	if context == nil || context.ReadOnlyRootFilesystem == nil || !*context.ReadOnlyRootFilesystem ||
		context.AllowPrivilegeEscalation == nil || *context.AllowPrivilegeEscalation {
		found.add("Deployment: container needs a read-only root and no privilege escalation")
	}
	if container.Resources.Requests.Cpu().IsZero() {
		found.add("Deployment: no CPU request (the autoscaler's utilisation needs one)")
	}
}

// checkSecretKeys: every key the pod reads from the Secret exists in the example Secret.
func checkSecretKeys(pod corev1.PodSpec, secret *corev1.Secret, found *problems) {
	if secret == nil {
		return
	}
	has := func(key string) bool {
		_, inString := secret.StringData[key]
		_, inData := secret.Data[key]
		return inString || inData
	}
	for _, volume := range pod.Volumes {
		if volume.Secret == nil {
			continue
		}
		for _, item := range volume.Secret.Items {
			if volume.Secret.SecretName != secret.Name || !has(item.Key) {
				found.add("Deployment: volume %s reads key %q that the Secret example lacks", volume.Name, item.Key)
			}
		}
	}
	for _, variable := range pod.Containers[0].Env {
		if ref := variable.ValueFrom; ref != nil && ref.SecretKeyRef != nil &&
			(ref.SecretKeyRef.Name != secret.Name || !has(ref.SecretKeyRef.Key)) {
			found.add("Deployment: %s reads key %q that the Secret example lacks", variable.Name, ref.SecretKeyRef.Key)
		}
	}
}

func hasScheme(value string, schemes ...string) bool {
	return slices.ContainsFunc(schemes, func(s string) bool { return len(value) > len(s) && value[:len(s)] == s })
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
