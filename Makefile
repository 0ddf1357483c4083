# flux-fleet — see README.md. Every target works from a clean checkout.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

FLEET ?= .
N ?= 10
ENV ?= staging,production
# The test run syncs the fixture fleets: they need no chart repository or
# registry. helm has the real fleet's shape (HelmReleases from the harness's
# chart server); basic is the plain-manifest case.
TEST_FLEET ?= fixtures/fleets/helm
PLAIN_FLEET ?= fixtures/fleets/basic
# -p 1 within a lane: the real-kind packages each create clusters; `make
# test` runs two lanes side by side (see test), which keeps two cores busy
# while clusters start and pods wait out their grace, and no more.
# -trimpath: compiles keyed without the checkout's path, so a fresh clone
# (CI's) reuses the Go build cache of an earlier one (docs/timings.md).
GO_BUILD_FLAGS ?= -trimpath
GO_TEST_FLAGS ?= $(GO_BUILD_FLAGS) -count=1 -v -p 1 -timeout 75m
# The second lane: the scenarios, the longest package, and the readiness
# wait's cluster tests, then the e2e suite on the plain-manifest fleet; the
# other lane runs every other package, which together take about as long
# (docs/timings.md). The second lane's lines carry LANE_PREFIX in the
# interleaved log.
LANE_PKGS ?= ./e2e/scenarios/ ./harness/readiness/
LANE_PREFIX ?= [scenarios lane]

# Hands the harness the offline kit's profile file (E2E_KIT); evaluated when
# a recipe runs, so reading this Makefile builds nothing.
LOAD_KIT = E2E_KIT="$$(go run ./hack/kit -print)"; export E2E_KIT

.PHONY: all test e2e e2e-upgrade e2e-flux-upgrade soak bench validate preflight diff report offline-images lint docker-engine host-tools

all: test

## test: everything CI runs — offline kit, lint, unit + offline validation, real-kind harness and e2e tests.
## Two lanes at once: $(LANE_PKGS), then the e2e suite on the plain-manifest fleet (lines prefixed
## $(LANE_PREFIX)); and every other package, the e2e suite on $(TEST_FLEET) first. Each lane runs one
## package at a time; the run fails if either lane does.
test: offline-images host-tools lint
	@echo "== go test, two lanes: $(LANE_PREFIX) $(LANE_PKGS), then ./e2e/ on $(PLAIN_FLEET) (staging); the rest with ./e2e/ on $(TEST_FLEET)"
	$(LOAD_KIT); \
	( { lst=0; \
	    E2E_WORKDIR=.work/lane-scenarios E2E_FLEET="$(TEST_FLEET)" go test $(GO_TEST_FLAGS) $(LANE_PKGS) || lst=$$?; \
	    E2E_WORKDIR=.work/lane-plain E2E_FLEET="$(PLAIN_FLEET)" E2E_ENVS=staging E2E_CLUSTER_PREFIX=plain- go test $(GO_TEST_FLAGS) ./e2e/ || lst=$$?; \
	    exit "$$lst"; } 2>&1 | sed -u 's/^/$(LANE_PREFIX) /' ) & lane=$$!; \
	status=0; E2E_FLEET="$(TEST_FLEET)" go test $(GO_TEST_FLAGS) $$(go list ./... | grep -vxF "$$(go list $(LANE_PKGS))") || status=$$?; \
	wait "$$lane" || status=$$?; \
	echo "== go test lanes finished (exit $$status)"; exit "$$status"

## e2e: the main job — the real fleet on kind clusters staging and production (needs Docker and internet).
## A fixture fleet (FLEET=fixtures/...) runs on the offline kit, which is built first.
e2e: docker-engine
	if [[ "$(FLEET)" == fixtures/* ]]; then go run ./hack/kit; $(LOAD_KIT); fi; \
	E2E_ENVS="$(ENV)" E2E_FLEET="$(FLEET)" go test -count=1 -v -timeout 60m ./e2e/

## e2e-upgrade: converge BASE (a git revision: origin/main, HEAD~1, a tag) and check it, then roll to the working
## tree (or E2E_REVISION) and run the e2e suite there. FLEET=fixtures/... runs on the offline kit, built first.
e2e-upgrade: docker-engine
	if [[ -z "$(BASE)" ]]; then echo "usage: make e2e-upgrade BASE=<git revision> [ENV=...] [FLEET=...]" >&2; exit 2; fi; \
	if [[ "$(FLEET)" == fixtures/* ]]; then go run ./hack/kit; $(LOAD_KIT); fi; \
	E2E_BASE="$(BASE)" E2E_ENVS="$(ENV)" E2E_FLEET="$(FLEET)" go test -count=1 -v -timeout 60m ./e2e/

## e2e-flux-upgrade: converge under Flux FROM (a flux2 release, e.g. v2.8.0), then upgrade Flux in place to go.mod's
## and prove the fleet untouched (step flux upgrade). FLEET=fixtures/... runs on the offline kit, built with that base.
e2e-flux-upgrade: docker-engine
	if [[ -z "$(FROM)" ]]; then echo "usage: make e2e-flux-upgrade FROM=<flux2 release, e.g. v2.8.0> [ENV=...] [FLEET=...]" >&2; exit 2; fi; \
	if [[ "$(FLEET)" == fixtures/* ]]; then go run ./hack/kit -flux-base "$(FROM)"; $(LOAD_KIT); fi; \
	E2E_FLUX_BASE="$(FROM)" E2E_ENVS="$(ENV)" E2E_FLEET="$(FLEET)" go test -count=1 -v -timeout 60m ./e2e/

## soak: N runs (default 10) of the fixture e2e suite on fresh clusters; passes and min/median/max time to green.
soak: offline-images
	$(LOAD_KIT); E2E_FLEET="$(TEST_FLEET)" go run ./hack/soak -n $(N)

## bench: where the seconds of a bring-up go — N runs from nothing with the preloaded node image and with
## kind load (interleaved), N re-syncs on kept clusters; min/median/max per phase (BENCH="-n 3 -fleet DIR").
BENCH ?=
bench: offline-images
	$(LOAD_KIT); go run ./hack/bench $(BENCH)

## validate: offline checks of a fleet directory (default: this repository) against go.mod's Flux, or the Flux
## releases FLUX_VERSION lists (e.g. FLUX_VERSION=v2.7.3,v2.9.5).
validate:
	go run ./hack/validate -fleet "$(FLEET)" $(if $(FLUX_VERSION),-flux-version "$(FLUX_VERSION)")

## preflight: resolve, render and image-check every HelmRelease of a fleet, before any cluster (needs its chart sources).
preflight:
	go run ./hack/preflight -fleet "$(FLEET)" -env "$(ENV)"

## diff: what a change does to the clusters, offline: the fleet rendered at BASE (default origin/main) and HEAD
## (default: the working tree), per environment the objects changed, hazards first; exit 1 on changes (DIFF_FLAGS="-o markdown").
diff:
	go run ./hack/diff -base "$(or $(BASE),origin/main)" -head "$(HEAD)" -env "$(ENV)" -fleet "$(FLEET)" $(DIFF_FLAGS)

## report: render a run report (REPORT=<artifacts>/report.json) as markdown on stdout; report.html sits beside it.
REPORT ?= .work/artifacts/report.json
report:
	go run ./hack/report -in "$(REPORT)"

## offline-images: build (or reuse, by content hash) every image the kind tests need, without a registry.
offline-images:
	go run ./hack/kit

docker-engine:
	bash hack/kit/docker-engine.sh

# host-tools: what the tests run on the host besides Docker: git (the git
# server), redis-server (the fixture app's real-redis test) and chromium
# (the run report's browser test).
host-tools:
	@missing=""; for t in git:git redis-server:redis-server chromium:chromium; do \
	  command -v "$${t%%:*}" >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then echo "== installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi

lint:
	@echo "== gofmt / go vet"
	@out=$$(gofmt -l $$(git ls-files '*.go' ; git ls-files -o --exclude-standard '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet $(GO_BUILD_FLAGS) ./...
