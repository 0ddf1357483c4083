// Package redact is the harness's one rule for credentials in text it
// writes out (logs, errors, artifacts): the user information of a URL
// (scheme://user:pass@host), the form proxy settings carry them in, which
// kind hands every node's environment.
package redact

import "regexp"

// Redacted replaces a value that must not be written out.
const Redacted = "<redacted>"

// urlCredentials matches the user information of a URL (scheme://user:pass@).
var urlCredentials = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@"']+@`)

// URLCredentials returns b with the user information of every URL in it
// replaced by Redacted.
func URLCredentials(b []byte) []byte {
	return urlCredentials.ReplaceAll(b, []byte("${1}"+Redacted+"@"))
}
