package redact

import "testing"

func TestURLCredentials(t *testing.T) {
	tests := map[string]string{
		"HTTPS_PROXY=http://user:planted-secret@proxy:3128":         "HTTPS_PROXY=http://" + Redacted + "@proxy:3128",
		`"url": "https://tok@git.example/x", "b": "socks5://a:b@h"`: `"url": "https://` + Redacted + `@git.example/x", "b": "socks5://` + Redacted + `@h"`,
		"no credentials: http://proxy:3128 and a@b":                 "no credentials: http://proxy:3128 and a@b",

		// Forms Go's URL and proxy parsing accept: a quote or an '@' in
		// the password, no scheme in a proxy setting.
		"http://user:pa'ss-PLANTED@proxy:3128":     "http://" + Redacted + "@proxy:3128",
		"http://user:p@ss-PLANTED@proxy:3128":      "http://" + Redacted + "@proxy:3128",
		"HTTPS_PROXY=user:PLANTED@proxy:3128":      "HTTPS_PROXY=" + Redacted + "@proxy:3128",
		"https_proxy='user:p@ss-PLANTED@proxy' x":  "https_proxy='" + Redacted + "@proxy' x",
		`["ALL_PROXY=u:PLANTED@p","NO_PROXY=a,b"]`: `["ALL_PROXY=` + Redacted + `@p","NO_PROXY=a,b"]`,
		"HTTP_PROXY=http://u:pa/ss-PLANTED@p:3128": "HTTP_PROXY=http://" + Redacted + "@p:3128",
		// The URL ends at the quote it was opened with, unless escaped.
		`{"a":"http://u:PLANTED@h","b":"c@d"}`:        `{"a":"http://` + Redacted + `@h","b":"c@d"}`,
		`"http://u:p\"PLANTED@h"`:                     `"http://` + Redacted + `@h"`,
		"curl -x http://u:PLANTED@proxy:3128/ a@b.io": "curl -x http://" + Redacted + "@proxy:3128/ a@b.io",

		// Ordinary text stays as it is.
		"mail ops@example.com or user@host about it": "mail ops@example.com or user@host about it",
		"NO_PROXY=localhost,10.96.0.0/16":            "NO_PROXY=localhost,10.96.0.0/16",
		"http://@host and https://host/a@b":          "http://@host and https://host/a@b",
	}
	for in, want := range tests {
		if got := string(URLCredentials([]byte(in))); got != want {
			t.Errorf("URLCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}
