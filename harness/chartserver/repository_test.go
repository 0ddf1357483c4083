package chartserver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestArchives: the files Archives lists are the archives served, and a
// Publish replaces them.
func TestArchives(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "app", "1.0.0", "hello")
	s := start(t, Options{ChartDirs: []string{root}})
	files := s.Archives()
	if len(files) != 1 || filepath.Base(files[0]) != "app-1.0.0.tgz" {
		t.Fatalf("Archives = %v, want app-1.0.0.tgz", files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sha256Digest(b), chartByName(t, s, "app").Digest; got != want {
		t.Fatalf("archive file digest %s, served %s", got, want)
	}
	writeChart(t, root, "app", "1.1.0", "hello")
	if _, err := s.Publish(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(files[0]); !os.IsNotExist(err) {
		t.Errorf("the previous publish's archive %s is still there", files[0])
	}
	if now := s.Archives(); len(now) != 1 || filepath.Base(now[0]) != "app-1.1.0.tgz" {
		t.Fatalf("Archives after Publish = %v, want app-1.1.0.tgz", now)
	}
}

// TestPublishArchives serves the host server's archives from a second
// Repository: the same charts with the same digests, in both forms.
func TestPublishArchives(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "app", "1.0.0", "hello")
	writeChart(t, root, "db", "2.0.0", "hi")
	host := start(t, Options{ChartDirs: []string{root}})

	if _, err := NewRepository("", "p", nil); err == nil {
		t.Error("NewRepository without a user succeeded")
	}
	r, err := NewRepository("u", "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Charts()) != 0 {
		t.Fatalf("a new repository serves %v", r.Charts())
	}
	charts, err := r.PublishArchives(t.Context(), host.Archives())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := charts, host.Charts(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("PublishArchives = %v, want the host's %v", got, want)
	}
	notChart := filepath.Join(t.TempDir(), "x.tgz")
	if err := os.WriteFile(notChart, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PublishArchives(t.Context(), []string{host.Archives()[0], notChart}); err == nil || !strings.Contains(err.Error(), notChart) {
		t.Fatalf("PublishArchives with a non-chart = %v, want an error naming %s", err, notChart)
	}
	if len(r.Charts()) != 2 {
		t.Fatalf("a refused set changed what is served: %v", r.Charts())
	}
}
