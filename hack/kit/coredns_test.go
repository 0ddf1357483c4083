package main

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// TestCoreDNSPlugins: the kit's CoreDNS has exactly the plugins of the
// directives in kubeadm's Corefile, read from k8s.io/kubernetes at the
// kit's Kubernetes version, each mapped to its package by CoreDNS's own
// plugin.cfg at the kit's CoreDNS version: a new Kubernetes whose Corefile
// names another plugin fails here, not in a cluster's DNS.
func TestCoreDNSPlugins(t *testing.T) {
	repo := filepath.Join("..", "..")
	versions, err := kitprofile.ReadVersions(repo)
	if err != nil {
		t.Fatal(err)
	}
	src := realSource(t, nil)
	line, ok := src.recipes.vars["COREDNS_PLUGINS"]
	if !ok {
		t.Fatal("recipes.sh sets no COREDNS_PLUGINS")
	}
	_, value, _ := strings.Cut(line, "=")
	have := strings.Fields(strings.Trim(value, `"`))

	env := append(os.Environ(), "GOFLAGS=-mod=mod")
	dir := func(module, versionVar string) string {
		v, err := lookup(versions, versionVar)
		if err != nil {
			t.Fatal(err)
		}
		d, err := moduleDir(context.Background(), repo, env, module, v)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	directives := corefileDirectives(t, filepath.Join(dir("k8s.io/kubernetes", "KUBERNETES_VERSION"),
		"cmd", "kubeadm", "app", "phases", "addons", "dns", "manifests.go"))
	packages := pluginPackages(t, filepath.Join(dir("github.com/coredns/coredns", "COREDNS_VERSION"), "plugin.cfg"))
	var want []string
	for _, d := range directives {
		p, ok := packages[d]
		if !ok {
			t.Fatalf("kubeadm's Corefile names %q, which CoreDNS's plugin.cfg does not", d)
		}
		want = append(want, p)
	}
	slices.Sort(want)
	slices.Sort(have)
	if !slices.Equal(have, want) {
		t.Errorf("COREDNS_PLUGINS = %v, want the packages of kubeadm's Corefile directives %v: %v", have, directives, want)
	}
}

// corefileDirectives reads the directives of the server block in the
// Corefile of kubeadm's CoreDNS ConfigMap (manifests.go): the lines
// indented one level inside ".:53 {", template lines and the braces that
// close a directive's options left out.
func corefileDirectives(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	in := false
	indent := ""
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == ".:53 {":
			in = true
			indent = line[:len(line)-len(strings.TrimLeft(line, " "))] + "    "
		case in && trimmed == "}" && len(line)-len(trimmed) < len(indent):
			return out
		case in && strings.HasPrefix(line, indent) && !strings.HasPrefix(line, indent+" ") && !strings.HasPrefix(trimmed, "{{") && trimmed != "}":
			out = append(out, strings.Fields(trimmed)[0])
		}
	}
	t.Fatalf("%s: no Corefile server block .:53 found", path)
	return nil
}

// pluginPackages maps each directive of CoreDNS's plugin.cfg
// ("directive:package" lines) to its package under plugin/.
func pluginPackages(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if name, pkg, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(line, "#") {
			out[name] = pkg
		}
	}
	return out
}
