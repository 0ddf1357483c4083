package kitprofile

import (
	"slices"
	"testing"
)

func TestParseVersions(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []Version
		wantErr   string
	}{
		{name: "comments and blank lines", src: "# pins\n\nKUBERNETES_VERSION=v1.37.2\n  # indented comment\nPODINFO_MODULE_VERSION=v1.8.1-0.20250910200901-e86405a8674e\n",
			want: []Version{{"KUBERNETES_VERSION", "v1.37.2"}, {"PODINFO_MODULE_VERSION", "v1.8.1-0.20250910200901-e86405a8674e"}}},
		{name: "quoted value", src: "A=\"v1\"\n", wantErr: `versions.env:1: A: value "\"v1\"" is not one plain word (no quotes, blanks or $)`},
		{name: "expansion", src: "A=v1\nB=$A\n", wantErr: `versions.env:2: B: value "$A" is not one plain word (no quotes, blanks or $)`},
		{name: "lower-case name", src: "a=1\n", wantErr: `versions.env:1: "a" is not an upper-case NAME`},
		{name: "no assignment", src: "export A\n", wantErr: `versions.env:1: "export A" is not NAME=value`},
		{name: "set twice", src: "A=1\nA=2\n", wantErr: "versions.env:2: A is set twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVersions("versions.env", []byte(tc.src))
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("parseVersions = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if _, err := LookupVersion([]Version{{"A", "1"}}, "B"); err == nil || err.Error() != "versions.env sets no B" {
		t.Errorf("lookup of an unset version: err = %v", err)
	}
}
