#!/usr/bin/env bash
# The offline kit: builds every image and manifest the kind-based tests need
# from the Go module proxy and Debian packages only, and writes the offline
# profile ($FLEET_KIT_DIR/profile.env) the harness reads.
#
#   hack/kit/build.sh            build what is missing, print each stage's time
#   hack/kit/build.sh --print    print the profile path only (nothing is built)
#
# Every artefact is keyed by a hash of its inputs: the stage function's own
# text (declare -f), versions.env, the Go toolchain and, where it applies, the
# project sources it compiles. A second run with everything present only
# computes hashes and inspects images.
#
# Runs sharing a kit directory (two terminals, two worktrees) take turns on
# the lock $KIT_DIR/.lock: a second run says whom it waits for and waits.
set -Eeuo pipefail
shopt -s inherit_errexit

repo=$(cd "$(dirname "$0")/../.." && pwd)
kit_src="$repo/hack/kit"
# shellcheck source=versions.env
. "$kit_src/versions.env"

KIT_DIR=${FLEET_KIT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flux-fleet/kit}
mkdir -p "$KIT_DIR"
KIT_DIR=$(cd "$KIT_DIR" && pwd)
export GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
LABEL=io.flux-fleet.kit-hash

current_stage=setup
log() { printf '[kit %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR in stage '$current_stage': $*"; exit 1; }
trap 'rc=$?; log "ERROR: stage \"$current_stage\" failed (exit $rc, line $LINENO)"; exit $rc' ERR

declare -a timings=()
run_stage() { # name function
  local name=$1 fn=$2 t0 t1
  current_stage=$name
  t0=$(date +%s%N)
  "$fn"
  t1=$(date +%s%N)
  timings+=("$(printf '%-22s %7.1fs' "$name" "$(((t1 - t0) / 1000000))e-3")")
  current_stage=done
}

# ---- hashing ---------------------------------------------------------------

go_version=$(go env GOVERSION)
hash_of() { # stage-function [extra inputs...]
  local body
  body=$(declare -f "$1")
  # Only the versions this function names: bumping one version rebuilds only
  # what uses it.
  { echo "$body"; used_versions "$body ${*:2}"; echo "$go_version"; printf '%s\n' "${@:2}"; } |
    sha256sum | cut -c1-12
}
used_versions() { # text -> the versions.env assignments it references
  local var
  for var in $(sed -nE 's/^([A-Z_]+)=.*/\1/p' "$kit_src/versions.env"); do
    case "$1" in *"\$$var"* | *"\${$var"*) echo "$var=${!var}" ;; esac
  done
}
hash_files() { # paths... -> hash of their contents (sorted, names included)
  (cd "$repo" && find "$@" -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-12
}
image_hash() { docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }
image_fresh() { [ "$(image_hash "$1")" = "$2" ]; }

# ---- helpers ---------------------------------------------------------------

mod_dir() { # module@version -> its directory in the module cache
  local info
  # On failure go prints the JSON with an Error field and exits non-zero.
  info=$(go mod download -json "$1") ||
    die "the Go module proxy does not serve $1: $(jq -r '.Error // "no reason given"' <<<"$info" 2>/dev/null)"
  jq -er .Dir <<<"$info"
}

# scratch_module DIR REQUIRE... : a throwaway module requiring the given module@versions.
scratch_module() {
  local dir=$1
  shift
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && go mod init fleetkit/scratch >/dev/null 2>&1 && for r in "$@"; do go mod edit -require "$r"; done)
}

# minimal_rootfs DIR : passwd/group with root and nobody, CA bundle, /tmp 1777.
minimal_rootfs() {
  local dir=$1
  rm -rf "$dir" && mkdir -p "$dir"/{etc/ssl/certs,tmp,usr/local/bin}
  chmod 1777 "$dir/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
}

# import_dir DIR IMAGE HASH [--change ...]... : docker import of a directory, labelled with HASH.
import_dir() {
  local dir=$1 image=$2 hash=$3
  shift 3
  tar -C "$dir" --numeric-owner -c . |
    docker import --change "LABEL $LABEL=$hash" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' "$@" - "$image" >/dev/null
}

# ---- stage: Kubernetes binaries ----------------------------------------------

k8s_staging_version() { echo "v0.${KUBERNETES_VERSION#v1.}"; }

build_k8s_binaries() {
  local out=$1 src="$KIT_DIR/src/kubernetes" gomod info commit date pkgs ld="" p
  scratch_module "$src" "k8s.io/kubernetes@$KUBERNETES_VERSION"
  info=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION")
  gomod=$(jq -er .GoMod <<<"$info")
  # k8s.io/kubernetes replaces its staging modules with local paths; point them at the proxy.
  for p in $(sed -nE 's#^[[:space:]]*(replace[[:space:]]+)?(k8s\.io/[a-z0-9-]+)[[:space:]]+=>[[:space:]]+\./staging/.*#\2#p' "$gomod"); do
    (cd "$src" && go mod edit -replace "$p=$p@$(k8s_staging_version)")
  done
  commit=$(jq -r '.Origin.Hash // "0000000000000000000000000000000000000000"' <<<"$info")
  date=$(jq -r '.Time' <<<"$info")
  # Without the version stamp kubeadm sees v0.0.0-master and refuses the config.
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$(cut -d. -f2 <<<"$KUBERNETES_VERSION")"
    ld+=" -X $p.gitTreeState=clean -X $p.gitCommit=$commit -X $p.buildDate=$date"
  done
  pkgs=""
  for p in kubeadm kubelet kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do
    pkgs+=" k8s.io/kubernetes/cmd/$p"
  done
  mkdir -p "$out"
  # shellcheck disable=SC2086
  (cd "$src" && go build -trimpath -ldflags "-s -w $ld" -o "$out/" $pkgs)
}

build_etcd_binary() {
  local out=$1 src="$KIT_DIR/src/etcd"
  scratch_module "$src" "go.etcd.io/etcd/server/v3@$ETCD_MODULE_VERSION"
  mkdir -p "$out"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

build_coredns_binary() {
  local out=$1 src="$KIT_DIR/src/coredns"
  scratch_module "$src" "github.com/coredns/coredns@$COREDNS_VERSION"
  mkdir -p "$out"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/coredns" github.com/coredns/coredns)
}

build_crictl_binary() {
  local out=$1 src="$KIT_DIR/src/cri-tools"
  scratch_module "$src" "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION"
  mkdir -p "$out"
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$out/crictl" sigs.k8s.io/cri-tools/cmd/crictl)
}

build_pause_binary() {
  local out=$1
  mkdir -p "$out"
  (cd "$repo" && go build -trimpath -ldflags "-s -w" -o "$out/pause" ./hack/kit/pause)
}

# binaries_dir NAME BUILDER : cached build output directory for a binary builder.
binaries_dir() {
  local name=$1 builder=$2 h out
  h=$(hash_of "$builder" "$(declare -f scratch_module)" "$([ "$name" = pause ] && hash_files hack/kit/pause)")
  out="$KIT_DIR/bin/$name-$h"
  if [ ! -d "$out" ]; then
    log "building $name binaries (cold: minutes)"
    # Build next to the final path and rename, so an interrupted build is
    # never mistaken for a finished one.
    rm -rf "$out.partial.$$"
    "$builder" "$out.partial.$$" >&2
    mv "$out.partial.$$" "$out"
    # Older builds of the same binaries are superseded (never another run's work in progress).
    find "$KIT_DIR/bin" -maxdepth 1 -name "$name-*" ! -name '*.partial.*' ! -path "$out" -exec rm -rf {} + 2>/dev/null || true
  fi
  echo "$out"
}

# ---- stage: Debian base image ------------------------------------------------

debian_mirror() {
  # The mirror this machine's apt already uses; never hard-coded.
  local m
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  [ -n "$m" ] || die "no Debian mirror found in the apt sources"
  echo "$m"
}

DEBIAN_IMAGE=fleet-kit/debian:$DEBIAN_SUITE
build_debian_image() {
  local h=$1 dir="$KIT_DIR/rootfs/debian"
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  rm -rf "$dir" && mkdir -p "$dir"
  debootstrap --variant=minbase \
    --include=ca-certificates,iptables,conntrack,iproute2,procps,curl \
    "$DEBIAN_SUITE" "$dir" "$(debian_mirror)" >"$KIT_DIR/debootstrap.log" 2>&1 ||
    die "debootstrap failed: see $KIT_DIR/debootstrap.log"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  # Nothing may start services while packages are installed into images later.
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d" && chmod 0755 "$dir/usr/sbin/policy-rc.d"
  import_dir "$dir" "$DEBIAN_IMAGE" "$h" --change 'CMD ["/bin/bash"]'
  rm -rf "$dir"
}

# debian_layer IMAGE HASH PACKAGES SCRIPT [--change ...]... : IMAGE = Debian base + apt packages + SCRIPT.
debian_layer() {
  local image=$1 h=$2 packages=$3 script=$4 name
  shift 4
  name="fleet-kit-build-$$"
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker run --name "$name" --network host "$DEBIAN_IMAGE" bash -euc "
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $packages >/dev/null
    apt-get clean; rm -rf /var/lib/apt/lists/*
    $script" >"$KIT_DIR/layer-$$.log" 2>&1 || {
    tail -20 "$KIT_DIR/layer-$$.log" >&2
    log "full log: $KIT_DIR/layer-$$.log"
    docker rm -f "$name" >/dev/null 2>&1
    die "installing '$packages' into $image failed"
  }
  docker commit --change "LABEL $LABEL=$h" "$@" "$name" "$image" >/dev/null
  docker rm -f "$name" >/dev/null
  rm -f "$KIT_DIR/layer-$$.log"
}

# ---- stage: control-plane images --------------------------------------------

REG=registry.k8s.io
controlplane_images() {
  echo "$REG/kube-apiserver:$KUBERNETES_VERSION $REG/kube-controller-manager:$KUBERNETES_VERSION" \
    "$REG/kube-scheduler:$KUBERNETES_VERSION $REG/kube-proxy:$KUBERNETES_VERSION" \
    "$REG/etcd:$ETCD_IMAGE_TAG $REG/coredns/coredns:$COREDNS_VERSION $REG/pause:$PAUSE_IMAGE_TAG"
}

build_controlplane_images() {
  local h=$1 k8s etcd coredns pause dir="$KIT_DIR/rootfs/cp" c
  k8s=$(binaries_dir kubernetes build_k8s_binaries)
  etcd=$(binaries_dir etcd build_etcd_binary)
  coredns=$(binaries_dir coredns build_coredns_binary)
  pause=$(binaries_dir pause build_pause_binary)
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    minimal_rootfs "$dir" && cp "$k8s/$c" "$dir/usr/local/bin/"
    import_dir "$dir" "$REG/$c:$KUBERNETES_VERSION" "$h" --change "ENTRYPOINT [\"/usr/local/bin/$c\"]"
  done
  minimal_rootfs "$dir" && cp "$etcd/etcd" "$dir/usr/local/bin/" && mkdir -p "$dir/var/lib/etcd"
  import_dir "$dir" "$REG/etcd:$ETCD_IMAGE_TAG" "$h" --change 'ENTRYPOINT ["/usr/local/bin/etcd"]'
  minimal_rootfs "$dir" && cp "$coredns/coredns" "$dir/coredns"
  import_dir "$dir" "$REG/coredns/coredns:$COREDNS_VERSION" "$h" --change 'ENTRYPOINT ["/coredns"]'
  minimal_rootfs "$dir" && cp "$pause/pause" "$dir/pause"
  import_dir "$dir" "$REG/pause:$PAUSE_IMAGE_TAG" "$h" --change 'ENTRYPOINT ["/pause"]'
  # kube-proxy programs iptables: it needs the Debian userland.
  docker rm -f fleet-kit-proxy-$$ >/dev/null 2>&1 || true
  docker create --name fleet-kit-proxy-$$ "$DEBIAN_IMAGE" >/dev/null
  docker cp "$k8s/kube-proxy" fleet-kit-proxy-$$:/usr/local/bin/kube-proxy
  docker commit --change "LABEL $LABEL=$h" --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]' \
    fleet-kit-proxy-$$ "$REG/kube-proxy:$KUBERNETES_VERSION" >/dev/null
  docker rm -f fleet-kit-proxy-$$ >/dev/null
  rm -rf "$dir"
}

# ---- stage: kind node image ---------------------------------------------------

NODE_PACKAGES="systemd containerd runc nftables ethtool socat ebtables kmod util-linux mount \
containernetworking-plugins jq libseccomp2 pigz e2fsprogs bash"

build_node_image() {
  local h=$1 image=$2 k8s crictl kindfiles dir="$KIT_DIR/rootfs/node" work="$KIT_DIR/scratch/preload" pid i
  k8s=$(binaries_dir kubernetes build_k8s_binaries)
  crictl=$(binaries_dir crictl build_crictl_binary)
  kindfiles="$(mod_dir "sigs.k8s.io/kind@$(cd "$repo" && go list -m -f '{{.Version}}' sigs.k8s.io/kind)")/images/base/files"

  # 1. Debian userland with what a kind node runs, trimmed the way kind's base image is.
  debian_layer fleet-kit/node-userland:build "$h" "$NODE_PACKAGES" '
    find /lib/systemd/system/sysinit.target.wants/ -name systemd-tmpfiles-setup.service -delete
    rm -f /lib/systemd/system/multi-user.target.wants/* /etc/systemd/system/*.wants/* \
      /lib/systemd/system/local-fs.target.wants/* /lib/systemd/system/sockets.target.wants/*udev* \
      /lib/systemd/system/sockets.target.wants/*initctl* /lib/systemd/system/basic.target.wants/*
    echo ReadKMsg=no >>/etc/systemd/journald.conf
    ln -sf /usr/lib/systemd/systemd /sbin/init'

  # 2. Flatten into a directory and add kind's node files from the kind module.
  rm -rf "$dir" && mkdir -p "$dir"
  docker rm -f fleet-kit-node-$$ >/dev/null 2>&1 || true
  docker create --name fleet-kit-node-$$ fleet-kit/node-userland:build >/dev/null
  docker export fleet-kit-node-$$ | tar -C "$dir" -x
  docker rm -f fleet-kit-node-$$ >/dev/null
  docker rmi fleet-kit/node-userland:build >/dev/null
  (cd "$kindfiles" && find . -type f ! -path './LICENSES/*' | while read -r f; do
    install -D -m 0644 "$f" "$dir/$f"
  done)
  chmod 0755 "$dir"/usr/local/bin/* "$dir"/kind/bin/* "$dir/kind" "$dir/kind/bin"
  ln -sf /usr/bin/containerd "$dir/usr/local/bin/containerd"
  mkdir -p "$dir/opt/cni" "$dir/etc/kubernetes/manifests" "$dir/etc/cni/net.d"
  rm -rf "$dir/opt/cni/bin" && ln -s /usr/lib/cni "$dir/opt/cni/bin"
  for i in kubeadm kubelet kubectl; do install -m 0755 "$k8s/$i" "$dir/usr/bin/$i"; done
  install -m 0755 "$crictl/crictl" "$dir/usr/local/bin/crictl"
  echo "$KUBERNETES_VERSION" >"$dir/kind/version"

  # containerd: our pause tag, and no oom_score_adj below the parent's (runc lacks
  # CAP_SYS_RESOURCE on this kind of host, so it cannot lower it).
  sed -i -e "s#sandbox_image = .*#sandbox_image = \"$REG/pause:$PAUSE_IMAGE_TAG\"#" \
    -e 's#restrict_oom_score_adj = false#restrict_oom_score_adj = true#' "$dir/etc/containerd/config.toml"
  grep -q "pause:$PAUSE_IMAGE_TAG" "$dir/etc/containerd/config.toml" || die "containerd config.toml: sandbox_image not set"
  ctr oci spec | jq '.hooks.createContainer = [{"path": "/kind/bin/mount-product-files.sh"}] | del(.process.rlimits)' \
    >"$dir/etc/containerd/cri-base.json"

  # Single-node pod network: a bridge on kind's default pod subnet, no kindnetd.
  cat >"$dir/etc/cni/net.d/10-fleet-bridge.conflist" <<'JSON'
{
  "cniVersion": "1.0.0",
  "name": "fleet-bridge",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "10.244.0.0/24"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON

  # systemd units: what kind enables.
  mkdir -p "$dir/etc/systemd/system/multi-user.target.wants"
  for i in kubelet containerd undo-mount-hacks; do
    ln -sf "/etc/systemd/system/$i.service" "$dir/etc/systemd/system/multi-user.target.wants/$i.service"
  done
  ln -sf /dev/null "$dir/etc/systemd/system/systemd-binfmt.service"

  # 3. Preload the control-plane images with a throwaway containerd on the rootfs.
  rm -rf "$work" && mkdir -p "$work"
  cat >"$work/config.toml" <<TOML
version = 2
root = "$dir/var/lib/containerd"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
TOML
  containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
  pid=$!
  for i in $(seq 1 50); do [ -S "$work/containerd.sock" ] && break; sleep 0.2; done
  # shellcheck disable=SC2046
  if ! docker save $(controlplane_images) | ctr --address "$work/containerd.sock" -n k8s.io images import --no-unpack - >/dev/null; then
    kill "$pid"
    die "preloading control-plane images failed (log: $work/containerd.log)"
  fi
  kill "$pid" && wait "$pid" 2>/dev/null || true
  rm -rf "$work"

  # 4. Import with kind's entrypoint; STOPSIGNAL needs a build step (import cannot set it).
  import_dir "$dir" fleet-kit/node-rootfs:build "$h" \
    --change 'ENV container=docker' --change 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]'
  rm -rf "$dir"
  mkdir -p "$KIT_DIR/scratch/node-build"
  printf 'FROM fleet-kit/node-rootfs:build\nSTOPSIGNAL SIGRTMIN+3\n' >"$KIT_DIR/scratch/node-build/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$KIT_DIR/scratch/node-build" >/dev/null
  docker rmi fleet-kit/node-rootfs:build >/dev/null
}

# ---- stage: node image with the run's images baked in --------------------------

# store_listing DIR : every entry under DIR/var with its type, mode, size and
# mtime, so that two listings tell which entries an import added or changed.
store_listing() { (cd "$1" && find var -printf '%p\t%y %m %s %T@\n' | LC_ALL=C sort); }

# build_preloaded_node_image BASE IMAGE HASH IMAGES... : BASE plus one layer
# holding IMAGES in the node's containerd store, imported the way the
# control-plane images are (a throwaway containerd, no unpack), so that a
# cluster starts with them instead of receiving a docker save stream per node.
# The layer carries only what the import added or changed (the new blobs, the
# metadata database): the control-plane images stay in BASE's layer.
build_preloaded_node_image() {
  local base=$1 image=$2 h=$3 work="$KIT_DIR/scratch/node-preload" name="fleet-kit-node-preload-$$" pid i
  shift 3
  rm -rf "$work" && mkdir -p "$work/var/lib"
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker create --name "$name" "$base" >/dev/null
  docker cp "$name:/var/lib/containerd" - | tar -C "$work/var/lib" -x
  store_listing "$work" >"$work/before"
  cat >"$work/config.toml" <<TOML
version = 2
root = "$work/var/lib/containerd"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
TOML
  containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
  pid=$!
  for i in $(seq 1 50); do [ -S "$work/containerd.sock" ] && break; sleep 0.2; done
  if ! docker save "$@" | ctr --address "$work/containerd.sock" -n k8s.io images import --no-unpack - >/dev/null; then
    kill "$pid"
    cp "$work/containerd.log" "$KIT_DIR/node-preload-containerd.log" 2>/dev/null || true
    docker rm -f "$name" >/dev/null
    die "baking $* into the node image failed (containerd log: $KIT_DIR/node-preload-containerd.log)"
  fi
  kill "$pid" && wait "$pid" 2>/dev/null || true
  store_listing "$work" >"$work/after"
  # Directories are listed too: tar --no-recursion then creates new ones
  # with their own modes, and an unchanged entry is never sent again.
  LC_ALL=C comm -13 "$work/before" "$work/after" | cut -f1 >"$work/changed"
  [ -s "$work/changed" ] || die "importing $* into the node image's containerd store changed nothing"
  tar -C "$work" --numeric-owner --no-recursion -cf - -T "$work/changed" | docker cp -a - "$name:/"
  docker commit --change "LABEL $LABEL=$h" "$name" "$image" >/dev/null
  docker rm -f "$name" >/dev/null
  rm -rf "$work"
}

write_kind_config() { # path image
  cat >"$1" <<YAML
# kind config for the offline node image (written by hack/kit/build.sh).
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  # The node image carries a bridge CNI config; kindnetd is not available offline.
  disableDefaultCNI: true
nodes:
  - role: control-plane
    image: $2
kubeadmConfigPatches:
  - |
    kind: InitConfiguration
    nodeRegistration:
      ignorePreflightErrors:
        - SystemVerification
  - |
    kind: KubeletConfiguration
    # This kind of host runs cgroup v1, which kubelet 1.37 refuses by default.
    failCgroupV1: false
YAML
}

# ---- stage: Flux controllers and manifests ------------------------------------

flux_module_dir() { mod_dir "github.com/fluxcd/flux2/v2@$(cd "$repo" && go list -m -f '{{.Version}}' github.com/fluxcd/flux2/v2)"; }
# The controller version flux2 bundles: the release URL in manifests/bases/<c>.
flux_controller_version() {
  sed -nE "s#.*/$1/releases/download/(v[^/]+)/.*#\1#p" "$(flux_module_dir)/manifests/bases/$1/kustomization.yaml" | head -1
}

# FLUX_CONTROLLERS: the controllers the kit builds and writes manifests for;
# the others' root modules are refused by the Go module proxy.
FLUX_CONTROLLERS="source-controller kustomize-controller helm-controller"

# build_flux_controller_image CONTROLLER HASH : the image of a Flux controller
# built from its root module at the version flux2 bundles.
build_flux_controller_image() {
  local c=$1 h=$2 v mod moddir src bin="$KIT_DIR/scratch/$1-bin" dir="$KIT_DIR/rootfs/$1"
  v=$(flux_controller_version "$c")
  mod="github.com/fluxcd/$c@$v"
  moddir=$(mod_dir "$mod")
  src="$KIT_DIR/src/$c"
  rm -rf "$src" && cp -r "$moddir" "$src" && chmod -R u+w "$src"
  # The api submodule is a local replace to a directory the module zip lacks;
  # the proxy serves it at the controller's version.
  (cd "$src" && go mod edit -dropreplace "github.com/fluxcd/$c/api" -require "github.com/fluxcd/$c/api@$v")
  case $c in
  source-controller)
    # The artifact module version source-controller asks for is refused by the proxy.
    (cd "$src" && go mod edit -replace github.com/fluxcd/pkg/artifact=github.com/fluxcd/pkg/artifact@v0.18.0)
    ;;
  esac
  # No go mod tidy: it also resolves test-only modules, some of which the proxy
  # refuses; -mod=mod (GOFLAGS) resolves what the binary imports.
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$bin" .) || die "building $mod failed"
  minimal_rootfs "$dir"
  install -m 0755 "$bin" "$dir/usr/local/bin/$c"
  mkdir -p "$dir/data" && chown 65534:65534 "$dir/data"
  import_dir "$dir" "ghcr.io/fluxcd/$c:$v" "$h" --change "ENTRYPOINT [\"/usr/local/bin/$c\"]" --change 'USER 65534:65534'
  rm -rf "$dir" "$bin" "$src"
}

build_flux_manifests() { # out-dir
  local out=$1 c args=() v nc="$KIT_DIR/scratch/crd-notification-controller"
  for c in $FLUX_CONTROLLERS; do
    args+=(--controller "$c=$(mod_dir "github.com/fluxcd/$c@$(flux_controller_version "$c")")")
  done
  rm -rf "$out.partial.$$" && mkdir -p "$out.partial.$$"
  (cd "$repo" && go run ./hack/kit/fluxmanifests --flux "$(flux_module_dir)" "${args[@]}" --out "$out.partial.$$")
  # The CRDs of notification-controller, whose root module the proxy refuses,
  # so that fleets with Alerts, Providers or Receivers can at least be applied:
  # the harness applies extra-crds/*.yaml after Flux.
  v=$(cd "$repo" && go list -m -f '{{.Version}}' github.com/fluxcd/notification-controller/api)
  rm -rf "$nc" && mkdir -p "$nc" "$out.partial.$$/extra-crds"
  (cd "$(mod_dir "github.com/fluxcd/notification-controller/api@$v")" &&
    go run "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION" \
      crd paths=./... output:crd:artifacts:config="$nc")
  cat "$nc"/*.yaml >"$out.partial.$$/extra-crds/notification-controller.crds.yaml"
  rm -rf "$nc"
  rm -rf "$out" && mv "$out.partial.$$" "$out"
}

# ---- stage: workload images ---------------------------------------------------

build_nginx_image() {
  debian_layer "$1" "$2" nginx-light '
    ln -sf /dev/stdout /var/log/nginx/access.log; ln -sf /dev/stderr /var/log/nginx/error.log' \
    --change 'CMD ["nginx", "-g", "daemon off;"]'
}
build_redis_image() {
  debian_layer "$1" "$2" redis-server '' \
    --change 'CMD ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]'
}
build_app_image() {
  local image=$1 h=$2 dir="$KIT_DIR/rootfs/app"
  minimal_rootfs "$dir"
  (cd "$repo" && go build -trimpath -ldflags "-s -w" -o "$dir/usr/local/bin/fleet-app" ./fixtures/app)
  import_dir "$dir" "$image" "$h" --change 'ENTRYPOINT ["/usr/local/bin/fleet-app"]' --change 'USER 65534:65534'
  rm -rf "$dir"
}

# ---- stage: podinfo image -------------------------------------------------------

podinfo_module() { echo "github.com/stefanprodan/podinfo@$PODINFO_MODULE_VERSION"; }

# podinfo_image : the image reference the module's chart deploys by default
# (values.yaml image.repository and image.tag, which must equal appVersion).
podinfo_image() {
  local chart repository tag app
  chart="$(mod_dir "$(podinfo_module)")/charts/podinfo"
  repository=$(awk '/^image:/ {i = 1; next} /^[^ #]/ {i = 0} i && $1 == "repository:" {print $2; exit}' "$chart/values.yaml")
  tag=$(awk '/^image:/ {i = 1; next} /^[^ #]/ {i = 0} i && $1 == "tag:" {print $2; exit}' "$chart/values.yaml")
  app=$(sed -nE 's/^appVersion:[[:space:]]*"?([^"[:space:]]+)"?.*/\1/p' "$chart/Chart.yaml")
  if [ -z "$repository" ] || [ -z "$tag" ]; then
    die "$chart/values.yaml: no image.repository or image.tag"
  fi
  [ "$tag" = "$app" ] || die "$chart: values.yaml image.tag $tag differs from Chart.yaml appVersion $app"
  echo "$repository:$tag"
}

# build_podinfo_image IMAGE HASH : podinfo laid out like upstream's Dockerfile
# (WORKDIR /home/app with ./podinfo and ./ui, podcli on PATH for the chart's
# exec probes, a non-root user), built from the module's own go.mod.
build_podinfo_image() {
  local image=$1 h=$2 mod moddir commit src="$KIT_DIR/src/podinfo" dir="$KIT_DIR/rootfs/podinfo" p
  mod=$(podinfo_module)
  moddir=$(mod_dir "$mod")
  rm -rf "$src" && cp -r "$moddir" "$src" && chmod -R u+w "$src"
  # Upstream stamps only the git revision; the version is in pkg/version's source.
  commit=${PODINFO_MODULE_VERSION##*-}
  minimal_rootfs "$dir"
  mkdir -p "$dir/home/app"
  for p in podinfo podcli; do
    (cd "$src" && go build -trimpath \
      -ldflags "-s -w -X github.com/stefanprodan/podinfo/pkg/version.REVISION=$commit" \
      -o "$KIT_DIR/scratch/podinfo-$p" "./cmd/$p") || die "building $p from $mod failed"
  done
  install -m 0755 "$KIT_DIR/scratch/podinfo-podinfo" "$dir/home/app/podinfo"
  install -m 0755 "$KIT_DIR/scratch/podinfo-podcli" "$dir/usr/local/bin/podcli"
  cp -r "$src/ui" "$dir/home/app/ui"
  echo 'app:x:1000:1000:app:/home/app:/sbin/nologin' >>"$dir/etc/passwd"
  echo 'app:x:1000:' >>"$dir/etc/group"
  chown -R 1000:1000 "$dir/home/app"
  # Numeric USER: kubelet can only verify runAsNonRoot for a numeric user.
  import_dir "$dir" "$image" "$h" --change 'WORKDIR /home/app' --change 'USER 1000:1000' --change 'CMD ["./podinfo"]'
  rm -rf "$dir" "$src" "$KIT_DIR"/scratch/podinfo-*
}

# ---- main ----------------------------------------------------------------------

if [ "${1:-}" = --print ]; then
  echo "$KIT_DIR/profile.env"
  exit 0
fi

# A run's unfinished outputs are <final path>.partial.<pid>: only its own are removed.
remove_own_partials() { find "$KIT_DIR" -maxdepth 2 -name "*.partial.$$" -exec rm -rf {} + 2>/dev/null || true; }
trap remove_own_partials EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One build at a time per kit directory: the stages share scratch paths, tags
# and the profile. The lock is the open file, released when this shell exits.
t_start=$(date +%s)
exec {lock_fd}>>"$KIT_DIR/.lock"
if ! flock -n "$lock_fd"; then
  holder=$(cat "$KIT_DIR/.lock" 2>/dev/null || true)
  log "another kit build holds $KIT_DIR/.lock (${holder:-holder not yet recorded}); waiting"
  flock "$lock_fd"
  log "lock acquired after $(($(date +%s) - t_start))s"
fi
printf 'pid %s, started %s, repository %s\n' "$$" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$repo" >"$KIT_DIR/.lock"

t_start=$(date +%s)
# dockerd may be started here and outlive this run: it must not inherit the lock.
docker_engine() { "$kit_src/docker-engine.sh" {lock_fd}>&-; }
run_stage docker-engine docker_engine

stage_debian() {
  local h
  h=$(hash_of build_debian_image "$(declare -f debian_mirror import_dir)")
  image_fresh "$DEBIAN_IMAGE" "$h" && return 0
  log "debootstrap $DEBIAN_SUITE (cold: ~2 min)"
  build_debian_image "$h"
}
run_stage debian-base stage_debian
debian_hash=$(image_hash "$DEBIAN_IMAGE")

stage_controlplane() {
  local h img stale=""
  h=$(hash_of build_controlplane_images "$debian_hash" "$(declare -f build_k8s_binaries build_etcd_binary build_coredns_binary minimal_rootfs import_dir)" "$(hash_files hack/kit/pause)")
  for img in $(controlplane_images); do image_fresh "$img" "$h" || stale=1; done
  [ -z "$stale" ] && return 0
  build_controlplane_images "$h"
}
run_stage controlplane-images stage_controlplane
cp_hash=$(image_hash "$REG/kube-apiserver:$KUBERNETES_VERSION")

NODE_IMAGE=""
stage_node() {
  local h
  h=$(hash_of build_node_image "$cp_hash" "$debian_hash" "$(declare -f debian_layer import_dir build_crictl_binary)")
  NODE_IMAGE="fleet-kit/node:$KUBERNETES_VERSION-$h"
  image_fresh "$NODE_IMAGE" "$h" && return 0
  log "building node image $NODE_IMAGE"
  build_node_image "$h" "$NODE_IMAGE"
  # Node images are large: drop the ones this build supersedes.
  docker images fleet-kit/node --format '{{.Repository}}:{{.Tag}}' | grep -vxF "$NODE_IMAGE" |
    xargs -r docker rmi >/dev/null 2>&1 || true
}
run_stage node-image stage_node

FLUX_IMAGES=()
stage_flux_images() {
  local c v h t0
  for c in $FLUX_CONTROLLERS; do
    v=$(flux_controller_version "$c")
    [ -n "$v" ] || die "cannot read the $c version bundled by flux2"
    h=$(hash_of build_flux_controller_image "$v" "$(declare -f minimal_rootfs import_dir)")
    FLUX_IMAGES+=("ghcr.io/fluxcd/$c:$v")
    image_fresh "ghcr.io/fluxcd/$c:$v" "$h" && continue
    log "building $c $v (cold: 2-6 min)"
    t0=$(date +%s)
    build_flux_controller_image "$c" "$h"
    log "built ghcr.io/fluxcd/$c:$v in $(($(date +%s) - t0))s"
  done
}
run_stage flux-controllers stage_flux_images

FLUX_MANIFESTS=""
stage_flux_manifests() {
  local h
  h=$(hash_of build_flux_manifests "$FLUX_CONTROLLERS" "$(flux_module_dir)" "$(hash_files hack/kit/fluxmanifests)" "$(cd "$repo" && go list -m -f '{{.Version}}' github.com/fluxcd/notification-controller/api)")
  FLUX_MANIFESTS="$KIT_DIR/flux-manifests-$h"
  [ -f "$FLUX_MANIFESTS/rbac.yaml" ] && return 0
  build_flux_manifests "$FLUX_MANIFESTS"
  find "$KIT_DIR" -maxdepth 1 -name 'flux-manifests-*' ! -name '*.partial.*' ! -path "$FLUX_MANIFESTS" -exec rm -rf {} + 2>/dev/null || true
}
run_stage flux-manifests stage_flux_manifests

WORKLOAD_IMAGES=(fleet-kit/nginx:bookworm fleet-kit/redis:bookworm fleet-kit/fleet-app:dev)
stage_workloads() {
  local h
  h=$(hash_of build_nginx_image "$debian_hash" "$(declare -f debian_layer)")
  image_fresh fleet-kit/nginx:bookworm "$h" || build_nginx_image fleet-kit/nginx:bookworm "$h"
  h=$(hash_of build_redis_image "$debian_hash" "$(declare -f debian_layer)")
  image_fresh fleet-kit/redis:bookworm "$h" || build_redis_image fleet-kit/redis:bookworm "$h"
  h=$(hash_of build_app_image "$(hash_files fixtures/app go.mod go.sum)" "$(declare -f minimal_rootfs import_dir)")
  image_fresh fleet-kit/fleet-app:dev "$h" || build_app_image fleet-kit/fleet-app:dev "$h"
}
run_stage workload-images stage_workloads

PODINFO_IMAGE=""
stage_podinfo() {
  local h t0
  PODINFO_IMAGE=$(podinfo_image)
  h=$(hash_of build_podinfo_image "$PODINFO_IMAGE" "$(declare -f podinfo_module minimal_rootfs import_dir)")
  image_fresh "$PODINFO_IMAGE" "$h" && return 0
  log "building $PODINFO_IMAGE from $(podinfo_module) (cold: ~2 min)"
  t0=$(date +%s)
  build_podinfo_image "$PODINFO_IMAGE" "$h"
  log "built $PODINFO_IMAGE in $(($(date +%s) - t0))s"
}
run_stage podinfo-image stage_podinfo

# The images every run needs go into the node image; the fixture app does
# not: it changes with every edit of fixtures/app, and the harness loads it
# (only when the node lacks that version). NODE_IMAGE_BARE, without them, is
# what the benchmark compares against (kind load, the earlier way).
NODE_IMAGE_BARE=$NODE_IMAGE
BAKED_IMAGES=()
stage_node_preloaded() {
  local h img ids=""
  BAKED_IMAGES=("${FLUX_IMAGES[@]}" fleet-kit/nginx:bookworm fleet-kit/redis:bookworm "$PODINFO_IMAGE")
  # Image IDs, not only the kit's input hashes: the harness compares IDs, and
  # a baked image must be exactly the one the profile names.
  for img in "$NODE_IMAGE_BARE" "${BAKED_IMAGES[@]}"; do
    ids+="$img=$(docker image inspect -f '{{.Id}}' "$img") "
  done
  h=$(hash_of build_preloaded_node_image "$ids" "$(declare -f store_listing)")
  NODE_IMAGE="fleet-kit/node-preloaded:$KUBERNETES_VERSION-$h"
  image_fresh "$NODE_IMAGE" "$h" && return 0
  log "baking ${BAKED_IMAGES[*]} into $NODE_IMAGE"
  build_preloaded_node_image "$NODE_IMAGE_BARE" "$NODE_IMAGE" "$h" "${BAKED_IMAGES[@]}"
  docker images fleet-kit/node-preloaded --format '{{.Repository}}:{{.Tag}}' | grep -vxF "$NODE_IMAGE" |
    xargs -r docker rmi >/dev/null 2>&1 || true
}
run_stage node-image-preloaded stage_node_preloaded

# Rebuilt images leave their predecessors untagged: drop those of the kit.
docker image prune -f --filter "label=$LABEL" >/dev/null 2>&1 || true

current_stage=profile
write_kind_config "$KIT_DIR/kind-config.yaml" "$NODE_IMAGE"
preload=$(
  IFS=,
  echo "${FLUX_IMAGES[*]},${WORKLOAD_IMAGES[*]},$PODINFO_IMAGE"
)
# Written aside and renamed: a reader never sees half a profile.
cat >"$KIT_DIR/profile.env.partial.$$" <<ENV
# Offline profile written by hack/kit/build.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ). Source it before go test.
FLEET_NODE_IMAGE=$NODE_IMAGE
FLEET_NODE_IMAGE_BARE=$NODE_IMAGE_BARE
FLEET_KIND_CONFIG=$KIT_DIR/kind-config.yaml
FLEET_FLUX_MANIFESTS=$FLUX_MANIFESTS
FLEET_FLUX_COMPONENTS=$(tr ' ' , <<<"$FLUX_CONTROLLERS")
FLEET_PRELOAD_IMAGES=$preload
FLEET_EXTRA_CHARTS=$(mod_dir "$(podinfo_module)")/charts/podinfo
ENV
mv "$KIT_DIR/profile.env.partial.$$" "$KIT_DIR/profile.env"

log "stage timings:"
for t in "${timings[@]}"; do printf '  %s\n' "$t" >&2; done
log "kit ready in $(($(date +%s) - t_start))s; profile: $KIT_DIR/profile.env"
