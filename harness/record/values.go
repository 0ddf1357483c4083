package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
)

// digestHex is how many hex digits of the sha256 a value digest keeps: enough
// to tell two values apart in a diff, short enough to read.
const digestHex = 12

// RootKey is the key Values gives a values tree that is a single value
// rather than a map or a list.
const RootKey = "."

// ValueDigest is "sha256:" and the first 12 hex digits of the sha256 of v's
// canonical JSON (object keys sorted). Artifacts and records carry it instead
// of a value that may be secret (HelmRelease values, post-build
// substitutions), so that a diff still shows which value changed.
func ValueDigest(v any) string {
	data, err := canonicalJSON(v)
	if err != nil {
		// Unstructured content always encodes; a value that does not is
		// still never written out.
		data = []byte(err.Error())
	}
	return digestOfJSON(data)
}

// digestOfJSON is ValueDigest of the value whose canonical JSON is data.
func digestOfJSON(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])[:digestHex]
}

// canonicalJSON encodes v with sorted object keys and numbers as written,
// whatever Go types hold it (unstructured content, typed maps, structs).
func canonicalJSON(v any) ([]byte, error) {
	norm, err := normalize(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(norm)
}

// normalize turns v into plain JSON values (map[string]any, []any,
// json.Number, string, bool, nil), so that the same content has the same
// digest however it was decoded.
func normalize(v any) (any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// RedactValues returns a copy of a values tree with every leaf (a scalar, an
// empty map or list) replaced by its ValueDigest: the keys and the shape stay
// readable, the values do not. nil stays nil.
func RedactValues(tree any) any {
	if tree == nil {
		return nil
	}
	norm, err := normalize(tree)
	if err != nil {
		return ValueDigest(tree)
	}
	return redactNode(norm)
}

func redactNode(v any) any {
	switch n := v.(type) {
	case map[string]any:
		if len(n) == 0 {
			return ValueDigest(n)
		}
		out := make(map[string]any, len(n))
		for k, child := range n {
			out[k] = redactNode(child)
		}
		return out
	case []any:
		if len(n) == 0 {
			return ValueDigest(n)
		}
		out := make([]any, len(n))
		for i, child := range n {
			out[i] = redactNode(child)
		}
		return out
	default:
		return ValueDigest(n)
	}
}

// Values flattens a values tree into one entry per leaf, keyed by its path
// (map keys joined with ".", list elements as "[i]", a "." "[" "]" or "\" in
// a key escaped with "\"), each the leaf's ValueDigest — or, with raw, its
// canonical JSON. A tree that is a single value has the key RootKey. The
// result is never nil, so a record tells "no values" from "not recorded".
func Values(tree any, raw bool) map[string]string {
	out := map[string]string{}
	if tree == nil {
		return out
	}
	norm, err := normalize(tree)
	if err != nil {
		out[RootKey] = ValueDigest(tree)
		return out
	}
	leaf := func(path string, v any) {
		if path == "" {
			path = RootKey
		}
		data, err := json.Marshal(v)
		switch {
		case err != nil:
			out[path] = ValueDigest(v)
		case raw:
			out[path] = string(data)
		default:
			out[path] = digestOfJSON(data)
		}
	}
	walkLeaves("", norm, leaf)
	return out
}

func walkLeaves(path string, v any, leaf func(path string, v any)) {
	switch n := v.(type) {
	case map[string]any:
		if len(n) == 0 {
			leaf(path, n)
			return
		}
		keys := make([]string, 0, len(n))
		for k := range n {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := escapeKey(k)
			if path != "" {
				p = path + "." + p
			}
			walkLeaves(p, n[k], leaf)
		}
	case []any:
		if len(n) == 0 {
			leaf(path, n)
			return
		}
		for i, child := range n {
			walkLeaves(path+"["+strconv.Itoa(i)+"]", child, leaf)
		}
	default:
		leaf(path, n)
	}
}

var keyEscaper = strings.NewReplacer(`\`, `\\`, `.`, `\.`, `[`, `\[`, `]`, `\]`)

func escapeKey(k string) string { return keyEscaper.Replace(k) }
