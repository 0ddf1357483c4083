package record

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/flux-fleet/flux-fleet/harness/fluxobj"
)

// minScrubLen is the shortest string value Scrub replaces. Shorter values
// ("web", "on", "1") are ordinary words and digits of every message, so
// replacing them would make messages unreadable while hiding no real secret.
// Numbers and booleans are left alone for the same reason.
const minScrubLen = 4

// Scrubber replaces, in free text such as a controller's condition message,
// every string value of the values trees it was made from by that value's
// ValueDigest in angle brackets: Helm's schema errors and template failures
// quote the rejected value, and these messages reach artifacts and records.
// The zero value and nil replace nothing.
type Scrubber struct {
	// rules are the written forms of the values, longest first, so that a
	// value containing another is replaced whole.
	rules []scrubRule
}

type scrubRule struct{ old, new string }

// NewScrubber is the Scrubber of the string leaves of trees (values trees as
// decoded from YAML or JSON, typed maps such as a substitution's
// map[string]string, or single values).
func NewScrubber(trees ...any) *Scrubber {
	seen := map[string]bool{}
	var rules []scrubRule
	for _, tree := range trees {
		for _, leaf := range stringLeaves(tree) {
			v := leaf.value
			if utf8.RuneCountInString(v) < minScrubLen || plainScalar(v) || nameLike(v) && !secretKey.MatchString(leaf.path) {
				continue
			}
			digest := "<" + ValueDigest(v) + ">"
			for _, form := range writtenForms(v) {
				if !seen[form] {
					seen[form] = true
					rules = append(rules, scrubRule{old: form, new: digest})
				}
			}
		}
	}
	slices.SortStableFunc(rules, func(a, b scrubRule) int { return cmp.Compare(len(b.old), len(a.old)) })
	return &Scrubber{rules: rules}
}

// plainScalar reports whether v is the text of a number or a boolean, as
// substitutions spell them ("false", "30080"): left alone like numbers.
func plainScalar(v string) bool {
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return true
	}
	_, err := strconv.ParseBool(v)
	return err == nil
}

// nameShape is the lowercase spelling of Kubernetes names, namespaces,
// hosts, paths and image references ("nginx", "podinfo.staging",
// "ghcr.io/stefanprodan/podinfo:6.9.2").
var nameShape = regexp.MustCompile(`^[a-z0-9]([a-z0-9._/:@-]*[a-z0-9])?$`)

// secretKey matches the keys under which values hold credentials.
var secretKey = regexp.MustCompile(`(?i)pass|secret|token|key|cred|auth|cert|private|salt`)

// nameLike reports whether v has the shape of a name: such values name the
// objects, hosts and images a failure message is about, and replacing them
// would leave the reader unable to tell what failed. Under a key that
// holds credentials (secretKey) they are replaced all the same; elsewhere
// a secret of that shape is not hidden, the price of readable diagnostics
// (docs/safety.md). A URL with a user or password in it
// (postgres://app:pw@db) is never a name.
func nameLike(v string) bool { return nameShape.MatchString(v) && !hasUserinfo(v) }

// hasUserinfo reports whether v is a URL that carries a user name or password.
func hasUserinfo(v string) bool {
	u, err := url.Parse(v)
	return err == nil && u.Scheme != "" && u.User != nil
}

// Scrub returns msg with every value of s replaced by its digest.
func (s *Scrubber) Scrub(msg string) string {
	if s == nil || len(s.rules) == 0 || msg == "" {
		return msg
	}
	// Text already replaced is kept apart, so that a shorter value never
	// matches inside a digest or across the text around it.
	segs := []scrubSegment{{text: msg}}
	for _, r := range s.rules {
		segs = replaceIn(segs, r)
	}
	var b strings.Builder
	for _, seg := range segs {
		b.WriteString(seg.text)
	}
	return b.String()
}

// Empty reports whether s replaces nothing.
func (s *Scrubber) Empty() bool { return s == nil || len(s.rules) == 0 }

type scrubSegment struct {
	text string
	done bool
}

// replaceIn replaces r in the segments not yet replaced, wherever it stands
// as a whole word: a value that begins or ends with a letter or digit is not
// replaced inside a longer word ("Warn" stays in "Warning"), since a value
// is quoted whole or between punctuation, never glued to other letters.
func replaceIn(segs []scrubSegment, r scrubRule) []scrubSegment {
	var out []scrubSegment
	for _, seg := range segs {
		if seg.done || !strings.Contains(seg.text, r.old) {
			out = append(out, seg)
			continue
		}
		text, from := seg.text, 0
		for i := 0; i+len(r.old) <= len(text); {
			j := strings.Index(text[i:], r.old)
			if j < 0 {
				break
			}
			at := i + j
			if !wholeWord(text, at, at+len(r.old)) {
				i = at + 1
				continue
			}
			if at > from {
				out = append(out, scrubSegment{text: text[from:at]})
			}
			out = append(out, scrubSegment{text: r.new, done: true})
			from = at + len(r.old)
			i = from
		}
		if from < len(text) {
			out = append(out, scrubSegment{text: text[from:]})
		}
	}
	return out
}

// wholeWord reports whether text[start:end] is not glued to a letter or
// digit on a side where it begins or ends with one.
func wholeWord(text string, start, end int) bool {
	first, _ := utf8.DecodeRuneInString(text[start:end])
	last, _ := utf8.DecodeLastRuneInString(text[start:end])
	if start > 0 && isWordRune(first) {
		if before, _ := utf8.DecodeLastRuneInString(text[:start]); isWordRune(before) {
			return false
		}
	}
	if end < len(text) && isWordRune(last) {
		if after, _ := utf8.DecodeRuneInString(text[end:]); isWordRune(after) {
			return false
		}
	}
	return true
}

func isWordRune(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// writtenForms are the ways a message may spell v: as it is, Go-quoted (%q,
// as Kubernetes and Helm errors quote), as jsonschema quotes it ('…' with '
// escaped), and JSON-escaped (a message that embeds a JSON document).
func writtenForms(v string) []string {
	goQuoted := strconv.Quote(v)
	goQuoted = goQuoted[1 : len(goQuoted)-1]
	schemaQuoted := strings.ReplaceAll(strings.ReplaceAll(goQuoted, `\"`, `"`), `'`, `\'`)
	forms := []string{v, goQuoted, schemaQuoted}
	if j, err := json.Marshal(v); err == nil {
		forms = append(forms, string(j[1:len(j)-1]))
	}
	slices.Sort(forms)
	return slices.Compact(forms)
}

// stringLeaf is a string value and its key path ("auth.password").
type stringLeaf struct{ path, value string }

// stringLeaves lists the string leaves of a values tree.
func stringLeaves(tree any) []stringLeaf {
	if tree == nil {
		return nil
	}
	norm, err := normalize(tree)
	if err != nil {
		return nil
	}
	var out []stringLeaf
	walkLeaves("", norm, func(path string, v any) {
		if s, ok := v.(string); ok {
			out = append(out, stringLeaf{path: path, value: s})
		}
	})
	return out
}

// The labels kustomize-controller puts on every object it applies, naming
// the Kustomization.
const (
	appliedByName      = "kustomize.toolkit.fluxcd.io/name"
	appliedByNamespace = "kustomize.toolkit.fluxcd.io/namespace"
)

// ValuesInPlay are the values trees that an object's messages (conditions,
// events) may quote: a HelmRelease's spec.values and the post-build
// substitutions of the Kustomization among objs that applied it; a
// Kustomization's own substitutions and the values of the HelmReleases in
// its inventory (its dry-run and health errors). spec.valuesFrom is not
// read: its ConfigMaps and Secrets never reach the harness.
func ValuesInPlay(u *unstructured.Unstructured, objs []*unstructured.Unstructured) []any {
	var out []any
	switch u.GetKind() {
	case "HelmRelease":
		out = append(out, helmValues(u))
		if ks := appliedBy(u, objs); ks != nil {
			out = append(out, substitutions(ks))
		}
	case "Kustomization":
		out = append(out, substitutions(u))
		inv, _ := fluxobj.Inventory(u)
		for _, hr := range objs {
			if hr.GetKind() == "HelmRelease" && listed(inv, hr) {
				out = append(out, helmValues(hr))
			}
		}
	}
	return out
}

func helmValues(hr *unstructured.Unstructured) any {
	v, _, _ := unstructured.NestedFieldNoCopy(hr.Object, "spec", "values")
	return v
}

func substitutions(ks *unstructured.Unstructured) any {
	v, _, _ := unstructured.NestedFieldNoCopy(ks.Object, "spec", "postBuild", "substitute")
	return v
}

// listed reports whether inv names u.
func listed(inv []fluxobj.ObjectRef, u *unstructured.Unstructured) bool {
	ref := fluxobj.RefOf(u)
	return slices.ContainsFunc(inv, func(r fluxobj.ObjectRef) bool {
		return r.Kind == ref.Kind && r.Namespace == ref.Namespace && r.Name == ref.Name
	})
}

// appliedBy finds the Kustomization that applied u: the one its labels
// name, else one whose inventory lists it.
func appliedBy(u *unstructured.Unstructured, objs []*unstructured.Unstructured) *unstructured.Unstructured {
	labels := u.GetLabels()
	name, ns := labels[appliedByName], labels[appliedByNamespace]
	var listing *unstructured.Unstructured
	for _, k := range objs {
		if k.GetKind() != "Kustomization" {
			continue
		}
		if name != "" && k.GetName() == name && k.GetNamespace() == ns {
			return k
		}
		if inv, _ := fluxobj.Inventory(k); listing == nil && listed(inv, u) {
			listing = k
		}
	}
	return listing
}

// Scrubbers are the Scrubbers of one environment's Flux objects: each
// object's for what is said about it, so that a value of one release does
// not blank out the names in another's message, and one of every value for
// text that names no single object. nil scrubs nothing (raw values).
type Scrubbers struct {
	byRef map[string]*Scrubber
	env   *Scrubber
}

// NewScrubbers are the Scrubbers of objs (HelmReleases with their values,
// Kustomizations with their substitutions; other kinds carry none).
func NewScrubbers(objs []*unstructured.Unstructured) *Scrubbers {
	s := &Scrubbers{byRef: map[string]*Scrubber{}}
	var every []any
	for _, u := range objs {
		trees := ValuesInPlay(u, objs)
		if sc := NewScrubber(trees...); !sc.Empty() {
			s.byRef[fluxobj.RefOf(u).String()] = sc
			every = append(every, trees...)
		}
	}
	s.env = NewScrubber(every...)
	return s
}

// Object scrubs text about the object ref ("Kind/namespace/name").
func (s *Scrubbers) Object(ref, text string) string {
	if s == nil {
		return text
	}
	return s.byRef[ref].Scrub(text)
}

// All scrubs text that names no single object with every value.
func (s *Scrubbers) All(text string) string {
	if s == nil {
		return text
	}
	return s.env.Scrub(text)
}

// ReadScrubbers reads the HelmReleases and Kustomizations of a cluster and
// returns their Scrubbers; on an error, those of what could be read.
func ReadScrubbers(ctx context.Context, c *fluxobj.Clients) (*Scrubbers, error) {
	var objs []*unstructured.Unstructured
	var errs []error
	for _, kind := range []string{"HelmRelease", "Kustomization"} {
		items, err := listFlux(ctx, c, kind)
		if err != nil {
			errs = append(errs, err)
		}
		for i := range items {
			objs = append(objs, &items[i])
		}
	}
	if err := errors.Join(errs...); err != nil {
		return NewScrubbers(objs), fmt.Errorf("reading the values to scrub: %w", err)
	}
	return NewScrubbers(objs), nil
}
