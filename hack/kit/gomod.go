package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// goTimeout bounds one go command of the kit's own (a module lookup or
// download through the module proxy).
const goTimeout = 10 * time.Minute

// goCmd runs the go command in the repository with the kit's environment
// and returns its standard output.
func goCmd(ctx context.Context, repo string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, goTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) && len(ee.Stderr) > 0 {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return string(out), fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return string(out), nil
}

// moduleVersion is the version of a module the repository's go.mod selects.
// The go command reads a copy of go.mod and go.sum: resolving a module the
// build does not need (the notification API) adds checksums to go.sum, and
// the kit must not edit the checkout it builds from.
func moduleVersion(ctx context.Context, repo string, env []string, path string) (string, error) {
	tmp, err := os.MkdirTemp("", "kit-gomod-")
	if err != nil {
		return "", fmt.Errorf("reading the version of %s in go.mod: %w", path, err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range []string{"go.mod", "go.sum"} {
		if err := copyFile(filepath.Join(repo, f), filepath.Join(tmp, f)); err != nil {
			return "", fmt.Errorf("reading the version of %s in go.mod: %w", path, err)
		}
	}
	out, err := goCmd(ctx, repo, env, "list", "-modfile="+filepath.Join(tmp, "go.mod"), "-m", "-f", "{{.Version}}", path)
	if err != nil {
		return "", fmt.Errorf("reading the version of %s in go.mod: %w", path, err)
	}
	v := strings.TrimSpace(out)
	if v == "" {
		return "", fmt.Errorf("go.mod selects no version of %s", path)
	}
	return v, nil
}

// moduleDir downloads path@version through the module proxy (a no-op when
// cached) and returns its directory in the module cache.
func moduleDir(ctx context.Context, repo string, env []string, path, version string) (string, error) {
	mod := path + "@" + version
	out, err := goCmd(ctx, repo, env, "mod", "download", "-json", mod)
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal([]byte(out), &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("the Go module proxy does not serve %s: %s", mod, info.Error)
	}
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", mod, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("downloading %s: go mod download named no directory", mod)
	}
	return info.Dir, nil
}

// controllerVersion is the version of a Flux controller that flux2 bundles:
// the release URL in its manifests/bases/<controller>/kustomization.yaml.
func controllerVersion(fluxDir, controller string) (string, error) {
	path := filepath.Join(fluxDir, "manifests", "bases", controller, "kustomization.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading the %s version bundled by flux2: %w", controller, err)
	}
	re := regexp.MustCompile(`/` + regexp.QuoteMeta(controller) + `/releases/download/(v[^/\s]+)/`)
	m := re.FindSubmatch(raw)
	if m == nil {
		return "", fmt.Errorf("%s: no %s release URL to read the version from", path, controller)
	}
	return string(m[1]), nil
}

// chartImage is the image a chart deploys by default: values.yaml
// image.repository and image.tag, which must equal Chart.yaml appVersion
// (the kit builds the app at that version).
func chartImage(chartDir string) (string, error) {
	var values struct {
		Image struct{ Repository, Tag string }
	}
	var chart struct {
		AppVersion string `yaml:"appVersion"`
	}
	for _, f := range []struct {
		name string
		into any
	}{{"values.yaml", &values}, {"Chart.yaml", &chart}} {
		raw, err := os.ReadFile(filepath.Join(chartDir, f.name))
		if err != nil {
			return "", fmt.Errorf("reading the chart's default image: %w", err)
		}
		if err := yaml.Unmarshal(raw, f.into); err != nil {
			return "", fmt.Errorf("%s: %w", filepath.Join(chartDir, f.name), err)
		}
	}
	if values.Image.Repository == "" || values.Image.Tag == "" {
		return "", fmt.Errorf("%s: no image.repository or image.tag", filepath.Join(chartDir, "values.yaml"))
	}
	if values.Image.Tag != chart.AppVersion {
		return "", fmt.Errorf("%s: values.yaml image.tag %s differs from Chart.yaml appVersion %s", chartDir, values.Image.Tag, chart.AppVersion)
	}
	return values.Image.Repository + ":" + values.Image.Tag, nil
}

// copyFile copies a small file whole.
func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o600)
}
