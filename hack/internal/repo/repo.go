// Package repo finds, for the commands under hack/, the repository root and
// the fleet directory they work on when no flag names one.
package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FleetDirVar names the fleet directory when -fleet is empty, for the
// commands run by hand (make always passes -fleet).
const FleetDirVar = "FLEET_DIR"

// Root walks up from the working directory to the directory holding go.mod.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the repository root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found above the working directory")
		}
		dir = parent
	}
}

// FleetDir is the fleet directory a command works on: flag when set, else
// $FLEET_DIR, else the repository root. An empty flag means the default.
func FleetDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if dir := os.Getenv(FleetDirVar); dir != "" {
		return dir, nil
	}
	return Root()
}
