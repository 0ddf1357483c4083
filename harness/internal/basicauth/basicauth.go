// Package basicauth is the per-run basic-auth protection of the harness's
// servers (the git server and the chart server): random credentials, a
// timing-safe check, and the challenge clients need before they send them.
package basicauth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
)

// Random returns a user name with the given prefix and a password, both
// random, for one run.
func Random(prefix string) (user, pass string) {
	return prefix + randomHex(4), randomHex(16)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// Allows reports whether r carries exactly user and pass. Both compares
// always run, so the time taken does not tell which one was wrong.
func Allows(r *http.Request, user, pass string) bool {
	u, p, ok := r.BasicAuth()
	userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user))
	passOK := subtle.ConstantTimeCompare([]byte(p), []byte(pass))
	return ok && userOK&passOK == 1
}

// Challenge answers 401 with a Basic challenge for realm: OCI and git
// clients send credentials only after one.
func Challenge(w http.ResponseWriter, realm string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+realm+`"`)
	http.Error(w, "Unauthorized", http.StatusUnauthorized)
}
