package chartserver

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/testsupport"
)

// archiveFiles fetches a chart's archive over HTTP, as a Helm repository
// client does, and returns its files by name.
func archiveFiles(t *testing.T, s *Server, chartName, version string) map[string]string {
	t.Helper()
	user, pass := s.Credentials()
	_, archive, err := helmRepoFetch(t, s, user, pass, chartName, version)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("served archive: %v", err)
	}
	files := map[string]string{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatalf("served archive: %v", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("served archive: %s: %v", h.Name, err)
		}
		files[h.Name] = string(b)
	}
}

// plantSecret writes a host file outside every chart holding a unique
// marker, and returns its path and the marker.
func plantSecret(t *testing.T) (path, marker string) {
	t.Helper()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	marker = "SECRET-" + hex.EncodeToString(b)
	path = filepath.Join(t.TempDir(), "host-credentials")
	testsupport.WriteFile(t, filepath.Dir(path), filepath.Base(path), marker+"\n")
	return path, marker
}

// TestSymlinkOutOfChartRefused: a link in a chart to a host file fails
// Start, and a later Publish, naming the link and its target; the running
// server keeps serving the archive it had, without the file.
func TestSymlinkOutOfChartRefused(t *testing.T) {
	secret, marker := plantSecret(t)
	root := t.TempDir()
	dir := writeChart(t, root, "demo", "0.1.0", "hello")
	link := filepath.Join(dir, "files", "credentials")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, link); err != nil {
		t.Fatal(err)
	}
	wantErr := []string{"symbolic link " + link + " -> " + secret, "outside the chart directory"}
	s, err := Start(t.Context(), Options{Addr: "127.0.0.1", ChartDirs: []string{root}})
	if err == nil {
		_ = s.Close()
		t.Fatal("Start packaged a chart with a link to a host file")
	}
	for _, w := range wantErr {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("Start error %q\ndoes not say %q", err, w)
		}
	}

	// A link to a directory above the chart is refused the same way.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../..", link); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(t.Context(), Options{Addr: "127.0.0.1", ChartDirs: []string{root}}); err == nil ||
		!strings.Contains(err.Error(), "symbolic link "+link+" -> ../.. points outside the chart directory") {
		t.Errorf("Start with a link to the chart's parent = %v, want it refused", err)
	}

	// Links that stay inside the chart are packaged as the files they
	// point to.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../values.yaml", link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../files", filepath.Join(dir, "templates", "files-again")); err != nil {
		t.Fatal(err)
	}
	s = start(t, Options{ChartDirs: []string{root}})
	files := archiveFiles(t, s, "demo", "0.1.0")
	if files["demo/files/credentials"] != "greeting: hello\n" || files["demo/templates/files-again/credentials"] != "greeting: hello\n" {
		t.Errorf("links inside the chart not packaged as their targets: %v", files)
	}

	if err := os.Symlink(secret, filepath.Join(dir, "templates", "credentials.yaml")); err != nil {
		t.Fatal(err)
	}
	_, err = s.Publish(t.Context())
	if err == nil || !strings.Contains(err.Error(), "symbolic link "+filepath.Join(dir, "templates", "credentials.yaml")+" -> "+secret) {
		t.Errorf("Publish with a link to a host file = %v, want it refused naming the link and its target", err)
	}
	for name, content := range archiveFiles(t, s, "demo", "0.1.0") {
		if strings.Contains(content, marker) {
			t.Errorf("served archive holds the host file as %s", name)
		}
	}
}

// TestSymlinkLoopRefused: a link back to a directory that holds it would
// copy forever; it is refused, naming the link.
func TestSymlinkLoopRefused(t *testing.T) {
	root := t.TempDir()
	dir := writeChart(t, root, "demo", "0.1.0", "hello")
	link := filepath.Join(dir, "templates", "loop")
	if err := os.Symlink("..", link); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{Addr: "127.0.0.1", ChartDirs: []string{root}})
	if err == nil || !strings.Contains(err.Error(), "symbolic link "+link+" -> .. leads back to a directory it is in") {
		t.Errorf("Start with a link loop = %v, want it refused naming %s", err, link)
	}
}

// TestGitIgnoredChartFilesNotPackaged: a chart in a checkout is packaged
// from what git would serve: ignored files are absent from the served
// archive, tracked-though-ignored and untracked-not-ignored ones present.
func TestGitIgnoredChartFilesNotPackaged(t *testing.T) {
	testsupport.RequireGit(t, "charts in a checkout are packaged from what git lists")
	_, marker := plantSecret(t)
	repo := t.TempDir()
	testsupport.Git(t, repo, "init", "--quiet", "--initial-branch=main")
	testsupport.WriteFile(t, repo, ".gitignore", "*.local.yaml\n.work/\n")
	dir := writeChart(t, filepath.Join(repo, "charts"), "demo", "0.1.0", "hello")
	testsupport.WriteFile(t, dir, "files/forced.local.yaml", "tracked although ignored\n")
	testsupport.Git(t, repo, "add", ".")
	testsupport.Git(t, repo, "add", "--force", "charts/demo/files/forced.local.yaml")
	testsupport.Git(t, repo, "commit", "--quiet", "-m", "chart")
	testsupport.WriteFile(t, dir, "files/new.yaml", "untracked\n")
	testsupport.WriteFile(t, dir, "files/admin.local.yaml", marker+"\n")
	testsupport.WriteFile(t, dir, ".work/x.kubeconfig", marker+"\n")
	if err := os.Symlink("admin.local.yaml", filepath.Join(dir, "files", "alias.yaml")); err != nil {
		t.Fatal(err)
	}
	// A chart git ignores as a whole (say, under an ignored kit directory)
	// is not git's to filter: every file of it is packaged.
	kit := writeChart(t, filepath.Join(repo, ".work", "kit"), "extra", "1.0.0", "x")
	testsupport.WriteFile(t, kit, "files/notes.local.yaml", "kit file\n")

	s := start(t, Options{ChartDirs: []string{filepath.Join(repo, "charts"), kit}})
	files := archiveFiles(t, s, "demo", "0.1.0")
	for name, content := range files {
		if strings.Contains(content, marker) {
			t.Errorf("served archive holds %s, which git ignores", name)
		}
	}
	for name, want := range map[string]string{
		"demo/files/forced.local.yaml": "tracked although ignored\n",
		"demo/files/new.yaml":          "untracked\n",
		"demo/values.yaml":             "greeting: hello\n",
	} {
		if files[name] != want {
			t.Errorf("served %s = %q, want %q", name, files[name], want)
		}
	}
	if got := archiveFiles(t, s, "extra", "1.0.0")["extra/files/notes.local.yaml"]; got != "kit file\n" {
		t.Errorf("chart under an ignored directory: notes.local.yaml = %q, want it packaged", got)
	}
	// The set a run pushes to the in-cluster fleet server holds these
	// archives: the secret is in none of them, nor in its index.
	set := s.Set()
	if len(set.Entries) != 2 {
		t.Fatalf("Set() has %d charts, want the two charts", len(set.Entries))
	}
	for _, e := range set.Entries {
		if raw := gunzip(t, e.File, e.Archive); strings.Contains(raw, marker) {
			t.Errorf("archive %s for the in-cluster server holds the planted secret", e.File)
		}
	}
	if strings.Contains(string(set.Index), marker) {
		t.Error("the index for the in-cluster server holds the planted secret")
	}
}

// gunzip returns a gzip archive's content, uncompressed; name names it
// in messages.
func gunzip(t *testing.T, name string, archive []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return string(b)
}

// TestChartInCheckoutGitDistrusts: a chart in a checkout owned by another
// user is refused with git's reason and the fix, not packaged whole.
func TestChartInCheckoutGitDistrusts(t *testing.T) {
	testsupport.RequireGit(t, "charts in a checkout are packaged from what git lists")
	home := t.TempDir()
	empty := filepath.Join(home, "gitconfig")
	testsupport.WriteFile(t, home, "gitconfig", "")
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
	t.Setenv("GIT_CONFIG_GLOBAL", empty)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	repo := t.TempDir()
	testsupport.Git(t, repo, "init", "--quiet", "--initial-branch=main")
	dir := writeChart(t, repo, "demo", "0.1.0", "hello")
	err := filepath.WalkDir(repo, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 12345, 12345)
	})
	if err != nil {
		testsupport.SkipOrFail(t, "cannot give the checkout to another user (tests must run as root for this): "+err.Error())
	}
	_, err = Start(t.Context(), Options{Addr: "127.0.0.1", ChartDirs: []string{dir}})
	if err == nil || !strings.Contains(err.Error(), "chart "+dir) || !strings.Contains(err.Error(), "git config --global --add safe.directory "+repo) {
		t.Errorf("Start on a distrusted checkout = %v, want it refused naming %s and safe.directory", err, dir)
	}
}

// TestArchiveKeepsChartFileTimes: the archive records the chart files' own
// modification times, not those of the private copy packaged, so an
// unchanged chart keeps its digest whenever it is published.
func TestArchiveKeepsChartFileTimes(t *testing.T) {
	root := t.TempDir()
	dir := writeChart(t, root, "demo", "0.1.0", "hello")
	past := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, f := range []string{"Chart.yaml", "values.yaml", "templates/configmap.yaml"} {
		if err := os.Chtimes(filepath.Join(dir, filepath.FromSlash(f)), past, past); err != nil {
			t.Fatal(err)
		}
	}
	s := start(t, Options{ChartDirs: []string{root}})
	user, pass := s.Credentials()
	_, archive, err := helmRepoFetch(t, s, user, pass, "demo", "0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	n := 0
	for h, err := tr.Next(); !errors.Is(err, io.EOF); h, err = tr.Next() {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if !h.ModTime.Equal(past) {
			t.Errorf("archive entry %s has time %s, want the file's %s", h.Name, h.ModTime, past)
		}
	}
	if n != 3 {
		t.Errorf("archive has %d entries, want 3", n)
	}
}
