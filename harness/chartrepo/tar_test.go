package chartrepo

import (
	"bytes"
	"strings"
	"testing"
)

// TestTarRoundTripKeepsSourceHome: the tar a set travels as carries every
// entry and its archive, and not Source — where the chart lies on the
// machine that packaged it.
func TestTarRoundTripKeepsSourceHome(t *testing.T) {
	const planted = "/home/planted-secret-dir/charts/app"
	set := Set{Index: []byte("apiVersion: v1\n"), Entries: []Entry{{
		Chart: Chart{Name: "app", Version: "1.0.0", Digest: digestOf([]byte("archive"))},
		File:  "app-1.0.0.tgz", Archive: []byte("archive"), Tag: "1.0.0",
		Manifest: []byte(`{"schemaVersion":2}`), Config: []byte(`{}`), Source: planted,
	}}}
	var buf bytes.Buffer
	if err := set.WriteTar(&buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "planted-secret-dir") {
		t.Fatal("the set's tar holds the entry's Source")
	}
	got, err := ReadTar(&buf, Limits{FileBytes: 1 << 20, Charts: 10})
	if err != nil {
		t.Fatal(err)
	}
	want := set.Entries[0]
	want.Source = ""
	e := got.Entries[0]
	if len(got.Entries) != 1 || e.Chart != want.Chart || e.File != want.File || e.Tag != want.Tag || e.Source != "" ||
		!bytes.Equal(e.Archive, want.Archive) || !bytes.Equal(e.Manifest, want.Manifest) || !bytes.Equal(e.Config, want.Config) ||
		!bytes.Equal(got.Index, set.Index) {
		t.Fatalf("read back %+v, want %+v", got, set)
	}
}
