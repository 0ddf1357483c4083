package cluster

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// plantedProxy is the password of the proxy the fake nodes are configured
// with; no exported log may carry it.
const plantedProxy = "PLANTED-proxy-pw-3c9a"

// An export cut short by ctx leaves nothing in dir, then or after kind
// finishes writing, and its temporary directory goes once kind returns.
func TestExportLogsInterruptedWritesNothing(t *testing.T) {
	kind := testsupport.FakeKindLogExport(t, "hx-fake", plantedProxy, true)
	dir := filepath.Join(t.TempDir(), "staging", "kind-logs")
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	kind.CancelOnceStarted(t, cancel, errors.New("out of time (test)"))
	c := &Cluster{Name: "hx-fake", log: newLineWriter(io.Discard)}
	if err := c.ExportLogs(ctx, dir); err == nil || !strings.Contains(err.Error(), "interrupted") {
		t.Fatalf("ExportLogs = %v, want an interruption", err)
	}
	testsupport.WaitFor(t, "kind's inspect", func() bool { _, err := os.Stat(kind.Done); return err == nil })
	testsupport.WaitFor(t, "the temporary directory's removal", func() bool { entries, _ := os.ReadDir(kind.TmpDir); return len(entries) == 0 })
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after an interrupted export (%v):\n%s", dir, err, strings.Join(treeFiles(t, dir), "\n"))
	}
}

// redact sees kind's output before dir exists; dir gets it afterwards,
// private, with the note of what kind could not gather.
func TestExportRedactedLogsRedactsBeforeMoving(t *testing.T) {
	tmpDir := testsupport.FakeKindLogExport(t, "hx-fake", plantedProxy, false).TmpDir
	dir := filepath.Join(t.TempDir(), "staging", "kind-logs")
	c := &Cluster{Name: "hx-fake", log: newLineWriter(io.Discard)}
	redacted := ""
	redact := func(tmp string) error {
		if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists before redaction: %v", dir, err)
		}
		redacted = tmp
		return filepath.WalkDir(tmp, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(path, []byte(strings.ReplaceAll(string(data), plantedProxy, "<redacted>")), 0o600)
		})
	}
	if err := c.ExportRedactedLogs(context.Background(), dir, redact); err != nil {
		t.Fatalf("ExportRedactedLogs: %v", err)
	}
	if redacted == "" || redacted == dir {
		t.Fatalf("redact ran on %q, want kind's temporary directory", redacted)
	}
	inspect, err := os.ReadFile(filepath.Join(dir, "hx-fake-control-plane", "inspect.json"))
	if err != nil || !strings.Contains(string(inspect), "HTTP_PROXY=http://u:<redacted>@proxy:3128") {
		t.Errorf("inspect.json = %q, %v; want it redacted", inspect, err)
	}
	for _, path := range treeFiles(t, dir) {
		if data, _ := os.ReadFile(path); strings.Contains(string(data), plantedProxy) {
			t.Errorf("%s holds the proxy password", path)
		}
	}
	assertMode(t, dir, fs.ModeDir|0o700)
	assertMode(t, filepath.Join(dir, collectErrorsFile), 0o600)
	if entries, _ := os.ReadDir(tmpDir); len(entries) != 0 {
		t.Errorf("temporary directory left behind: %v", entries)
	}
}

// When redaction fails, nothing is kept.
func TestExportRedactedLogsKeepsNothingUnredacted(t *testing.T) {
	tmpDir := testsupport.FakeKindLogExport(t, "hx-fake", plantedProxy, false).TmpDir
	dir := filepath.Join(t.TempDir(), "kind-logs")
	c := &Cluster{Name: "hx-fake", log: newLineWriter(io.Discard)}
	err := c.ExportRedactedLogs(context.Background(), dir, func(string) error { return errors.New("cannot parse inspect.json") })
	if err == nil || !strings.Contains(err.Error(), "redacting them (none kept): cannot parse inspect.json") {
		t.Fatalf("ExportRedactedLogs = %v, want the redaction's error", err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists after a failed redaction: %v", dir, err)
	}
	if entries, _ := os.ReadDir(tmpDir); len(entries) != 0 {
		t.Errorf("temporary directory left behind: %v", entries)
	}
}

// The copy that stands in for a rename across filesystems makes everything
// private and copies symbolic links as links.
func TestCopyTreeLogsPrivately(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	if err := os.MkdirAll(filepath.Join(src, "node", "pods"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "node", "journal.log"), []byte("journal\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/var/log/pods/x.log", filepath.Join(src, "node", "pods", "x.log")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if err := copyTree(src, dst); err != nil {
		t.Fatalf("copyTree: %v", err)
	}
	assertMode(t, dst, fs.ModeDir|0o700)
	assertMode(t, filepath.Join(dst, "node", "pods"), fs.ModeDir|0o700)
	assertMode(t, filepath.Join(dst, "node", "journal.log"), 0o600)
	if data, _ := os.ReadFile(filepath.Join(dst, "node", "journal.log")); string(data) != "journal\n" {
		t.Errorf("journal.log = %q", data)
	}
	if link, err := os.Readlink(filepath.Join(dst, "node", "pods", "x.log")); err != nil || link != "/var/log/pods/x.log" {
		t.Errorf("the link became %q, %v", link, err)
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Lstat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if got := info.Mode(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

// treeFiles lists the files under root, none when it does not exist.
func treeFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	return files
}

// moveDir takes an empty directory's place (os.Rename alone refuses it, as
// a test's t.TempDir showed), and never one that holds something, or a file.
func TestMoveDirOntoExisting(t *testing.T) {
	newSrc := func() string {
		src := t.TempDir()
		if err := os.WriteFile(filepath.Join(src, "kubelet.log"), []byte("log\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return src
	}
	empty := t.TempDir()
	if err := moveDir(newSrc(), empty); err != nil {
		t.Fatalf("onto an empty directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(empty, "kubelet.log")); err != nil {
		t.Errorf("onto an empty directory: %v", err)
	}

	full := t.TempDir()
	mine := filepath.Join(full, "someone-elses.txt")
	if err := os.WriteFile(mine, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := moveDir(newSrc(), full); err == nil || !strings.Contains(err.Error(), "exists and is not empty") {
		t.Errorf("onto a directory that holds a file: %v, want a refusal", err)
	}
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := moveDir(newSrc(), file); err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Errorf("onto a file: %v, want a refusal", err)
	}
	for _, p := range []string{mine, file} {
		if got, _ := os.ReadFile(p); string(got) != "keep\n" {
			t.Errorf("%s now holds %q", p, got)
		}
	}
}
