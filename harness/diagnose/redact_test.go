package diagnose

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"sigs.k8s.io/yaml"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
	"github.com/flux-fleet/flux-fleet/harness/readiness"
	"github.com/flux-fleet/flux-fleet/harness/record"
	"github.com/flux-fleet/flux-fleet/harness/report"
	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// planted is a password put into every place an artifact could copy it
// from; no artifact may hold it.
const planted = "pl4nted-Passw0rd-7f3e"

// sha12 is the promised digest of a value: "sha256:" and 12 hex digits of the
// sha256 of its canonical JSON, given as text so that the expectation does
// not come from the code under test.
func sha12(canonicalJSON string) string {
	sum := sha256.Sum256([]byte(canonicalJSON))
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

// rejected is helm-controller's Ready message when the chart's schema
// rejects the planted password: Helm quotes the value.
const rejected = "Helm install failed for release redis/cache with chart redis@0.1.0: values don't meet the specifications " +
	"of the schema(s) in the following chart(s):\nredis:\n- at '/auth/password': '" + planted + "' does not match pattern '^x'"

// plantedObjects are a HelmRelease whose values (and client-side apply copy)
// and a Kustomization whose post-build substitution hold the password; the
// HelmRelease's Ready condition quotes it, as helm-controller's does.
func plantedObjects() []*unstructured.Unstructured {
	hr := fluxObj("HelmRelease", "redis", "cache", "False", "InstallFailed", rejected)
	values := map[string]any{"auth": map[string]any{"password": planted, "enabled": true}, "replicas": int64(2)}
	_ = unstructured.SetNestedField(hr.Object, values, "spec", "values")
	applied, _ := json.Marshal(map[string]any{"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "spec": map[string]any{"values": values}})
	hr.SetAnnotations(map[string]string{"kubectl.kubernetes.io/last-applied-configuration": string(applied), "team": "cache"})
	ks := fluxObj("Kustomization", "flux-system", "secrets-infra", "True", "ReconciliationSucceeded", "Applied")
	_ = unstructured.SetNestedStringMap(ks.Object, map[string]string{"REDIS_PASSWORD": planted, "NGINX_REPLICAS": "2"}, "spec", "postBuild", "substitute")
	return []*unstructured.Unstructured{hr, ks}
}

// recordClients serve plantedObjects to record.Collect (no inventories, so
// no REST mapping is needed).
func recordClients() *fluxobj.Clients {
	listKinds := map[schema.GroupVersionResource]string{}
	for _, kind := range []string{"Kustomization", "HelmRelease", "HelmChart"} {
		k, _ := fluxobj.KindOf(kind)
		listKinds[k.GVR()] = kind + "List"
	}
	var objs []runtime.Object
	for _, u := range plantedObjects() {
		objs = append(objs, u)
	}
	return &fluxobj.Clients{Dynamic: dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, objs...), Kube: kubefake.NewClientset()}
}

// controllerLogLine is helm-controller's log line for the rejected values,
// as the container runtime writes it: JSON, the message's line breaks escaped.
var controllerLogLine = func() string {
	msg, _ := json.Marshal(map[string]string{"level": "error", "msg": "Reconciler error", "error": rejected})
	return "2026-11-26T06:00:00.000000000Z stderr F " + string(msg) + "\n"
}()

// node is a node container as `docker inspect` shows it, its environment
// carrying proxy credentials.
func node() map[string]any {
	return map[string]any{
		"Id":   "0123abcd",
		"Name": "/staging-control-plane",
		"Config": map[string]any{
			"Hostname": "staging-control-plane",
			"Env":      []any{"container=docker", "HTTP_PROXY=http://fleet:" + planted + "@proxy.example:3128", "NO_PROXY=localhost,10.96.0.0/16", "EMPTY="},
			"Image":    "kindest/node:v1.35.0",
			"Labels":   map[string]any{"io.x-k8s.kind.cluster": "staging", "io.x-k8s.kind.role": "control-plane"},
		},
		"HostConfig": map[string]any{"Privileged": true, "Memory": json.Number("9007199254740993")},
	}
}

// writeKindLogs lays out what kind's export writes (files 0644, directories
// 0755) and returns the kind-logs directory.
func writeKindLogs(t *testing.T, root string) string {
	t.Helper()
	dir := filepath.Join(root, "kind-logs")
	nodeDir := filepath.Join(dir, "staging-control-plane")
	if err := os.MkdirAll(filepath.Join(nodeDir, "pods"), 0o755); err != nil {
		t.Fatal(err)
	}
	inspect, err := json.MarshalIndent([]any{node()}, "", "    ")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		filepath.Join(nodeDir, "inspect.json"): string(inspect) + "\n",
		filepath.Join(dir, "docker-info.txt"):  "Server:\n HTTP Proxy: http://fleet:" + planted + "@proxy.example:3128\n No Proxy: localhost\n",
		filepath.Join(dir, "kind-version.txt"): "kind v0.33.0",
		filepath.Join(nodeDir, "journal.log"): "kubelet started\nfetching https://registry.example/v2/ as https://user@registry.example/v2/\n" +
			"Environment: HTTPS_PROXY=fleet:" + planted + "@proxy.example:3128\n",
		filepath.Join(nodeDir, "pods", "kubelet.log"): "no credentials here: https://registry.example/v2/\n",
		// helm-controller's own log, as the node's /var/log/pods holds it:
		// it logs the error it puts in the Ready condition.
		filepath.Join(nodeDir, "pods", "flux-system_helm-controller-5b8f_0a1b", "manager", "0.log"): controllerLogLine,
	}
	for path, content := range files {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestArtifactsHoldNoSecrets plants a password in a HelmRelease's values, in
// a post-build substitution and in a node container's HTTP_PROXY, writes the
// artifacts, the run record and kind's logs as the harness does, and finds
// the password in no file while every key is still there.
func TestArtifactsHoldNoSecrets(t *testing.T) {
	ctx := context.Background()
	artifacts := filepath.Join(t.TempDir(), "artifacts")
	runDir := filepath.Join(artifacts, "20261126-060000")
	c := fakeClients(t, plantedObjects()...)
	plantEvent(t, c)

	summary, err := c.summarize(ctx, "staging")
	if err != nil {
		t.Fatalf("summarize: %v", err)
	}
	if strings.Contains(summary, planted) {
		t.Errorf("the summary shows the password:\n%s", summary)
	}
	if err := c.collect(ctx, "staging", filepath.Join(runDir, "staging"), Options{}); err != nil {
		t.Fatalf("collect: %v", err)
	}
	rec, err := record.Collect(ctx, recordClients(), "staging", record.Fleet{Served: "1111"})
	if err != nil {
		t.Fatalf("record.Collect: %v", err)
	}
	writeReport(t, artifacts, summary)
	if err := record.Write(filepath.Join(artifacts, record.FileName("staging", "")), rec); err != nil {
		t.Fatal(err)
	}
	kindLogs := writeKindLogs(t, filepath.Join(runDir, "staging"))
	// kind's pod logs are symbolic links into the node; one pointing out of
	// the artifacts must not be followed.
	outside := filepath.Join(t.TempDir(), "host.log")
	if err := os.WriteFile(outside, []byte("a host file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(kindLogs, "staging-control-plane", "pods", "link.log")); err != nil {
		t.Fatal(err)
	}
	if err := RedactKindLogs(kindLogs, record.NewScrubbers(plantedObjects())); err != nil {
		t.Fatalf("RedactKindLogs: %v", err)
	}

	all := readTree(t, artifacts)
	for path, data := range all {
		for _, secret := range []string{planted, base64.StdEncoding.EncodeToString([]byte(planted))} {
			if strings.Contains(data, secret) {
				t.Errorf("%s holds the planted password", path)
			}
		}
	}
	digest := sha12(`"` + planted + `"`)
	hrFile := filepath.Join(runDir, "staging", "flux", "helmrelease", "redis_cache.yaml")
	quoted := "at '/auth/password': '<" + digest + ">' does not match pattern '^x'"
	ksFile := filepath.Join(runDir, "staging", "flux", "kustomization", "flux-system_secrets-infra.yaml")
	for _, want := range []struct{ file, text string }{
		{hrFile, "password: " + digest},
		{hrFile, "enabled: " + sha12("true")},
		{hrFile, "replicas: " + sha12("2")},
		{hrFile, `"password":"` + digest + `"`}, // the last-applied copy
		{hrFile, "team: cache"},
		{ksFile, "REDIS_PASSWORD: " + digest},
		{hrFile, quoted}, // the Ready condition, scrubbed
		{filepath.Join(runDir, "staging", "events.yaml"), quoted},
		{filepath.Join(artifacts, "report.json"), strings.NewReplacer("<", `\u003c`, ">", `\u003e`).Replace(quoted)},
		{ksFile, "NGINX_REPLICAS: " + sha12(`"2"`)},
		{filepath.Join(artifacts, "record-staging.json"), `"auth.password": "` + digest + `"`},
		{filepath.Join(artifacts, "record-staging.json"), `"REDIS_PASSWORD": "` + digest + `"`},
		{filepath.Join(kindLogs, "docker-info.txt"), "HTTP Proxy: http://<redacted>@proxy.example:3128\n"},
		{filepath.Join(kindLogs, "staging-control-plane", "journal.log"), "as https://<redacted>@registry.example/v2/\n"},
		{filepath.Join(kindLogs, "staging-control-plane", "journal.log"), "HTTPS_PROXY=<redacted>@proxy.example:3128\n"},
		{filepath.Join(kindLogs, "staging-control-plane", "pods", "flux-system_helm-controller-5b8f_0a1b", "manager", "0.log"), quoted},
	} {
		if !strings.Contains(all[want.file], want.text) {
			t.Errorf("%s lacks %q:\n%s", want.file, want.text, all[want.file])
		}
	}
	assertInspectRedacted(t, all[filepath.Join(kindLogs, "staging-control-plane", "inspect.json")])
	testsupport.AssertPrivateTree(t, artifacts)
	if info, err := os.Stat(outside); err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("the file behind a symbolic link was changed: %v %v", info.Mode(), err)
	}
}

// assertInspectRedacted checks the rewritten inspect.json: valid JSON, every
// Env entry's name kept and its value "<redacted>", everything else as kind
// wrote it.
func assertInspectRedacted(t *testing.T, data string) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	dec.UseNumber()
	var got []any
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("inspect.json is no longer JSON: %v\n%s", err, data)
	}
	want := node()
	want["Config"].(map[string]any)["Env"] = []any{"container=<redacted>", "HTTP_PROXY=<redacted>", "NO_PROXY=<redacted>", "EMPTY=<redacted>"}
	wantJSON, _ := json.Marshal([]any{want})
	gotJSON, _ := json.Marshal(got)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("inspect.json after redaction:\n%s\nwant:\n%s", gotJSON, wantJSON)
	}
}

// readTree reads every regular file under root.
func readTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(path)
		out[path] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCollectRawValuesOptIn(t *testing.T) {
	c := fakeClients(t, plantedObjects()...)
	root := filepath.Join(t.TempDir(), "staging")
	if err := c.collect(context.Background(), "staging", root, Options{RawValues: true}); err != nil {
		t.Fatalf("collect: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(root, "flux", "helmrelease", "redis_cache.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var u map[string]any
	if err := yaml.Unmarshal(data, &u); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := unstructured.NestedString(u, "spec", "values", "auth", "password"); got != planted {
		t.Errorf("with RawValues, spec.values.auth.password = %q, want the value itself", got)
	}
}

func TestRedactKindLogsWithholdsUnreadableInspect(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kind-logs")
	nodeDir := filepath.Join(dir, "staging-control-plane")
	if err := os.MkdirAll(nodeDir, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(nodeDir, "inspect.json")
	// A docker warning on stderr ahead of the JSON: not parseable, and it
	// holds an environment.
	content := "WARNING: something\n[{\"Config\": {\"Env\": [\"HTTP_PROXY=http://u:" + planted + "@p\"]}}]\n"
	if err := os.WriteFile(bad, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gone := filepath.Join(t.TempDir(), "gone", "inspect.json")
	_ = os.MkdirAll(filepath.Dir(gone), 0o755)
	errText := "Error: No such object: staging-control-plane\n"
	if err := os.WriteFile(gone, []byte(errText), 0o644); err != nil {
		t.Fatal(err)
	}

	err := RedactKindLogs(dir, nil)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "not a docker inspect document") || !strings.Contains(err.Error(), "file removed") {
		t.Fatalf("RedactKindLogs = %v, want an error naming %s, why, and that it was removed", err, bad)
	}
	if _, statErr := os.Stat(bad); !os.IsNotExist(statErr) {
		t.Errorf("%s was kept: %v", bad, statErr)
	}
	// docker's own error message holds no environment: kept as written.
	if err := RedactKindLogs(filepath.Dir(gone), nil); err != nil {
		t.Fatalf("RedactKindLogs of an error message: %v", err)
	}
	if data, _ := os.ReadFile(gone); string(data) != errText {
		t.Errorf("docker's error message became %q", data)
	}
	if err := RedactKindLogs(filepath.Join(t.TempDir(), "never-exported"), nil); err != nil {
		t.Errorf("RedactKindLogs of a directory the export never wrote: %v", err)
	}
}

func TestRedactValuesKeepsOtherFields(t *testing.T) {
	hr := plantedObjects()[0]
	redactValues(hr.Object)
	got, _, _ := unstructured.NestedMap(hr.Object, "spec", "values")
	want := map[string]any{"auth": map[string]any{"password": sha12(`"` + planted + `"`), "enabled": sha12("true")}, "replicas": sha12("2")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("spec.values = %v, want %v", got, want)
	}
	if msg := fluxobj.Judge(hr, "").Message; msg != rejected {
		t.Errorf("the status changed: Ready message %q", msg)
	}
}

// plantEvent adds helm-controller's event for the rejected install.
func plantEvent(t *testing.T, c *clients) {
	t.Helper()
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "redis", Name: "cache.1"}, Type: "Warning", Reason: "InstallFailed",
		Message: rejected, InvolvedObject: corev1.ObjectReference{Kind: "HelmRelease", Namespace: "redis", Name: "cache"}, LastTimestamp: metav1.Now()}
	if _, err := c.Kube.CoreV1().Events("redis").Create(context.Background(), ev, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// writeReport writes the run report as the harness does for a wait that
// failed on the planted HelmRelease: its message in the failure, the
// objects and a step error, the summary as the diagnosis, and the
// environment's scrubbers read from the cluster after the wait.
func writeReport(t *testing.T, dir, summary string) {
	t.Helper()
	fe := &readiness.FailureError{Env: "staging", Object: "HelmRelease/redis/cache", Reason: "InstallFailed", Message: rejected, Terminal: true}
	b := report.NewBuilder(report.Run{ID: "run"})
	b.SetReadiness("staging", &readiness.Report{}, fe)
	b.AddStep("staging", "upgrade", time.Now(), time.Now(), fmt.Errorf("waiting: %w", fe))
	b.SetDiagnosis("staging", summary)
	scrub, err := record.ReadScrubbers(context.Background(), recordClients())
	if err != nil {
		t.Fatal(err)
	}
	b.SetScrubbers("staging", scrub)
	r := b.Report(time.Now())
	if f := r.Env("staging").Failure; f == nil || !strings.Contains(f.Message, "does not match pattern") {
		t.Fatalf("report failure %+v, want the scrubbed schema message", f)
	}
	if err := report.WriteAll(dir, r); err != nil {
		t.Fatal(err)
	}
}
