package redact

import "testing"

func TestURLCredentials(t *testing.T) {
	tests := map[string]string{
		"HTTPS_PROXY=http://user:planted-secret@proxy:3128":         "HTTPS_PROXY=http://" + Redacted + "@proxy:3128",
		`"url": "https://tok@git.example/x", "b": "socks5://a:b@h"`: `"url": "https://` + Redacted + `@git.example/x", "b": "socks5://` + Redacted + `@h"`,
		"no credentials: http://proxy:3128 and a@b":                 "no credentials: http://proxy:3128 and a@b",
	}
	for in, want := range tests {
		if got := string(URLCredentials([]byte(in))); got != want {
			t.Errorf("URLCredentials(%q) = %q, want %q", in, got, want)
		}
	}
}
