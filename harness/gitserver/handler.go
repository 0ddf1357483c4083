package gitserver

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/internal/basicauth"
	"github.com/flux-fleet/flux-fleet/harness/internal/httplog"
)

// requestTimeout bounds one git request (a fetch of the whole fleet
// included): an upload-pack left behind by a vanished client is killed.
const requestTimeout = 5 * time.Minute

// handler serves the one published repository over git's smart HTTP
// protocol, read-only, by running git upload-pack. It replaces gitkit's
// handler, which joins any request path to its directory unchecked (an
// authenticated "/../../<dir>/x.git/info/refs" served any bare repository
// on the host) and logs every request through Go's global logger: here the
// escaped request path must equal one of the repository's two URLs byte for
// byte, and anything else is 404 before credentials are even looked at.
type handler struct {
	infoRefs   string // "/<name>.git/info/refs"
	uploadPack string // "/<name>.git/git-upload-pack"
	dir        string // the bare repository
	user, pass string
	log        *httplog.Log
}

func newHandler(repoName, dir, user, pass string, log io.Writer) *handler {
	base := "/" + repoName + ".git"
	return &handler{
		infoRefs:   base + "/info/refs",
		uploadPack: base + "/git-upload-pack",
		dir:        dir,
		user:       user,
		pass:       pass,
		log:        httplog.New(log, ""),
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.log.Serve(w, r, h.serve)
}

// serve answers the request and returns a note for the log.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) string {
	// EscapedPath keeps "%2f" and "%2e%2e" as sent, so an encoded path can
	// never compare equal to a plain one.
	path := r.URL.EscapedPath()
	advertise := false
	switch {
	case path == h.infoRefs && r.URL.Query().Get("service") == "git-upload-pack":
		if r.Method != http.MethodGet {
			return methodNotAllowed(w, http.MethodGet)
		}
		advertise = true
	case path == h.uploadPack:
		if r.Method != http.MethodPost {
			return methodNotAllowed(w, http.MethodPost)
		}
	default:
		// Other repositories, other paths, pushes (receive-pack) and the
		// dumb protocol alike.
		http.NotFound(w, r)
		return "not the served repository's upload-pack"
	}
	if !basicauth.Allows(r, h.user, h.pass) {
		basicauth.Challenge(w, "flux-fleet")
		return "missing or wrong credentials"
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	if advertise {
		return h.advertise(ctx, w)
	}
	return h.rpc(ctx, w, r)
}

func methodNotAllowed(w http.ResponseWriter, allow string) string {
	w.Header().Set("Allow", allow)
	http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
	return "method not allowed"
}

// advertise answers GET info/refs: the service announcement, a flush, then
// upload-pack's ref advertisement.
func (h *handler) advertise(ctx context.Context, w http.ResponseWriter) string {
	var out, stderr bytes.Buffer
	cmd := h.uploadPackCmd(ctx, "--advertise-refs")
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return fmt.Sprintf("git upload-pack --advertise-refs: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	w.Header().Set("Content-Type", "application/x-git-upload-pack-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	announce := "# service=git-upload-pack\n"
	fmt.Fprintf(w, "%04x%s0000", len(announce)+4, announce)
	_, _ = out.WriteTo(w)
	return ""
}

// rpc answers POST git-upload-pack by streaming the request into upload-pack
// and its answer back, flushing as it goes so the client sees progress.
func (h *handler) rpc(ctx context.Context, w http.ResponseWriter, r *http.Request) string {
	body := r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "Bad Request", http.StatusBadRequest)
			return fmt.Sprintf("gzip request body: %v", err)
		}
		defer gz.Close()
		body = gz
	}
	// upload-pack may answer before it has read the whole request; by
	// default an HTTP/1 handler's first write ends reading the body.
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	var stderr bytes.Buffer
	cmd := h.uploadPackCmd(ctx)
	cmd.Stdin = body
	out := &rpcWriter{w: w, rc: rc}
	cmd.Stdout, cmd.Stderr = out, &stderr
	if err := cmd.Run(); err != nil {
		if !out.started {
			http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		}
		return fmt.Sprintf("git upload-pack: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	if !out.started {
		out.start()
	}
	return ""
}

// uploadPackCmd runs git upload-pack on the repository with the caller's
// GIT_* variables removed, as the snapshots do.
func (h *handler) uploadPackCmd(ctx context.Context, extra ...string) *exec.Cmd {
	args := append([]string{"upload-pack", "--stateless-rpc"}, extra...)
	cmd := exec.CommandContext(ctx, "git", append(args, h.dir)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// rpcWriter sends the response headers with upload-pack's first bytes, so a
// git failure before any output can still become a 500.
type rpcWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (rw *rpcWriter) start() {
	rw.started = true
	rw.w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	rw.w.Header().Set("Cache-Control", "no-cache")
	rw.w.WriteHeader(http.StatusOK)
}

func (rw *rpcWriter) Write(p []byte) (int, error) {
	if !rw.started {
		rw.start()
	}
	n, err := rw.w.Write(p)
	if err == nil {
		err = rw.rc.Flush()
	}
	return n, err
}
