package fluxinstall

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// fluxModule is the module whose version decides which Flux release is
// installed: the manifests the harness generates must match the manifestgen
// code compiled into it, so go.mod is the single source of truth.
const fluxModule = "github.com/fluxcd/flux2/v2"

// FluxVersion returns the version of github.com/fluxcd/flux2/v2 this binary
// was built with (for example "v2.9.5"). It reads the build info first and
// falls back to the go.mod found by walking up from the working directory,
// which covers binaries built without module information.
func FluxVersion() (string, error) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := versionFromBuildInfo(bi); v != "" {
			return v, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("resolving Flux version: %w", err)
	}
	gomod, err := findGoMod(wd)
	if err != nil {
		return "", fmt.Errorf("resolving Flux version: %w", err)
	}
	data, err := os.ReadFile(gomod)
	if err != nil {
		return "", fmt.Errorf("resolving Flux version: %w", err)
	}
	v, err := versionFromGoMod(data)
	if err != nil {
		return "", fmt.Errorf("resolving Flux version from %s: %w", gomod, err)
	}
	return v, nil
}

func versionFromBuildInfo(bi *debug.BuildInfo) string {
	for _, dep := range bi.Deps {
		if dep.Path != fluxModule {
			continue
		}
		if dep.Replace != nil && dep.Replace.Version != "" {
			return dep.Replace.Version
		}
		return dep.Version
	}
	return ""
}

// findGoMod walks up from dir to the nearest go.mod.
func findGoMod(dir string) (string, error) {
	for {
		p := filepath.Join(dir, "go.mod")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found in the working directory or its parents")
		}
		dir = parent
	}
}

// versionFromGoMod scans go.mod text for the Flux module's required version.
// A replace directive with a version wins, as it does for the go command.
// A line scan is enough here: the go.mod grammar for require and replace
// lines is simple and this avoids another module dependency.
func versionFromGoMod(data []byte) (string, error) {
	var required, replaced string
	block := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if block != "" {
			if fields[0] == ")" {
				block = ""
				continue
			}
			fields = append([]string{block}, fields...)
		} else if len(fields) == 2 && fields[1] == "(" {
			block = fields[0]
			continue
		}
		switch fields[0] {
		case "require":
			if len(fields) >= 3 && fields[1] == fluxModule {
				required = fields[2]
			}
		case "replace":
			// replace <mod> [<ver>] => <newmod> [<newver>]
			if len(fields) >= 4 && fields[1] == fluxModule {
				rhs := fields[2:]
				if rhs[0] != "=>" && len(rhs) > 1 {
					rhs = rhs[1:]
				}
				if len(rhs) == 3 && rhs[0] == "=>" {
					replaced = rhs[2]
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if replaced != "" {
		return replaced, nil
	}
	if required == "" {
		return "", fmt.Errorf("%s is not required", fluxModule)
	}
	return required, nil
}
