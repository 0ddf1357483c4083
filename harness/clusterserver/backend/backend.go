// Package backend is the fleet server inside the pod (hack/fleetserver):
// the bare git repository and the chart set it serves, replaced through
// admin paths that harness/clusterserver reaches by port-forward, and the
// protocol both ends share. It links neither Helm nor a Kubernetes client:
// the charts arrive packaged and indexed (chartrepo.Set).
package backend

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flux-fleet/flux-fleet/harness/chartrepo"
	"github.com/flux-fleet/flux-fleet/harness/gitserver"
	"github.com/flux-fleet/flux-fleet/harness/internal/httplog"
)

// The fleet server's protocol, shared by the binary (hack/fleetserver) and
// the client (harness/clusterserver).
const (
	// ServePort serves git (RepoPath) and the charts to the cluster.
	ServePort = 8080
	// AdminPort serves the admin paths on the pod's loopback only, which a
	// port-forward reaches and other pods do not; on the pod IP it serves
	// HealthzPath alone, for the readiness probe.
	AdminPort = 8081

	repoName = "fleet"
	// RepoPath is the git repository's path on ServePort.
	RepoPath = "/" + repoName + ".git"

	AdminGitPath    = "/admin/git"    // PUT: a git bundle of branch refs
	AdminChartsPath = "/admin/charts" // PUT: a tar of chart archives
	HealthzPath     = "/healthz"      // GET
)

// The environment variables the fleet server reads.
const (
	EnvPodIP      = "POD_IP"
	EnvGitUser    = "GIT_USERNAME"
	EnvGitPass    = "GIT_PASSWORD"
	EnvChartUser  = "CHART_USERNAME"
	EnvChartPass  = "CHART_PASSWORD"
	EnvAdminToken = "ADMIN_TOKEN"
)

// Bounds on what the admin paths accept: a fleet's history and its charts
// are small, and the pod's scratch space and memory are limited.
const (
	MaxBundleBytes   = 512 << 20
	MaxChartsBytes   = 100 << 20
	MaxChartArchive  = 20 << 20 // any one file of the chart set's tar
	MaxChartArchives = 1000
	// AdminTimeout bounds one admin request, git's work included.
	AdminTimeout = 2 * time.Minute
)

// Config is what the fleet server runs with.
type Config struct {
	// DataDir is the one writable directory: the bare repository and the
	// uploads in flight live under it.
	DataDir                                string
	GitUser, GitPass, ChartUser, ChartPass string
	AdminToken                             string
	Log                                    io.Writer // one line per request; nil discards
}

// Backend is the fleet server's state inside the pod: the bare repository
// that git clients fetch from and the chart repository, both replaced
// through the admin paths.
type Backend struct {
	cfg    Config
	bare   string
	git    http.Handler
	charts *chartrepo.Repository
	admin  *httplog.Log

	gitMu sync.Mutex // one bundle applied at a time
}

// New creates the empty bare repository under cfg.DataDir.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	for _, c := range []struct{ name, value string }{{EnvGitUser, cfg.GitUser}, {EnvGitPass, cfg.GitPass},
		{EnvChartUser, cfg.ChartUser}, {EnvChartPass, cfg.ChartPass}, {EnvAdminToken, cfg.AdminToken}} {
		if c.value == "" {
			return nil, fmt.Errorf("fleet server: %s is empty: every credential is required", c.name)
		}
	}
	b := &Backend{cfg: cfg, bare: filepath.Join(cfg.DataDir, repoName+".git"), admin: httplog.New(cfg.Log, "admin: ")}
	if _, err := runGit(ctx, cfg.DataDir, "init", "--quiet", "--bare", "--initial-branch=main", b.bare); err != nil {
		return nil, fmt.Errorf("creating the bare repository %s: %w", b.bare, err)
	}
	var err error
	if b.git, err = gitserver.NewHandler(repoName, b.bare, cfg.GitUser, cfg.GitPass, cfg.Log); err != nil {
		return nil, err
	}
	if b.charts, err = chartrepo.New(cfg.ChartUser, cfg.ChartPass, cfg.Log); err != nil {
		return nil, err
	}
	return b, nil
}

// ServeHandler answers ServePort: git under RepoPath, the charts elsewhere.
func (b *Backend) ServeHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.EscapedPath(), RepoPath+"/") {
			b.git.ServeHTTP(w, r)
			return
		}
		b.charts.ServeHTTP(w, r)
	})
}

// HealthHandler answers AdminPort on the pod IP: HealthzPath only.
func (b *Backend) HealthHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.admin.Serve(w, r, func(w http.ResponseWriter, r *http.Request) string {
			if r.URL.Path != HealthzPath {
				http.NotFound(w, r)
				return ""
			}
			return b.healthz(w, r)
		})
	})
}

// AdminHandler answers AdminPort on loopback: the admin paths and
// HealthzPath.
func (b *Backend) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.admin.Serve(w, r, b.serveAdmin)
	})
}

func (b *Backend) serveAdmin(w http.ResponseWriter, r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == HealthzPath:
		return b.healthz(w, r)
	case p != AdminGitPath && p != AdminChartsPath:
		http.NotFound(w, r)
		return ""
	case r.Method != http.MethodPut:
		w.Header().Set("Allow", http.MethodPut)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return "method not allowed"
	case !b.tokenAllows(r):
		w.Header().Set("WWW-Authenticate", `Bearer realm="fleet-server"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return "missing or wrong token"
	}
	ctx, cancel := context.WithTimeout(r.Context(), AdminTimeout)
	defer cancel()
	var answer string
	var err error
	if p == AdminGitPath {
		answer, err = b.applyBundle(ctx, http.MaxBytesReader(w, r.Body, MaxBundleBytes))
	} else {
		answer, err = b.replaceCharts(ctx, http.MaxBytesReader(w, r.Body, MaxChartsBytes))
	}
	if err != nil {
		status := http.StatusBadRequest
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, err.Error(), status)
		return err.Error()
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, answer)
	return ""
}

func (b *Backend) healthz(w http.ResponseWriter, r *http.Request) string {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return "method not allowed"
	}
	_, _ = io.WriteString(w, "ok\n")
	return ""
}

// tokenAllows compares the bearer token in constant time.
func (b *Backend) tokenAllows(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(b.cfg.AdminToken)) == 1
}

// applyBundle fetches the branches of the bundle in body into the bare
// repository, replacing its branches in one atomic ref transaction, and
// returns the branches now served, "<commit> <ref>" a line. A bundle git
// does not accept changes nothing: the error is git's reason.
func (b *Backend) applyBundle(ctx context.Context, body io.Reader) (string, error) {
	b.gitMu.Lock()
	defer b.gitMu.Unlock()
	dir, err := os.MkdirTemp(b.cfg.DataDir, "bundle-")
	if err != nil {
		return "", fmt.Errorf("creating a directory for the bundle: %w", err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "fleet.bundle")
	if err := writeFile(file, body); err != nil {
		return "", fmt.Errorf("receiving the bundle: %w", err)
	}
	// git names the file in its messages; the client knows it as "the bundle".
	hide := func(err error) error { return errors.New(strings.ReplaceAll(err.Error(), file, "bundle")) }
	if _, err := runGit(ctx, b.bare, "bundle", "verify", file); err != nil {
		return "", fmt.Errorf("the bundle is refused: %w", hide(err))
	}
	heads, err := runGit(ctx, b.bare, "bundle", "list-heads", file)
	if err != nil {
		return "", fmt.Errorf("listing the bundle's refs: %w", hide(err))
	}
	branches, err := bundleBranches(heads)
	if err != nil {
		return "", err
	}
	if _, err := runGit(ctx, b.bare, "-c", "gc.autoDetach=false", "fetch", "--quiet", "--atomic", "--prune", "--force",
		"--no-write-fetch-head", file, "+refs/heads/*:refs/heads/*"); err != nil {
		return "", fmt.Errorf("applying the bundle: %w", hide(err))
	}
	// Clients that follow HEAD (a clone without a branch) get the one branch.
	if len(branches) == 1 {
		if _, err := runGit(ctx, b.bare, "symbolic-ref", "HEAD", branches[0]); err != nil {
			return "", fmt.Errorf("pointing HEAD at %s: %w", branches[0], err)
		}
	}
	return runGit(ctx, b.bare, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/")
}

// bundleBranches checks that the bundle's refs ("<commit> <ref>" lines)
// are all branches, at least one, and returns them.
func bundleBranches(heads string) ([]string, error) {
	var branches []string
	for line := range strings.Lines(heads) {
		_, ref, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(ref, "refs/heads/") {
			return nil, fmt.Errorf("the bundle holds %q: only branches (refs/heads/*) are served", ref)
		}
		branches = append(branches, ref)
	}
	if len(branches) == 0 {
		return nil, errors.New("the bundle holds no branch")
	}
	return branches, nil
}

// replaceCharts reads the chart set (chartrepo.Set, as a tar) in body and
// serves it in place of the current set; on any error the current set
// stays. It returns the charts now served, "<name> <version> <digest>" a
// line.
func (b *Backend) replaceCharts(ctx context.Context, body io.Reader) (string, error) {
	set, err := chartrepo.ReadTar(body, chartrepo.Limits{FileBytes: MaxChartArchive, Charts: MaxChartArchives})
	if err != nil {
		return "", err
	}
	if err := b.charts.Replace(ctx, set); err != nil {
		return "", err
	}
	var out strings.Builder
	for _, c := range b.charts.Charts() {
		fmt.Fprintf(&out, "%s %s %s\n", c.Name, c.Version, c.Digest)
	}
	return out.String(), nil
}

// writeFile writes r to a new file at p, 0600.
func writeFile(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// runGit runs git in dir without the caller's GIT_* variables and returns
// its output; an error carries git's own words.
func runGit(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		reason := strings.TrimSpace(stderr.String())
		if reason == "" {
			reason = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", args[0], reason)
	}
	return stdout.String(), nil
}
