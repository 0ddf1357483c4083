package diagnose

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/flux-fleet/flux-fleet/harness/internal/redact"
	"github.com/flux-fleet/flux-fleet/harness/record"
)

// Redacted replaces a value the artifacts must not carry.
const Redacted = redact.Redacted

// inspectFile is the name kind's log export gives each node container's
// `docker inspect` output; its Config.Env holds the node's environment,
// proxy settings with their credentials included.
const inspectFile = "inspect.json"

// RedactKindLogs makes a directory written by kind's log export
// (cluster.ExportRedactedLogs runs it before the logs move into the
// artifacts) fit to upload: in every inspect.json each Config.Env
// entry keeps its name and its value becomes "<redacted>"; in every file,
// the credentials of a URL (http://user:pass@proxy) become "<redacted>",
// and each value of values (the environment's, see record.Scrubbers; nil
// for raw values) its digest: kind copies the nodes' /var/log, the Flux
// controllers' logs among them, and helm-controller logs Helm's errors,
// which quote values. Files are made 0600 and directories 0700, dir
// included. Symbolic links are left alone, never followed. A file that cannot be made safe is
// removed and named in the returned error. It is local file work and runs
// to its end whatever became of the run: stopping halfway would leave the
// rest unredacted.
func RedactKindLogs(dir string, values *record.Scrubbers) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil // the export wrote nothing
	}
	var errs []error
	// The callback records every failure and goes on, so WalkDir itself
	// returns none.
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, fmt.Errorf("reading kind logs %s: %w", path, err))
			return nil
		}
		switch {
		case d.IsDir():
			if err := os.Chmod(path, dirMode); err != nil {
				errs = append(errs, fmt.Errorf("making directory %s private: %w", path, err))
			}
		case d.Type().IsRegular():
			if err := redactLogFile(path, d.Name() == inspectFile, values); err != nil {
				errs = append(errs, withhold(path, err))
			}
		}
		return nil
	})
	return errors.Join(errs...)
}

// withhold removes a file that could not be redacted: a log missing from the
// artifacts is better than a credential in them.
func withhold(path string, cause error) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("redacting %s: %w; removing it too: %w", path, cause, err)
	}
	return fmt.Errorf("redacting %s: %w (file removed)", path, cause)
}

// redactLogFile rewrites path without its secrets (inspect says it is a
// docker inspect document) and makes it 0600. A file with nothing to redact
// is left as it is.
func redactLogFile(path string, inspect bool, values *record.Scrubbers) error {
	if err := os.Chmod(path, fileMode); err != nil {
		return fmt.Errorf("making it private: %w", err)
	}
	if inspect {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, err := redactInspect(data)
		if err != nil {
			return err
		}
		return replaceFile(path, func(w io.Writer) (bool, error) {
			_, err := w.Write(out)
			return true, err
		})
	}
	found, err := scrubLines(path, io.Discard, values)
	if err != nil || !found {
		return err
	}
	return replaceFile(path, func(w io.Writer) (bool, error) { return scrubLines(path, w, values) })
}

// redactInspect rewrites `docker inspect` output (a JSON list of containers)
// with every Config.Env value replaced, then scrubs URL credentials from
// what remains. Output that is not JSON is kept only when it cannot hold an
// environment (docker's error message for a node that went away).
func redactInspect(data []byte) ([]byte, error) {
	var containers []map[string]json.RawMessage
	if err := json.Unmarshal(data, &containers); err != nil {
		if !bytes.Contains(data, []byte(`"Env"`)) {
			return redact.URLCredentials(data), nil
		}
		return nil, fmt.Errorf("not a docker inspect document: %w", err)
	}
	for i, c := range containers {
		raw, ok := c["Config"]
		if !ok || string(raw) == "null" {
			continue
		}
		var config map[string]json.RawMessage
		if err := json.Unmarshal(raw, &config); err != nil {
			return nil, fmt.Errorf("container %d: Config: %w", i, err)
		}
		env, err := redactEnv(config["Env"])
		if err != nil {
			return nil, fmt.Errorf("container %d: Config.Env: %w", i, err)
		}
		if env == nil {
			continue
		}
		config["Env"] = env
		if c["Config"], err = json.Marshal(config); err != nil {
			return nil, fmt.Errorf("container %d: Config: %w", i, err)
		}
	}
	// Four spaces, as docker inspect indents.
	out, err := json.MarshalIndent(containers, "", "    ")
	if err != nil {
		return nil, err
	}
	out = redact.URLCredentials(out)
	return append(out, '\n'), nil
}

// redactEnv turns ["NAME=value", ...] into ["NAME=<redacted>", ...]; nil
// when there is no list to redact.
func redactEnv(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var env []string
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, err
	}
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		env[i] = name + "=" + Redacted
	}
	return json.Marshal(env)
}

// scrubLines copies path to w with URL credentials redacted and every value
// of values replaced, line by line (journals run to many megabytes); it
// reports whether anything changed. With io.Discard it only looks, so that
// files with nothing to hide are not rewritten.
func scrubLines(path string, w io.Writer, values *record.Scrubbers) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	changed := false
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			// Credentials come before an '@', with a scheme or without
			// (HTTPS_PROXY=user:pass@proxy).
			if bytes.IndexByte(line, '@') >= 0 {
				if out := redact.URLCredentials(line); !bytes.Equal(out, line) {
					line, changed = out, true
				}
			}
			if out := values.All(string(line)); out != string(line) {
				line, changed = []byte(out), true
			}
			if _, werr := w.Write(line); werr != nil {
				return false, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return changed, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// replaceFile writes path's new content through a temporary file (0600) in
// its directory and renames it over path when write reports a change.
func replaceFile(path string, write func(io.Writer) (bool, error)) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".redact-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	bw := bufio.NewWriter(tmp)
	changed, err := write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil || !changed {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
