package httplog

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestServe(t *testing.T) {
	tests := []struct {
		name, prefix, target string
		serve                func(http.ResponseWriter, *http.Request) string
		want                 string // regexp of the whole log
	}{
		{"implicit 200", "", "/index.yaml", func(w http.ResponseWriter, _ *http.Request) string {
			_, _ = w.Write([]byte("ok"))
			return ""
		}, `^GET /index\.yaml 200 \d+m?s\n$`},
		{"status and note", "srv: ", "/x.git/info/refs?service=git-upload-pack", func(w http.ResponseWriter, _ *http.Request) string {
			w.WriteHeader(http.StatusNotFound)
			w.WriteHeader(http.StatusOK) // only the first status counts
			return "no such repository"
		}, `^srv: GET /x\.git/info/refs\?service=git-upload-pack 404 \d+m?s: no such repository\n$`},
		{"nothing written", "", "/%2e%2e/x", func(http.ResponseWriter, *http.Request) string { return "" },
			`^GET /%2e%2e/x 200 \d+m?s\n$`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			New(&b, tc.prefix).Serve(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.target, nil), tc.serve)
			if !regexp.MustCompile(tc.want).MatchString(b.String()) {
				t.Errorf("log %q does not match %s", b.String(), tc.want)
			}
		})
	}
}

func TestServeFlushes(t *testing.T) {
	rec := httptest.NewRecorder()
	New(nil, "").Serve(rec, httptest.NewRequest(http.MethodGet, "/", nil), func(w http.ResponseWriter, _ *http.Request) string {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush through the recorder: %v", err)
		}
		return ""
	})
	if !rec.Flushed {
		t.Error("the server's writer was not flushed")
	}
}

// TestLinesDoNotInterleave writes from many goroutines at once: every line
// must come out whole.
func TestLinesDoNotInterleave(t *testing.T) {
	var b strings.Builder
	l := New(&b, "p: ")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Printf("line %d %s", i, strings.Repeat("x", 500))
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("%d lines, want 50", len(lines))
	}
	re := regexp.MustCompile(`^p: line \d+ x{500}$`)
	for _, line := range lines {
		if !re.MatchString(line) {
			t.Errorf("line %.40q… is not whole", line)
		}
	}
}
