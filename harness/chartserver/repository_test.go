package chartserver

import (
	"strings"
	"testing"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
)

// TestSet: the set a Server hands out is what it serves, and a Publish
// replaces it.
func TestSet(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "app", "1.0.0", "hello")
	s := start(t, Options{ChartDirs: []string{root}})
	set := s.Set()
	if len(set.Entries) != 1 || set.Entries[0].File != "app-1.0.0.tgz" {
		t.Fatalf("Set().Entries = %v, want app-1.0.0.tgz", set.Charts())
	}
	if got, want := sha256Digest(set.Entries[0].Archive), chartByName(t, s, "app").Digest; got != want {
		t.Fatalf("the set's archive has digest %s, the server serves %s", got, want)
	}
	if err := set.Check(); err != nil {
		t.Fatalf("the set a server hands out does not pass Check: %v", err)
	}
	writeChart(t, root, "app", "1.1.0", "hello")
	if _, err := s.Publish(t.Context()); err != nil {
		t.Fatal(err)
	}
	if now := s.Set(); len(now.Entries) != 1 || now.Entries[0].File != "app-1.1.0.tgz" || !strings.Contains(string(now.Index), "app-1.1.0.tgz") {
		t.Fatalf("Set after Publish = %v, want app-1.1.0.tgz in its entries and index", now.Charts())
	}
}

// TestSetServedElsewhere serves the host server's set from a second
// repository, as the in-cluster fleet server does: the same charts with
// the same digests; a set whose archive was changed is refused whole.
func TestSetServedElsewhere(t *testing.T) {
	root := t.TempDir()
	writeChart(t, root, "app", "1.0.0", "hello")
	writeChart(t, root, "db", "2.0.0", "hi")
	host := start(t, Options{ChartDirs: []string{root}})

	if _, err := chartrepo.New("", "p", nil); err == nil {
		t.Error("chartrepo.New without a user succeeded")
	}
	r, err := chartrepo.New("u", "p", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Charts()) != 0 {
		t.Fatalf("a new repository serves %v", r.Charts())
	}
	if err := r.Replace(t.Context(), host.Set()); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Charts(), host.Charts(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("the second repository serves %v, want the host's %v", got, want)
	}
	tampered := host.Set()
	tampered.Entries = append([]chartrepo.Entry(nil), tampered.Entries...)
	tampered.Entries[1].Archive = append([]byte(nil), tampered.Entries[1].Archive...)
	tampered.Entries[1].Archive[0] ^= 0xff
	if err := r.Replace(t.Context(), tampered); err == nil || !strings.Contains(err.Error(), tampered.Entries[1].Source) {
		t.Fatalf("Replace with a changed archive = %v, want an error naming %s", err, tampered.Entries[1].Source)
	}
	if got := r.Charts(); len(got) != 2 || got[1] != host.Charts()[1] {
		t.Fatalf("a refused set changed what is served: %v", got)
	}
}
