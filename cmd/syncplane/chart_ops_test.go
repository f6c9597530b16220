package main

// Tests of the Helm chart (charts/syncplane). The settings mapping is
// checked on the files; rendering needs helm and runs when SYNCPLANE_HELM
// is set (scripts/test.sh step "helm" sets it to the binary it installed).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/syncplane/syncplane/tenant"
)

const chartDir = "../../charts/syncplane"

// secretSettings are the settings that carry credentials: the chart keeps
// them in a Secret (values key "secrets"), every other one in the ConfigMap
// (values key "config").
var secretSettings = map[string]bool{"SYNCPLANE_DATABASE_URL": true, "SYNCPLANE_CLUSTERS": true, "SYNCPLANE_SESSION_SECRET": true, "SYNCPLANE_SEAL_KEYS": true}

// migrateSettings are the secret settings `syncplane migrate up` needs: the
// migration hook Job's own Secret carries them.
var migrateSettings = map[string]bool{"SYNCPLANE_DATABASE_URL": true, "SYNCPLANE_CLUSTERS": true}

// chartDefaultOverrides are settings whose chart default deliberately
// differs from the binary's, with the reason.
var chartDefaultOverrides = map[string]string{
	"SYNCPLANE_LOG_FORMAT": "json", // log collectors parse JSON
}

// valuesKey maps SYNCPLANE_DB_MAX_CONNS to dbMaxConns.
func valuesKey(env string) string {
	parts := strings.Split(strings.ToLower(strings.TrimPrefix(env, "SYNCPLANE_")), "_")
	for i := 1; i < len(parts); i++ {
		parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
	}
	return strings.Join(parts, "")
}

func readValues(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	require.NoError(t, err)
	var v map[string]any
	require.NoError(t, yaml.Unmarshal(b, &v))
	return v
}

func TestValuesKey(t *testing.T) {
	for env, key := range map[string]string{
		"SYNCPLANE_DATABASE_URL":       "databaseUrl",
		"SYNCPLANE_DB_MAX_CONNS":       "dbMaxConns",
		"SYNCPLANE_JWKS_ALLOW_PRIVATE": "jwksAllowPrivate",
		"SYNCPLANE_CLUSTERS":           "clusters",
	} {
		require.Equal(t, key, valuesKey(env), env)
	}
}

// TestChartValuesMatchSettings: every SYNCPLANE_* setting of config.go is
// one chart value (config.<key> or secrets.<key>) with the binary's
// default, rendered under its own name, in the schema and in the README;
// and the chart has no setting the binary does not know.
func TestChartValuesMatchSettings(t *testing.T) {
	values := readValues(t)
	cfgVals, _ := values["config"].(map[string]any)
	secVals, _ := values["secrets"].(map[string]any)
	existingKeys, _ := values["existingSecretKeys"].(map[string]any)
	require.NotNil(t, cfgVals, "values.yaml has no config")
	require.NotNil(t, secVals, "values.yaml has no secrets")

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(chartDir, name))
		require.NoError(t, err)
		return string(b)
	}
	secret, job := read("templates/secret.yaml"), read("templates/migrations-job.yaml")
	helpers, readme := read("templates/_helpers.tpl"), read("README.md")
	var schema struct {
		Properties map[string]struct {
			Properties map[string]struct {
				Description string `json:"description"`
			} `json:"properties"`
			Required []string `json:"required"`
		} `json:"properties"`
	}
	require.NoError(t, json.Unmarshal([]byte(read("values.schema.json")), &schema))

	want := map[string]map[string]bool{"config": {}, "secrets": {}}
	for _, s := range settings {
		key := valuesKey(s.Env)
		section, vals := "config", cfgVals
		if secretSettings[s.Env] {
			section, vals = "secrets", secVals
		}
		want[section][key] = true
		path := section + "." + key
		v, ok := vals[key]
		if !assertTrue(t, ok, "%s has no chart value %s in values.yaml", s.Env, path) {
			continue
		}
		def := s.Default
		if o, ok := chartDefaultOverrides[s.Env]; ok {
			def = o
		}
		require.Equal(t, def, fmt.Sprint(v), "default of %s (%s) differs from config.go", path, s.Env)
		prop := schema.Properties[section].Properties[key]
		require.Contains(t, prop.Description, s.Env, "values.schema.json %s must name %s", path, s.Env)
		require.Contains(t, schema.Properties[section].Required, key, "values.schema.json must require %s", path)
		require.Contains(t, readme, "`"+path+"`", "README.md must list %s", path)
		require.Contains(t, readme, s.Env, "README.md must name %s", s.Env)
		if section != "config" { // configmap.yaml renders every config key by name; the render tests check it
			require.Regexp(t, `(?m)^\s*`+s.Env+`: \{\{ .* \| b64enc`, secret, "secret.yaml must render %s", s.Env)
			require.Contains(t, secret, ".Values.secrets."+key, "secret.yaml must render %s from %s", s.Env, path)
			if migrateSettings[s.Env] {
				require.Regexp(t, `(?m)^\s*`+s.Env+`: \{\{ \.Values\.secrets\.`+key+` \| b64enc`, job, "the migrations hook Secret must carry %s", s.Env)
			}
			require.Contains(t, existingKeys, key, "existingSecretKeys must name the key of %s", s.Env)
			require.Contains(t, helpers, "- name: "+s.Env, "the secret env helper must set %s", s.Env)
		}
	}
	for section, vals := range map[string]map[string]any{"config": cfgVals, "secrets": secVals} {
		for key := range vals {
			require.True(t, want[section][key], "values.yaml %s.%s is no setting of the binary (config.go)", section, key)
		}
		for key := range schema.Properties[section].Properties {
			require.True(t, want[section][key], "values.schema.json %s.%s is no setting of the binary", section, key)
		}
	}
	for _, m := range regexp.MustCompile(`SYNCPLANE_[A-Z_]+`).FindAllString(secret, -1) {
		require.True(t, slices.ContainsFunc(settings, func(s setting) bool { return s.Env == m }), "chart renders unknown setting %s", m)
	}
}

// TestChartReadmeListsEveryValue: every leaf of values.yaml is in the README.
func TestChartReadmeListsEveryValue(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	require.NoError(t, err)
	readme := string(b)
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 && !strings.HasSuffix(prefix, "labels") &&
			!strings.HasSuffix(prefix, "Probe") && !strings.HasSuffix(prefix, "ecurityContext") &&
			!strings.HasSuffix(prefix, "resources") && prefix != "metrics.dashboard.labels" {
			for k, sub := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, sub)
			}
			return
		}
		require.Contains(t, readme, "`"+prefix+"`", "charts/syncplane/README.md does not list the value %s", prefix)
	}
	walk("", readValues(t))
}

// --- rendering (needs helm) ------------------------------------------------

// helmBin returns the helm binary, or skips the test when SYNCPLANE_HELM is
// unset or helm is missing. SYNCPLANE_HELM is a path or "1" for PATH.
func helmBin(t *testing.T) string {
	t.Helper()
	h := os.Getenv("SYNCPLANE_HELM")
	if h == "" {
		t.Skip("SYNCPLANE_HELM is not set (scripts/test.sh step helm sets it)")
	}
	if h == "1" {
		h = "helm"
	}
	p, err := exec.LookPath(h)
	if err != nil {
		t.Skipf("helm not found (%s): %v", h, err)
	}
	return p
}

type k8sMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type k8sObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   k8sMeta           `json:"metadata"`
	Spec       json.RawMessage   `json:"spec"`
	Data       map[string]string `json:"data"`
	Raw        map[string]any    `json:"-"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name     string `json:"name"`
			Key      string `json:"key"`
			Optional *bool  `json:"optional"`
		} `json:"secretKeyRef"`
	} `json:"valueFrom"`
}

type container struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	Ports   []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	Env     []envVar `json:"env"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `json:"name"`
		} `json:"configMapRef"`
	} `json:"envFrom"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	StartupProbe   *probe `json:"startupProbe"`
	Resources      struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool `json:"runAsNonRoot"`
		Capabilities             struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
}

type podTemplate struct {
	Metadata k8sMeta `json:"metadata"`
	Spec     struct {
		ServiceAccountName            string `json:"serviceAccountName"`
		AutomountServiceAccountToken  *bool  `json:"automountServiceAccountToken"`
		TerminationGracePeriodSeconds int    `json:"terminationGracePeriodSeconds"`
		RestartPolicy                 string `json:"restartPolicy"`
		SecurityContext               struct {
			RunAsNonRoot   *bool `json:"runAsNonRoot"`
			RunAsUser      int   `json:"runAsUser"`
			SeccompProfile *struct {
				Type string `json:"type"`
			} `json:"seccompProfile"`
		} `json:"securityContext"`
		Containers                []container `json:"containers"`
		TopologySpreadConstraints []struct {
			MaxSkew           int    `json:"maxSkew"`
			TopologyKey       string `json:"topologyKey"`
			WhenUnsatisfiable string `json:"whenUnsatisfiable"`
			LabelSelector     struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"labelSelector"`
		} `json:"topologySpreadConstraints"`
		Volumes []struct {
			Name     string `json:"name"`
			EmptyDir any    `json:"emptyDir"`
		} `json:"volumes"`
	} `json:"spec"`
}

type selector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type rendered struct {
	t    *testing.T
	objs []k8sObject
}

func (r rendered) all(kind string) []k8sObject {
	var out []k8sObject
	for _, o := range r.objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r rendered) one(kind string) k8sObject {
	r.t.Helper()
	objs := r.all(kind)
	require.Len(r.t, objs, 1, "want exactly one %s", kind)
	return objs[0]
}

func (r rendered) has(kind string) bool { return len(r.all(kind)) > 0 }

func spec[T any](t *testing.T, o k8sObject) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(o.Spec, &v), "%s %s spec", o.Kind, o.Metadata.Name)
	return v
}

// helmTemplate renders the chart as release "sp" in namespace "prod".
func helmTemplate(t *testing.T, helm string, args ...string) (rendered, error) {
	t.Helper()
	cmd := exec.Command(helm, append([]string{"template", "sp", chartDir, "--namespace", "prod"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return rendered{}, fmt.Errorf("helm template %v: %w\n%s", args, err, stderr.String())
	}
	// helm template prints nothing on stderr when the chart is clean.
	require.Empty(t, strings.TrimSpace(stderr.String()), "helm template %v warned", args)
	r := rendered{t: t}
	for _, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(stdout.String(), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var o k8sObject
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o), "rendered document:\n%s", doc)
		if o.Kind == "" {
			continue // only comments
		}
		require.NoError(t, yaml.Unmarshal([]byte(doc), &o.Raw))
		r.objs = append(r.objs, o)
	}
	return r, nil
}

func subsetOf(sub, super map[string]string) bool {
	if len(sub) == 0 {
		return false
	}
	for k, v := range sub {
		if super[k] != v {
			return false
		}
	}
	return true
}

type deploymentSpec struct {
	Replicas *int        `json:"replicas"`
	Selector selector    `json:"selector"`
	Template podTemplate `json:"template"`
}

type jobSpec struct {
	BackoffLimit int         `json:"backoffLimit"`
	Template     podTemplate `json:"template"`
}

// checkSecure asserts the pod and container hardening every pod must have.
func checkSecure(t *testing.T, what string, pt podTemplate) {
	t.Helper()
	ps := pt.Spec.SecurityContext
	require.True(t, ps.RunAsNonRoot != nil && *ps.RunAsNonRoot, "%s: pod runAsNonRoot", what)
	require.NotZero(t, ps.RunAsUser, "%s: pod runAsUser", what)
	require.True(t, ps.SeccompProfile != nil && ps.SeccompProfile.Type == "RuntimeDefault", "%s: seccomp RuntimeDefault", what)
	require.True(t, pt.Spec.AutomountServiceAccountToken != nil && !*pt.Spec.AutomountServiceAccountToken, "%s: no service account token", what)
	for _, c := range pt.Spec.Containers {
		sc := c.SecurityContext
		require.True(t, sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem, "%s/%s: readOnlyRootFilesystem", what, c.Name)
		require.True(t, sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation, "%s/%s: allowPrivilegeEscalation false", what, c.Name)
		require.True(t, sc.RunAsNonRoot != nil && *sc.RunAsNonRoot, "%s/%s: runAsNonRoot", what, c.Name)
		require.Equal(t, []string{"ALL"}, sc.Capabilities.Drop, "%s/%s: drop ALL capabilities", what, c.Name)
		require.NotEmpty(t, c.Resources.Requests, "%s/%s: resource requests", what, c.Name)
		require.NotEmpty(t, c.Resources.Limits["memory"], "%s/%s: memory limit", what, c.Name)
		require.Equal(t, []string{"/syncplane"}, c.Command, "%s/%s: command", what, c.Name)
	}
}

func envByName(c container) map[string]envVar {
	out := map[string]envVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

func durationSeconds(t *testing.T, s string) int {
	d, err := time.ParseDuration(s)
	require.NoError(t, err)
	return int(d.Seconds())
}

// checkCommon checks what holds for every values file.
func checkCommon(t *testing.T, r rendered, values map[string]any) {
	t.Helper()
	cfg := values["config"].(map[string]any)

	// The server Deployment.
	dep := r.one("Deployment")
	ds := spec[deploymentSpec](t, dep)
	pod := ds.Template
	podLabels := pod.Metadata.Labels
	require.True(t, subsetOf(ds.Selector.MatchLabels, podLabels), "Deployment selector %v must match pod labels %v", ds.Selector.MatchLabels, podLabels)
	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]
	require.Equal(t, []string{"serve"}, c.Args)
	checkSecure(t, "Deployment", pod)
	require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
	require.Equal(t, "http", c.LivenessProbe.HTTPGet.Port)
	require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	require.Equal(t, "http", c.ReadinessProbe.HTTPGet.Port)
	require.NotNil(t, c.StartupProbe)
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	require.Equal(t, 8080, ports["http"], "the http port follows config.httpAddr")
	if cfg["metricsAddr"] != "" {
		require.Equal(t, 9090, ports["metrics"], "the metrics port follows config.metricsAddr")
	}
	require.Contains(t, c.VolumeMounts, struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	}{"tmp", "/tmp"}, "a writable /tmp on the read-only root")
	require.Greater(t, pod.Spec.TerminationGracePeriodSeconds, durationSeconds(t, cfg["shutdownTimeout"].(string)),
		"terminationGracePeriodSeconds must exceed the shutdown timeout")
	require.NotEmpty(t, pod.Spec.TopologySpreadConstraints)
	for _, tsc := range pod.Spec.TopologySpreadConstraints {
		require.True(t, subsetOf(tsc.LabelSelector.MatchLabels, podLabels), "topology spread must select the server pods")
	}
	require.Contains(t, pod.Metadata.Annotations, "checksum/config", "pods roll when the ConfigMap changes")

	// Configuration: ConfigMap with exactly the non-secret settings, env from it.
	cm := r.all("ConfigMap")[0]
	for _, o := range r.all("ConfigMap") {
		if o.Metadata.Name == dep.Metadata.Name {
			cm = o
		}
	}
	var wantCM []string
	for _, s := range settings {
		if !secretSettings[s.Env] {
			wantCM = append(wantCM, s.Env)
		}
	}
	gotCM := make([]string, 0, len(cm.Data))
	for k := range cm.Data {
		gotCM = append(gotCM, k)
	}
	sort.Strings(wantCM)
	sort.Strings(gotCM)
	require.Equal(t, wantCM, gotCM, "ConfigMap keys")
	require.Len(t, c.EnvFrom, 1)
	require.Equal(t, cm.Metadata.Name, c.EnvFrom[0].ConfigMapRef.Name)
	env := envByName(c)
	dbEnv := env["SYNCPLANE_DATABASE_URL"]
	require.NotNil(t, dbEnv.ValueFrom, "SYNCPLANE_DATABASE_URL comes from a Secret")

	// Service: selects the server pods; targets named container ports.
	svc := r.one("Service")
	var ss struct {
		Selector map[string]string `json:"selector"`
		Ports    []struct {
			Name       string `json:"name"`
			Port       int    `json:"port"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
	}
	require.NoError(t, json.Unmarshal(svc.Spec, &ss))
	require.True(t, subsetOf(ss.Selector, podLabels), "Service selector %v must match pod labels", ss.Selector)
	svcPorts := map[string]bool{}
	for _, p := range ss.Ports {
		_, ok := ports[fmt.Sprint(p.TargetPort)]
		require.True(t, ok, "Service port %s targets unknown container port %v", p.Name, p.TargetPort)
		svcPorts[p.Name] = true
	}
	require.True(t, svcPorts["http"] && svcPorts["metrics"], "Service exposes http and metrics")

	// Migrations: a pre-install/pre-upgrade hook Job, not selected by the Deployment.
	job := r.one("Job")
	require.Equal(t, "pre-install,pre-upgrade", job.Metadata.Annotations["helm.sh/hook"])
	require.Equal(t, "before-hook-creation,hook-succeeded", job.Metadata.Annotations["helm.sh/hook-delete-policy"])
	require.Contains(t, job.Metadata.Annotations, "helm.sh/hook-weight")
	js := spec[jobSpec](t, job)
	require.Equal(t, "Never", js.Template.Spec.RestartPolicy)
	jc := js.Template.Spec.Containers[0]
	require.Equal(t, []string{"migrate", "up"}, jc.Args)
	checkSecure(t, "migrations Job", js.Template)
	require.False(t, subsetOf(ds.Selector.MatchLabels, js.Template.Metadata.Labels), "the Deployment/Service must not select migration pods")
	require.False(t, subsetOf(ss.Selector, js.Template.Metadata.Labels), "the Service must not select migration pods")
	jobDB := envByName(jc)["SYNCPLANE_DATABASE_URL"]
	require.NotNil(t, jobDB.ValueFrom)
	jobSecret := jobDB.ValueFrom.SecretKeyRef.Name
	if existing := values["existingSecret"]; existing != "" {
		require.Equal(t, existing, jobSecret, "the Job reads the existing Secret")
		require.Equal(t, existing, dbEnv.ValueFrom.SecretKeyRef.Name)
		require.Equal(t, values["existingSecretKeys"].(map[string]any)["databaseUrl"], dbEnv.ValueFrom.SecretKeyRef.Key)
		for _, s := range r.all("Secret") {
			require.NotEqual(t, existing, s.Metadata.Name, "the chart must not create the existing Secret")
			require.NotEmpty(t, s.Metadata.Annotations["helm.sh/hook"], "with existingSecret the chart makes no Secret")
		}
	} else {
		// Hooks run before the release's objects exist: the Job's Secret is a hook created before it.
		var hookSecret *k8sObject
		for _, s := range r.all("Secret") {
			if s.Metadata.Name == jobSecret {
				hookSecret = &s
			}
			if s.Metadata.Name == dbEnv.ValueFrom.SecretKeyRef.Name {
				require.Empty(t, s.Metadata.Annotations["helm.sh/hook"], "the server's Secret is a release object")
				var keys []string
				for k := range s.Data {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				var want []string
				for env := range secretSettings {
					want = append(want, env)
				}
				sort.Strings(want)
				require.Equal(t, want, keys)
				require.GreaterOrEqual(t, len(s.Data["SYNCPLANE_SESSION_SECRET"]), 32, "a session secret is generated")
				sealKeys, err := base64.StdEncoding.DecodeString(s.Data["SYNCPLANE_SEAL_KEYS"])
				require.NoError(t, err)
				sealer, err := tenant.ParseSealKeys(string(sealKeys))
				require.NoError(t, err, "the generated seal key is one the server accepts")
				require.NotNil(t, sealer, "a seal key is generated")
			}
		}
		require.NotNil(t, hookSecret, "the Job's Secret %s is rendered", jobSecret)
		require.Equal(t, "pre-install,pre-upgrade", hookSecret.Metadata.Annotations["helm.sh/hook"])
		require.Less(t, atoi(t, hookSecret.Metadata.Annotations["helm.sh/hook-weight"]), atoi(t, job.Metadata.Annotations["helm.sh/hook-weight"]),
			"the hook Secret must be created before the Job")
	}

	// PodDisruptionBudget selects the server pods.
	if r.has("PodDisruptionBudget") {
		pdb := spec[struct {
			Selector selector `json:"selector"`
		}](t, r.one("PodDisruptionBudget"))
		require.True(t, subsetOf(pdb.Selector.MatchLabels, podLabels), "PDB selector must match pod labels")
	}
	if r.has("NetworkPolicy") {
		np := spec[struct {
			PodSelector selector `json:"podSelector"`
		}](t, r.one("NetworkPolicy"))
		require.True(t, subsetOf(np.PodSelector.MatchLabels, podLabels), "NetworkPolicy must select the server pods")
	}
	if r.has("HorizontalPodAutoscaler") {
		hpa := spec[struct {
			ScaleTargetRef struct{ Kind, Name string } `json:"scaleTargetRef"`
		}](t, r.one("HorizontalPodAutoscaler"))
		require.Equal(t, "Deployment", hpa.ScaleTargetRef.Kind)
		require.Equal(t, dep.Metadata.Name, hpa.ScaleTargetRef.Name)
		require.Nil(t, ds.Replicas, "with an HPA the Deployment leaves replicas to it")
	}
	if r.has("ServiceMonitor") {
		sm := spec[struct {
			Selector  selector `json:"selector"`
			Endpoints []struct {
				Port, Path  string
				Relabelings []struct{ TargetLabel, Replacement string }
			} `json:"endpoints"`
		}](t, r.one("ServiceMonitor"))
		require.True(t, subsetOf(sm.Selector.MatchLabels, svc.Metadata.Labels), "ServiceMonitor must select the Service")
		jobs := map[string]string{}
		for _, ep := range sm.Endpoints {
			require.Equal(t, "metrics", ep.Port)
			require.Len(t, ep.Relabelings, 1)
			jobs[ep.Path] = ep.Relabelings[0].Replacement
		}
		require.Equal(t, map[string]string{"/metrics": "syncplane", "/tenant-metrics": "syncplane-tenants"}, jobs,
			"the alert rules rely on these job names")
	}
	// Every object is in the release namespace (the dashboard may go elsewhere).
	for _, o := range r.objs {
		if o.Kind != "ConfigMap" || !strings.HasSuffix(o.Metadata.Name, "-dashboard") {
			require.Equal(t, "prod", o.Metadata.Namespace, "%s %s namespace", o.Kind, o.Metadata.Name)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	_, err := fmt.Sscanf(s, "%d", &n)
	require.NoError(t, err, "not an integer: %q", s)
	return n
}

// mergedValues is values.yaml with a values file layered on (maps merge).
func mergedValues(t *testing.T, file string) map[string]any {
	t.Helper()
	base := readValues(t)
	if file == "" {
		return base
	}
	b, err := os.ReadFile(filepath.Join(chartDir, file))
	require.NoError(t, err)
	var over map[string]any
	require.NoError(t, yaml.Unmarshal(b, &over))
	var merge func(dst, src map[string]any)
	merge = func(dst, src map[string]any) {
		for k, v := range src {
			if sm, ok := v.(map[string]any); ok {
				if dm, ok := dst[k].(map[string]any); ok {
					merge(dm, sm)
					continue
				}
			}
			dst[k] = v
		}
	}
	merge(base, over)
	return base
}

func TestChartLintsClean(t *testing.T) {
	helm := helmBin(t)
	for _, file := range []string{"", "ci/ha-values.yaml", "ci/external-db-values.yaml", "ci/monitoring-values.yaml"} {
		args := []string{"lint", "--strict", chartDir}
		if file != "" {
			args = append(args, "-f", filepath.Join(chartDir, file))
		}
		out, err := exec.Command(helm, args...).CombinedOutput()
		require.NoError(t, err, "helm %v:\n%s", args, out)
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(line, "[WARNING]") || strings.HasPrefix(line, "[ERROR]") {
				t.Errorf("helm %v: %s", args, line)
			}
		}
	}
}

func TestChartRendersDefaults(t *testing.T) {
	helm := helmBin(t)
	r, err := helmTemplate(t, helm)
	require.NoError(t, err)
	checkCommon(t, r, mergedValues(t, ""))
	ds := spec[deploymentSpec](t, r.one("Deployment"))
	require.Equal(t, 2, *ds.Replicas)
	for _, kind := range []string{"Ingress", "HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"} {
		require.False(t, r.has(kind), "%s is off by default", kind)
	}
	require.True(t, r.has("PodDisruptionBudget"))
	require.Len(t, r.all("ConfigMap"), 1, "no dashboard by default")
}

func TestChartRendersHA(t *testing.T) {
	helm := helmBin(t)
	r, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci/ha-values.yaml"))
	require.NoError(t, err)
	checkCommon(t, r, mergedValues(t, "ci/ha-values.yaml"))
	ds := spec[deploymentSpec](t, r.one("Deployment"))
	require.Equal(t, 3, *ds.Replicas)
	pdb := spec[map[string]any](t, r.one("PodDisruptionBudget"))
	require.EqualValues(t, 2, pdb["minAvailable"])
	require.NotContains(t, pdb, "maxUnavailable")
	keys := map[string]string{}
	for _, c := range ds.Template.Spec.TopologySpreadConstraints {
		keys[c.TopologyKey] = c.WhenUnsatisfiable
	}
	require.Equal(t, map[string]string{"topology.kubernetes.io/zone": "DoNotSchedule", "kubernetes.io/hostname": "ScheduleAnyway"}, keys)
	ing := r.one("Ingress")
	require.Contains(t, string(ing.Spec), `"name":"http"`, "the Ingress targets the http port")
	require.Contains(t, string(ing.Spec), "sync-example-com-tls")
}

func TestChartRendersExternalDatabase(t *testing.T) {
	helm := helmBin(t)
	r, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci/external-db-values.yaml"))
	require.NoError(t, err)
	checkCommon(t, r, mergedValues(t, "ci/external-db-values.yaml"))
	require.Empty(t, r.all("Secret"), "an existing Secret replaces the chart's")
	c := spec[deploymentSpec](t, r.one("Deployment")).Template.Spec.Containers[0]
	env := envByName(c)
	require.Equal(t, "pg-app", env["SYNCPLANE_DATABASE_URL"].ValueFrom.SecretKeyRef.Name)
	require.Equal(t, "uri", env["SYNCPLANE_DATABASE_URL"].ValueFrom.SecretKeyRef.Key)
	require.NotContains(t, env, "SYNCPLANE_CLUSTERS", "an empty clusters key means none")
	require.True(t, r.has("HorizontalPodAutoscaler"))
	np := r.one("NetworkPolicy")
	require.Contains(t, string(np.Spec), `"Egress"`)
	require.Contains(t, string(np.Spec), `"port":53`, "egress allows DNS")
}

func TestChartRendersMonitoring(t *testing.T) {
	helm := helmBin(t)
	r, err := helmTemplate(t, helm, "-f", filepath.Join(chartDir, "ci/monitoring-values.yaml"))
	require.NoError(t, err)
	checkCommon(t, r, mergedValues(t, "ci/monitoring-values.yaml"))

	// The PrometheusRule carries files/alerts.yaml unchanged.
	b, err := os.ReadFile(filepath.Join(chartDir, "files/alerts.yaml"))
	require.NoError(t, err)
	var alerts map[string]any
	require.NoError(t, yaml.Unmarshal(b, &alerts))
	pr := r.one("PrometheusRule")
	require.Equal(t, "monitoring.coreos.com/v1", pr.APIVersion)
	require.Equal(t, alerts, pr.Raw["spec"])
	require.Equal(t, "kube-prometheus-stack", pr.Metadata.Labels["release"])

	// The dashboard ConfigMap: sidecar label, the JSON unchanged.
	var dash *k8sObject
	for _, o := range r.all("ConfigMap") {
		if strings.HasSuffix(o.Metadata.Name, "-dashboard") {
			dash = &o
		}
	}
	require.NotNil(t, dash)
	require.Equal(t, "1", dash.Metadata.Labels["grafana_dashboard"])
	require.Equal(t, "monitoring", dash.Metadata.Namespace)
	require.Equal(t, "Syncplane", dash.Metadata.Annotations["grafana_folder"])
	file, err := os.ReadFile(filepath.Join(chartDir, "files/dashboard.json"))
	require.NoError(t, err)
	require.JSONEq(t, string(file), dash.Data["syncplane.json"])
}

// TestChartSchemaRejectsWrongValues: values.schema.json stops mistakes
// before anything reaches a cluster.
func TestChartSchemaRejectsWrongValues(t *testing.T) {
	helm := helmBin(t)
	cases := []struct {
		name string
		args []string
	}{
		{"unknown log level", []string{"--set", "config.logLevel=verbose"}},
		{"unknown log format", []string{"--set", "config.logFormat=xml"}},
		{"max conns not a number", []string{"--set", "config.dbMaxConns=many"}},
		{"max conns below 2", []string{"--set", "config.dbMaxConns=1"}},
		{"auto migrate not a bool", []string{"--set-string", "config.autoMigrate=yes"}},
		{"bad duration", []string{"--set", "config.cacheTtl=30 seconds"}},
		{"address without port", []string{"--set", "config.httpAddr=localhost"}},
		{"typo in a config key", []string{"--set", "config.httpAdress=:80"}},
		{"typo at the top", []string{"--set", "replicas=3"}},
		{"negative replicas", []string{"--set", "replicaCount=-1"}},
		{"replicas as text", []string{"--set-string", "replicaCount=three"}},
		{"bad pull policy", []string{"--set", "image.pullPolicy=Sometimes"}},
		{"empty image repository", []string{"--set", "image.repository="}},
		{"bad service type", []string{"--set", "service.type=Internal"}},
		{"database url not postgres", []string{"--set", "secrets.databaseUrl=mysql://x"}},
		{"bad tenant slug", []string{"--set", "config.defaultTenant=Acme Inc"}},
		{"serviceMonitor enabled as text", []string{"--set-string", "metrics.serviceMonitor.enabled=true"}},
		{"required value removed", []string{"--set", "config.logLevel=null"}},
	}
	for _, tc := range cases {
		_, err := helmTemplate(t, helm, tc.args...)
		require.Error(t, err, "%s: %v must be rejected", tc.name, tc.args)
	}
	// And the template's own guard.
	_, err := helmTemplate(t, helm, "--set", "config.metricsAddr=", "--set", "metrics.serviceMonitor.enabled=true")
	require.ErrorContains(t, err, "needs config.metricsAddr")
	// Good values pass.
	_, err = helmTemplate(t, helm, "--set", "config.logLevel=debug", "--set", "config.dbMaxConns=50",
		"--set", "config.metricsAddr=", "--set", "secrets.clusters=eu1=postgres://u@h/db us1=postgres://u@h2/db")
	require.NoError(t, err)
}

func assertTrue(t *testing.T, ok bool, format string, args ...any) bool {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
	return ok
}
