package repo

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFleetDir(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("test setup: %v", err)
	}
	tests := []struct {
		name, flag, env, want string
	}{
		{"flag wins", "fixtures/fleets/basic", "elsewhere", "fixtures/fleets/basic"},
		{"environment", "", "fixtures/fleets/helm", "fixtures/fleets/helm"},
		{"repository root", "", "", root},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(FleetDirVar, tc.env)
			got, err := FleetDir(tc.flag)
			if err != nil || got != tc.want {
				t.Errorf("FleetDir(%q) with %s=%q = %q, %v; want %q", tc.flag, FleetDirVar, tc.env, got, err, tc.want)
			}
		})
	}
}

func TestRootOutsideAModule(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv(FleetDirVar, "")
	want := "no go.mod found above the working directory"
	if _, err := Root(); err == nil || err.Error() != want {
		t.Errorf("Root() error = %v, want %q", err, want)
	}
	if _, err := FleetDir(""); err == nil || err.Error() != want {
		t.Errorf("FleetDir(\"\") error = %v, want %q", err, want)
	}
}
