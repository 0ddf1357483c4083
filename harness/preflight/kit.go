package preflight

import (
	"fmt"

	"github.com/flux-fleet/flux-fleet/harness/kitprofile"
)

// KitVersionsFile is where the offline kit pins the versions it builds,
// relative to the repository root; KUBERNETES_VERSION there is the kind
// node's version, which charts are rendered for.
const KitVersionsFile = kitprofile.VersionsFile

// KitKubeVersion reads KUBERNETES_VERSION from the kit's versions file
// under the repository root, so the version is written in one place.
func KitKubeVersion(repoRoot string) (string, error) {
	versions, err := kitprofile.ReadVersions(repoRoot)
	if err != nil {
		return "", fmt.Errorf("reading the kind node's Kubernetes version: %w", err)
	}
	v, err := kitprofile.LookupVersion(versions, "KUBERNETES_VERSION")
	if err != nil || v == "" {
		return "", fmt.Errorf("reading the kind node's Kubernetes version: %s sets no KUBERNETES_VERSION", KitVersionsFile)
	}
	return v, nil
}
