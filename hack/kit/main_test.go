package main

import (
	"bytes"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestPrintAndUsage(t *testing.T) {
	kit := t.TempDir()
	t.Setenv("FLEET_KIT_DIR", kit)
	for _, tc := range []struct {
		args                []string
		code                int
		wantOut, wantStderr string
	}{
		{[]string{"-print"}, 0, filepath.Join(kit, "profile.env") + "\n", ""},
		{[]string{"--print"}, 0, filepath.Join(kit, "profile.env") + "\n", ""},
		{[]string{"-print", "extra"}, 2, "", `kit: unexpected arguments ["extra"]`},
		{[]string{"-bogus"}, 2, "", "flag provided but not defined: -bogus"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tc.args, &out, &errOut); code != tc.code {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tc.code, errOut.String())
			}
			if out.String() != tc.wantOut {
				t.Errorf("stdout = %q, want %q", out.String(), tc.wantOut)
			}
			if !strings.Contains(errOut.String(), tc.wantStderr) {
				t.Errorf("stderr = %q, want it to contain %q", errOut.String(), tc.wantStderr)
			}
		})
	}
}

func TestKindConfig(t *testing.T) {
	var cfg struct {
		Kind       string
		Networking struct {
			DisableDefaultCNI bool `json:"disableDefaultCNI"`
		}
		Nodes   []struct{ Role, Image string }
		Patches []string `json:"kubeadmConfigPatches"`
	}
	if err := yaml.Unmarshal(kindConfig("fleet-kit/node-preloaded:v1.37.2-0123456789ab"), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Kind != "Cluster" || !cfg.Networking.DisableDefaultCNI || len(cfg.Nodes) != 1 ||
		cfg.Nodes[0].Role != "control-plane" || cfg.Nodes[0].Image != "fleet-kit/node-preloaded:v1.37.2-0123456789ab" || len(cfg.Patches) != 3 {
		t.Errorf("kind config = %+v", cfg)
	}
	var cluster struct {
		Kind                string
		EncryptionAlgorithm string `json:"encryptionAlgorithm"`
		ControllerManager   struct {
			ExtraArgs []struct{ Name, Value string } `json:"extraArgs"`
		} `json:"controllerManager"`
	}
	if len(cfg.Patches) > 1 {
		if err := yaml.Unmarshal([]byte(cfg.Patches[1]), &cluster); err != nil {
			t.Fatal(err)
		}
	}
	if cluster.Kind != "ClusterConfiguration" || cluster.EncryptionAlgorithm != "ECDSA-P256" {
		t.Errorf("second patch = %+v, want kubeadm's ClusterConfiguration with encryptionAlgorithm ECDSA-P256", cluster)
	}
	// The patch replaces kind's extraArgs list: kind's own argument must stay.
	args := map[string]string{}
	for _, a := range cluster.ControllerManager.ExtraArgs {
		args[a.Name] = a.Value
	}
	if want := map[string]string{"enable-hostpath-provisioner": "true", "leader-elect": "false"}; !maps.Equal(args, want) {
		t.Errorf("controller manager extraArgs = %v, want %v", args, want)
	}
}
