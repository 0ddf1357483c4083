package renderdiff

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// OmittedFields are the fields left out of every object before comparing:
// what the API server sets on its own, which a render either lacks or
// holds as a placeholder (kustomize writes creationTimestamp: null).
func OmittedFields() []string {
	return []string{
		"status",
		"metadata.creationTimestamp",
		"metadata.generation",
		"metadata.managedFields",
		"metadata.resourceVersion",
		"metadata.selfLink",
		"metadata.uid",
	}
}

// normalize returns a copy of an object as compared and printed: numbers
// kept exactly (json.Number), OmittedFields removed, Secret values replaced
// by their digests.
func normalize(raw map[string]any) map[string]any {
	data, err := json.Marshal(raw)
	if err != nil {
		// Objects come from YAML or JSON decoders: always encodable.
		return map[string]any{"unencodable": err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return map[string]any{"undecodable": err.Error()}
	}
	for _, path := range OmittedFields() {
		deletePath(out, strings.Split(path, "."))
	}
	if out["kind"] == "Secret" && out["apiVersion"] == "v1" {
		redactSecret(out)
	}
	return out
}

func deletePath(m map[string]any, path []string) {
	for len(path) > 1 {
		next, ok := m[path[0]].(map[string]any)
		if !ok {
			return
		}
		m, path = next, path[1:]
	}
	delete(m, path[0])
}

// redactSecret replaces every value of data and stringData with a digest
// of the value itself (data decoded from base64), so that a changed value
// shows as a changed digest and the same value compares equal in either
// field, while no value is ever printed.
func redactSecret(secret map[string]any) {
	for _, field := range []string{"data", "stringData"} {
		values, ok := secret[field].(map[string]any)
		if !ok {
			continue
		}
		for k, v := range values {
			s := fmt.Sprint(v)
			plain := []byte(s)
			if field == "data" {
				if decoded, err := base64.StdEncoding.DecodeString(s); err == nil {
					plain = decoded
				}
			}
			values[k] = secretDigest(plain)
		}
	}
}

// secretDigest stands in for a Secret value: the start of its sha256 and
// its length, enough to see that it changed and not enough to print it.
func secretDigest(value []byte) string {
	sum := sha256.Sum256(value)
	return fmt.Sprintf("(secret value: sha256 %s…, %d bytes)", hex.EncodeToString(sum[:8]), len(value))
}

// toYAML renders a value as sorted-key YAML; values that cannot be encoded
// say so instead.
func toYAML(v any) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return fmt.Sprintf("# cannot render as YAML: %v\n", err)
	}
	return string(b)
}
