package preflight

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KitVersionsFile is where the offline kit pins the versions it builds,
// relative to the repository root; KUBERNETES_VERSION there is the kind
// node's version, which charts are rendered for.
const KitVersionsFile = "hack/kit/versions.env"

// KitKubeVersion reads KUBERNETES_VERSION from the kit's versions file
// under the repository root, so the version is written in one place.
func KitKubeVersion(repoRoot string) (string, error) {
	p := filepath.Join(repoRoot, filepath.FromSlash(KitVersionsFile))
	data, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("reading the kind node's Kubernetes version: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "KUBERNETES_VERSION="); ok {
			v = strings.Trim(v, `"'`)
			if v == "" {
				break
			}
			return v, nil
		}
	}
	return "", fmt.Errorf("%s sets no KUBERNETES_VERSION", p)
}
