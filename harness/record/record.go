// Package record writes down what one run deployed to one environment — the
// fleet revision served, what each Kustomization applied, the chart each
// HelmRelease resolved, the image digests each workload runs — as a small
// JSON file, so that two runs (last green night and tonight, an upgrade's
// base and head) compare with Diff or a plain diff of the two files.
// HelmRelease values and post-build substitutions are recorded by key and
// digest (ValueDigest), never by value unless Options.RawValues asks.
package record

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/internal/privatefile"
)

// Format is the record's format version, written into every file.
const Format = 1

// Record is what one environment ran after one readiness wait.
type Record struct {
	Format int       `json:"format"`
	Env    string    `json:"env"`
	Time   time.Time `json:"time"`
	// Outcome is "Ready", or why the environment was not.
	Outcome        string          `json:"outcome"`
	Fleet          Fleet           `json:"fleet"`
	Kustomizations []Kustomization `json:"kustomizations"`
	HelmReleases   []HelmRelease   `json:"helmReleases"`
	Workloads      []Workload      `json:"workloads"`
	// RawValues marks a record whose Values and Substitute hold the values
	// themselves (canonical JSON) rather than their digests: the caller
	// opted in with Options.RawValues.
	RawValues bool `json:"rawValues,omitempty"`
}

// Fleet is the git revision the clusters synced.
type Fleet struct {
	// Served is the commit the harness's git server served (Flux's
	// revision is "<branch>@sha1:<Served>").
	Served string `json:"served"`
	// Commit is the fleet repository's commit the content came from: the
	// revision asked for, or the HEAD under a working-tree snapshot.
	Commit string `json:"commit,omitempty"`
	// Ref is the revision as asked for (E2E_REVISION, E2E_BASE); empty for
	// the working tree.
	Ref string `json:"ref,omitempty"`
	// WorkingTree marks a snapshot of the working tree, uncommitted edits
	// included.
	WorkingTree bool `json:"workingTree,omitempty"`
	// Path is the fleet directory inside its repository.
	Path string `json:"path,omitempty"`
}

// Kustomization is one Flux Kustomization and what it applied.
type Kustomization struct {
	Ref               string   `json:"ref"` // Kustomization/<ns>/<name>
	AppliedRevision   string   `json:"appliedRevision,omitempty"`
	AttemptedRevision string   `json:"attemptedRevision,omitempty"`
	Objects           []Object `json:"objects"`
	// Substitute is spec.postBuild.substitute: each variable's name and the
	// digest of its value (ValueDigest), never the value unless the record
	// is RawValues. nil in a record written before it was recorded.
	Substitute map[string]string `json:"substitute"`
}

// Object is one entry of a Kustomization's inventory.
type Object struct {
	Ref   string `json:"ref"` // Kind/<ns>/<name>, or Kind/<name>
	Group string `json:"group,omitempty"`
	// Digest is a sha256 of the object as applied (its spec, data and
	// labels; no status and no fields the API server or controllers write),
	// so that an object changed by an upgrade differs; empty when the
	// object was not found.
	Digest string `json:"digest,omitempty"`
}

// HelmRelease is one HelmRelease and the chart release it installed.
type HelmRelease struct {
	Ref     string `json:"ref"` // HelmRelease/<ns>/<name>
	Chart   string `json:"chart,omitempty"`
	Version string `json:"version,omitempty"` // chart version
	// ChartDigest identifies the chart artifact resolved: the OCI manifest
	// digest for OCI sources, else the digest of source-controller's chart
	// artifact.
	ChartDigest string `json:"chartDigest,omitempty"`
	AppVersion  string `json:"appVersion,omitempty"`
	// ConfigDigest is helm-controller's digest of the values and chart
	// config: it changes when only the values change.
	ConfigDigest string `json:"configDigest,omitempty"`
	// Release is the Helm release version and Status its status
	// (deployed, failed, ...), from status.history.
	Release int    `json:"release,omitempty"`
	Status  string `json:"status,omitempty"`
	// Values is spec.values, one entry per leaf by its path (see Values):
	// the digest of each value, never the value unless the record is
	// RawValues. nil in a record written before it was recorded.
	Values map[string]string `json:"values"`
}

// Workload is a Deployment, StatefulSet or DaemonSet (or a pod without
// one) and the images it runs.
type Workload struct {
	Ref        string      `json:"ref"` // Kind/<ns>/<name>
	Containers []Container `json:"containers"`
}

// Container is one container of a workload's pod template and what its
// running pods resolved the image to.
type Container struct {
	Name  string `json:"name"`
	Image string `json:"image"` // as in the pod template
	// ImageIDs are the distinct image digests the running containers report
	// (containerStatuses[].imageID); more than one while a roll is under way.
	ImageIDs []string `json:"imageIDs,omitempty"`
}

// FileName is the record's file name in the artifacts directory:
// record-<env>.json, or record-<env>-<tag>.json.
func FileName(env, tag string) string {
	if tag == "" {
		return "record-" + env + ".json"
	}
	return "record-" + env + "-" + tag + ".json"
}

// Write writes r as indented JSON (stable order, so a text diff of two
// records reads well) to path, creating its directory. The file is 0600 and
// a directory it creates 0700: artifacts get uploaded, and only their owner
// should read them before that.
func Write(path string, r *Record) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the record of %s: %w", r.Env, err)
	}
	return privatefile.Write(path, append(data, '\n'))
}

// Read reads a record written by Write.
func Read(path string) (*Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("record %s: not a record: %w", path, err)
	}
	if r.Format != Format {
		return nil, fmt.Errorf("record %s: format %d, this harness reads format %d", path, r.Format, Format)
	}
	return &r, nil
}
