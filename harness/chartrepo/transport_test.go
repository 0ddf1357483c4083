package chartrepo

import (
	"net/http"
	"testing"
)

// TestInProcessTransportHead checks the HEAD semantics the pusher relies
// on: the length and digest come from headers, and headers set after
// WriteHeader are not sent.
func TestInProcessTransportHead(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "42")
		w.Header().Set("Docker-Content-Digest", "sha256:abc")
		w.WriteHeader(http.StatusOK)
		w.Header().Set("X-Late", "ignored, as by a real server")
	})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodHead, "http://x/v2/r/blobs/sha256:abc", nil)
	resp, err := inProcessTransport{h: h}.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.ContentLength != 42 || resp.Header.Get("Docker-Content-Digest") != "sha256:abc" || resp.Header.Get("X-Late") != "" {
		t.Errorf("HEAD response: %d, length %d, header %v", resp.StatusCode, resp.ContentLength, resp.Header)
	}
}
