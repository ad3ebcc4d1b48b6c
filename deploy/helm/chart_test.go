package helm

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

const chartDir = "jetai"

// monitor is the part of the Prometheus Operator's ServiceMonitor and
// PodMonitor the chart writes (their Go types are not a dependency here);
// decoding into it strictly still catches a misspelt field of ours.
type monitor struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       monitorSpec    `json:"spec"`
}

type monitorSpec struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Endpoints           []monitorEndpoint `json:"endpoints,omitempty"`
	PodMetricsEndpoints []monitorEndpoint `json:"podMetricsEndpoints,omitempty"`
}

type monitorEndpoint struct {
	Port     string `json:"port"`
	Path     string `json:"path"`
	Interval string `json:"interval"`
}

// rendered is one render's objects by kind.
type rendered struct {
	workload   *corev1.PodTemplateSpec
	kind       string
	daemonSet  *appsv1.DaemonSet
	deployment *appsv1.Deployment
	configMap  *corev1.ConfigMap
	service    *corev1.Service
	pdb        *policyv1.PodDisruptionBudget
	monitors   []monitor
}

func render(t *testing.T, values string) (rendered, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := common.ReadValues([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "edge", Namespace: "inference", IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		return rendered{}, err
	}
	out, err := engine.Engine{Strict: true}.Render(ch, rv)
	if err != nil {
		return rendered{}, err
	}
	return decodeAll(t, ch, out), nil
}

// strict decodes one YAML document into v, refusing unknown fields.
func strict(t *testing.T, name string, doc []byte, v any) {
	t.Helper()
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%s: not YAML: %v\n%s", name, err, doc)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, doc)
	}
}

func decodeAll(t *testing.T, ch *chart.Chart, out map[string]string) rendered {
	t.Helper()
	var r rendered
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(n, "NOTES.txt") {
			continue
		}
		for _, doc := range strings.Split(out[n], "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 DaemonSet":
				r.daemonSet = &appsv1.DaemonSet{}
				strict(t, n, []byte(doc), r.daemonSet)
				r.workload, r.kind = &r.daemonSet.Spec.Template, "DaemonSet"
			case "apps/v1 Deployment":
				r.deployment = &appsv1.Deployment{}
				strict(t, n, []byte(doc), r.deployment)
				r.workload, r.kind = &r.deployment.Spec.Template, "Deployment"
			case "v1 ConfigMap":
				r.configMap = &corev1.ConfigMap{}
				strict(t, n, []byte(doc), r.configMap)
			case "v1 Service":
				r.service = &corev1.Service{}
				strict(t, n, []byte(doc), r.service)
			case "policy/v1 PodDisruptionBudget":
				r.pdb = &policyv1.PodDisruptionBudget{}
				strict(t, n, []byte(doc), r.pdb)
			case "monitoring.coreos.com/v1 ServiceMonitor", "monitoring.coreos.com/v1 PodMonitor":
				var m monitor
				strict(t, n, []byte(doc), &m)
				r.monitors = append(r.monitors, m)
			default:
				t.Fatalf("%s: unexpected object %s %s", n, head.APIVersion, head.Kind)
			}
		}
	}
	return r
}

func TestLint(t *testing.T) {
	for _, values := range []map[string]any{nil, {"kind": "Deployment", "replicas": 2}} {
		res := lint.RunAll(chartDir, values, "inference")
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("lint %v: %s", values, m)
			}
		}
	}
}

func TestRender(t *testing.T) {
	cases := []struct {
		name   string
		values string
		check  func(t *testing.T, r rendered)
	}{
		{"defaults: a DaemonSet on labelled Jetson nodes", ``, func(t *testing.T, r rendered) {
			if r.kind != "DaemonSet" || r.deployment != nil {
				t.Fatalf("kind %s", r.kind)
			}
			p := r.workload.Spec
			if p.NodeSelector["jetai.io/inference"] != "true" || len(p.Tolerations) != 1 || p.Tolerations[0].Key != "jetai.io/inference" {
				t.Errorf("node selection: %v %v", p.NodeSelector, p.Tolerations)
			}
			if p.RuntimeClassName != nil {
				t.Errorf("runtimeClassName %q without gpu.runtimeClassName", *p.RuntimeClassName)
			}
			vol := volumes(p)
			if vol["models"].HostPath == nil || vol["models"].HostPath.Path != "/var/lib/jetai" || vol["cache"].HostPath == nil || vol["cache"].HostPath.Path != "/var/cache/jetai" {
				t.Errorf("model and cache volumes: %+v %+v", vol["models"], vol["cache"])
			}
			if r.pdb == nil || r.pdb.Spec.MaxUnavailable.IntValue() != 1 {
				t.Errorf("PDB: %+v", r.pdb)
			}
			if len(r.monitors) != 0 {
				t.Errorf("monitors without being asked: %d", len(r.monitors))
			}
			if !strings.Contains(r.configMap.Data["jetai.hcl"], `log_format = "json"`) {
				t.Errorf("config:\n%s", r.configMap.Data["jetai.hcl"])
			}
		}},
		{"a Deployment with claims, GPU, drop-ins and monitors", `
kind: Deployment
replicas: 3
models: {existingClaim: jetai-models}
cache: {existingClaim: jetai-cache}
gpu:
  runtimeClassName: nvidia
  supplementalGroups: [44, 104]
dropins:
  chat.hcl: |
    model "chat" {
      path = "/var/lib/jetai/models/chat.gguf"
    }
serviceMonitor: {enabled: true, labels: {release: prom}}
podMonitor: {enabled: true}
podDisruptionBudget: {enabled: false}
`, func(t *testing.T, r rendered) {
			if r.kind != "Deployment" || *r.deployment.Spec.Replicas != 3 {
				t.Fatalf("kind %s", r.kind)
			}
			p := r.workload.Spec
			if p.RuntimeClassName == nil || *p.RuntimeClassName != "nvidia" {
				t.Errorf("runtimeClassName %v", p.RuntimeClassName)
			}
			if g := p.SecurityContext.SupplementalGroups; len(g) != 2 || g[0] != 44 {
				t.Errorf("supplementalGroups %v", g)
			}
			env := map[string]string{}
			for _, e := range p.Containers[0].Env {
				env[e.Name] = e.Value
			}
			if env["NVIDIA_VISIBLE_DEVICES"] != "all" || env["NVIDIA_DRIVER_CAPABILITIES"] == "" {
				t.Errorf("env %v", env)
			}
			vol := volumes(p)
			if vol["models"].PersistentVolumeClaim == nil || vol["models"].PersistentVolumeClaim.ClaimName != "jetai-models" || vol["models"].HostPath != nil {
				t.Errorf("models volume %+v", vol["models"])
			}
			items := map[string]string{}
			for _, it := range vol["config"].ConfigMap.Items {
				items[it.Key] = it.Path
			}
			if items["jetai.hcl"] != "jetai.hcl" || items["dropin-chat.hcl"] != "jetai.d/chat.hcl" {
				t.Errorf("config items %v", items)
			}
			if !strings.Contains(r.configMap.Data["dropin-chat.hcl"], `model "chat"`) {
				t.Errorf("drop-in data %v", r.configMap.Data)
			}
			if r.pdb != nil {
				t.Error("PDB while disabled")
			}
			if len(r.monitors) != 2 || r.monitors[0].Kind != "ServiceMonitor" || r.monitors[0].Spec.Endpoints[0].Path != "/metrics" ||
				r.monitors[1].Kind != "PodMonitor" || r.monitors[1].Spec.PodMetricsEndpoints[0].Port != "http" {
				t.Errorf("monitors %+v", r.monitors)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := render(t, c.values)
			if err != nil {
				t.Fatal(err)
			}
			if r.workload == nil || r.configMap == nil || r.service == nil {
				t.Fatalf("missing objects: %+v", r)
			}
			checkCommon(t, r)
			c.check(t, r)
		})
	}
}

// checkCommon checks what every values set keeps: probes, the hardening and
// the mounts.
func checkCommon(t *testing.T, r rendered) {
	t.Helper()
	p := r.workload.Spec
	if len(p.Containers) != 1 {
		t.Fatalf("%d containers", len(p.Containers))
	}
	c := p.Containers[0]
	probe := func(name string, pr *corev1.Probe, path string) {
		if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Path != path || pr.HTTPGet.Port.String() != "http" {
			t.Errorf("%s probe: %+v, want GET %s on port http", name, pr, path)
		}
	}
	probe("startup", c.StartupProbe, "/health")
	probe("liveness", c.LivenessProbe, "/health")
	probe("readiness", c.ReadinessProbe, "/ready")
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8000 {
		t.Errorf("ports %+v", c.Ports)
	}
	ps, sc := p.SecurityContext, c.SecurityContext
	switch {
	case ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || *ps.RunAsUser != 10001 || *ps.RunAsGroup != 10001 || *ps.FSGroup != 10001:
		t.Errorf("pod securityContext %+v", ps)
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Privileged == nil || *sc.Privileged || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" ||
		len(sc.Capabilities.Add) != 0 || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Errorf("container securityContext %+v", sc)
	}
	if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
		t.Error("the service account token is mounted; jetaid does not talk to the API server")
	}
	if p.TerminationGracePeriodSeconds == nil || *p.TerminationGracePeriodSeconds < 35 {
		t.Errorf("terminationGracePeriodSeconds %v: jetaid drains for 30 s", p.TerminationGracePeriodSeconds)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
		if m.SubPath != "" {
			t.Errorf("mount %s uses subPath: a ConfigMap update would not reach it", m.MountPath)
		}
	}
	vol := volumes(p)
	for path, name := range map[string]string{"/etc/jetai": "config", "/var/lib/jetai": "models", "/var/cache/jetai": "cache", "/run/jetai": "run", "/tmp": "tmp"} {
		m, ok := mounts[path]
		if !ok || m.Name != name {
			t.Errorf("no mount of volume %s at %s: %+v", name, path, c.VolumeMounts)
			continue
		}
		if _, ok := vol[name]; !ok {
			t.Errorf("mount %s names no volume %s", path, name)
		}
	}
	if !mounts["/etc/jetai"].ReadOnly || vol["config"].ConfigMap == nil || vol["config"].ConfigMap.Name != r.configMap.Name {
		t.Errorf("config mount %+v, volume %+v", mounts["/etc/jetai"], vol["config"])
	}
	if vol["run"].EmptyDir == nil || vol["tmp"].EmptyDir == nil {
		t.Errorf("/run/jetai and /tmp must be emptyDirs (read-only root)")
	}
	sel := r.service.Spec.Selector
	for k, v := range sel {
		if r.workload.Labels[k] != v {
			t.Errorf("the Service's selector %v does not match the pods' labels %v", sel, r.workload.Labels)
		}
	}
	if r.service.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("service port %+v", r.service.Spec.Ports)
	}
}

func volumes(p corev1.PodSpec) map[string]corev1.VolumeSource {
	out := map[string]corev1.VolumeSource{}
	for _, v := range p.Volumes {
		out[v.Name] = v.VolumeSource
	}
	return out
}

func TestRenderRefuses(t *testing.T) {
	if _, err := render(t, `kind: StatefulSet`); err == nil || !strings.Contains(err.Error(), "kind must be DaemonSet or Deployment") {
		t.Fatalf("kind StatefulSet: %v", err)
	}
}
