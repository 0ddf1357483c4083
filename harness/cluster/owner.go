package cluster

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
	"sigs.k8s.io/kind/pkg/apis/config/defaults"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
)

// The ownership marker: Kubernetes labels on every node of a cluster the
// harness creates. kind (v0.33) has no option to label its node containers,
// but its v1alpha4 config carries node labels, which kubelet sets when the
// node registers, so the marker is part of the cluster from its creation on
// rather than written afterwards by a step that could be skipped.
const (
	LabelOwner          = "flux-fleet/owner" // always OwnerValue
	LabelFleet          = "flux-fleet/fleet" // Spec.Fleet, made a valid label value
	LabelRun            = "flux-fleet/run"   // Spec.RunID
	LabelNodeImageHash  = "flux-fleet/node-image-hash"
	LabelKindConfigHash = "flux-fleet/kind-config-hash"

	OwnerValue = "flux-fleet"
)

// hashLen is how many hex digits of a SHA-256 a marker keeps: label values
// are limited to 63 characters, and 128 bits tell configurations apart.
const hashLen = 32

// NotOwnedError is returned when a kind cluster of the requested name exists
// but does not carry the flux-fleet marker: it belongs to someone else and
// is neither deleted nor reused.
type NotOwnedError struct {
	Name string
	// Err is why the marker could not be read; nil when it was read and is
	// absent.
	Err error
}

func (e *NotOwnedError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("cluster %q exists and flux-fleet could not read its owner marker (%v): delete it (kind delete cluster --name %s) or set E2E_CLUSTER_PREFIX", e.Name, e.Err, e.Name)
	}
	return fmt.Sprintf("cluster %q exists and was not created by flux-fleet: delete it (kind delete cluster --name %s) or set E2E_CLUSTER_PREFIX", e.Name, e.Name)
}

func (e *NotOwnedError) Unwrap() error { return e.Err }

// marker is what the node labels say about a cluster.
type marker struct {
	owned      bool
	fleet      string
	run        string
	imageHash  string
	configHash string
}

// labels is the marker as node labels; empty values are left out.
func (m marker) labels() map[string]string {
	l := map[string]string{LabelOwner: OwnerValue}
	for k, v := range map[string]string{
		LabelFleet:          m.fleet,
		LabelRun:            m.run,
		LabelNodeImageHash:  m.imageHash,
		LabelKindConfigHash: m.configHash,
	} {
		if v != "" {
			l[k] = v
		}
	}
	return l
}

// inconsistent stands for a hash the nodes of one cluster disagree on; it
// matches no hash a Spec produces.
const inconsistent = "inconsistent"

// markerFromNodes reads the marker from the labels of a cluster's nodes.
// The cluster is flux-fleet's only when it has nodes and every one of them
// carries the owner label: a node added by hand would make it someone's.
func markerFromNodes(nodeLabels []map[string]string) marker {
	if len(nodeLabels) == 0 {
		return marker{}
	}
	m := marker{owned: true}
	for i, l := range nodeLabels {
		if l[LabelOwner] != OwnerValue {
			return marker{}
		}
		if i == 0 {
			m.fleet, m.run, m.imageHash, m.configHash = l[LabelFleet], l[LabelRun], l[LabelNodeImageHash], l[LabelKindConfigHash]
			continue
		}
		if l[LabelNodeImageHash] != m.imageHash {
			m.imageHash = inconsistent
		}
		if l[LabelKindConfigHash] != m.configHash {
			m.configHash = inconsistent
		}
	}
	return m
}

// action is what Create does about a cluster of the requested name.
type action int

const (
	actionCreate   action = iota // nothing exists: create
	actionRecreate               // a leftover of ours: delete, then create
	actionReuse                  // ours and as asked: reuse
)

// decide says what to do with an existing cluster, given its marker and
// the one this Spec would write. The reason is the one log line that says
// why a cluster is recreated.
func decide(name string, found, want marker, reuse bool) (action, string, error) {
	if !found.owned {
		return 0, "", &NotOwnedError{Name: name}
	}
	switch {
	case !reuse:
		return actionRecreate, fmt.Sprintf("cluster %s was left by flux-fleet run %s: deleting it", name, orNone(found.run)), nil
	case found.imageHash != want.imageHash:
		return actionRecreate, fmt.Sprintf("cluster %s not reused: it runs another node image than asked (marker %s, asked %s): recreating it", name, orNone(found.imageHash), want.imageHash), nil
	case found.configHash != want.configHash:
		return actionRecreate, fmt.Sprintf("cluster %s not reused: it was made from another kind config than asked (marker %s, asked %s): recreating it", name, orNone(found.configHash), want.configHash), nil
	}
	return actionReuse, "", nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

const (
	kindAPIVersion = "kind.x-k8s.io/v1alpha4"
	kindKind       = "Cluster"
)

// parseKindConfig decodes a raw kind config the way kind's own loader does
// (apiVersion and kind checked, unknown fields refused), so that passing the
// decoded struct to kind changes nothing but the labels the harness adds.
// nil or empty raw is kind's default config.
func parseKindConfig(raw []byte) (*v1alpha4.Cluster, error) {
	cfg := &v1alpha4.Cluster{TypeMeta: v1alpha4.TypeMeta{Kind: kindKind, APIVersion: kindAPIVersion}}
	if len(bytes.TrimSpace(raw)) == 0 {
		return cfg, nil
	}
	var tm struct {
		Kind       string `yaml:"kind"`
		APIVersion string `yaml:"apiVersion"`
	}
	if err := yaml.Unmarshal(raw, &tm); err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	if tm.APIVersion != kindAPIVersion || tm.Kind != kindKind {
		return nil, fmt.Errorf("apiVersion %q kind %q: want apiVersion %s kind %s", tm.APIVersion, tm.Kind, kindAPIVersion, kindKind)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// configHash identifies a kind config by its decoded content, so comments
// and formatting do not count as a change. It is taken before the marker
// labels are added.
func configHash(cfg *v1alpha4.Cluster) (string, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	return shortHash(b), nil
}

// nodeImages lists the node images kind will run: the override, else the
// images the config names, else kind's default.
func nodeImages(override string, cfg *v1alpha4.Cluster) []string {
	if override != "" {
		return []string{override}
	}
	var images []string
	for _, n := range cfg.Nodes {
		img := n.Image
		if img == "" {
			img = defaults.Image
		}
		if !slices.Contains(images, img) {
			images = append(images, img)
		}
	}
	if len(images) == 0 {
		images = []string{defaults.Image}
	}
	slices.Sort(images)
	return images
}

// imageHash identifies the node images. A reference pinned by digest names
// its content already; any other reference (a kit tag, say) is rebuilt in
// place, so the local image ID joins it. An image not present locally has no
// ID (kind pulls it), which makes the next run's hash differ once.
func imageHash(images []string, localID func(string) string) string {
	var b strings.Builder
	for _, img := range images {
		b.WriteString(img)
		if !strings.Contains(img, "@sha256:") {
			b.WriteString(" " + localID(img))
		}
		b.WriteString("\n")
	}
	return shortHash([]byte(b.String()))
}

func shortHash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:hashLen]
}

// withMarker adds the marker labels to every node of cfg (a node list kind
// would default to one control plane gets that node spelled out).
func withMarker(cfg *v1alpha4.Cluster, labels map[string]string) {
	if len(cfg.Nodes) == 0 {
		cfg.Nodes = []v1alpha4.Node{{Role: v1alpha4.ControlPlaneRole}}
	}
	for i := range cfg.Nodes {
		n := &cfg.Nodes[i]
		if n.Labels == nil {
			n.Labels = map[string]string{}
		}
		for k, v := range labels {
			n.Labels[k] = v
		}
	}
}

// labelValue makes s a valid Kubernetes label value: at most 63 characters
// of [A-Za-z0-9._-], starting and ending with a letter or digit; other
// characters become '-'. It may return "".
func labelValue(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			b[i] = '-'
		}
	}
	trim := func(b []byte) []byte {
		for len(b) > 0 && !isAlnum(b[0]) {
			b = b[1:]
		}
		for len(b) > 0 && !isAlnum(b[len(b)-1]) {
			b = b[:len(b)-1]
		}
		return b
	}
	b = trim(b)
	if len(b) > 63 {
		b = trim(b[:63])
	}
	return string(b)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// NewRunID returns an identifier for one harness run, for Spec.RunID: the
// UTC start time and a random suffix, valid as a label value.
func NewRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// errNoNodes is reported for a cluster whose API lists no nodes.
var errNoNodes = errors.New("the API server lists no nodes")
