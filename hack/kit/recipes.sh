#!/usr/bin/env bash
# The offline kit's recipes: the shell that drives debootstrap, go build and
# docker to make one image or directory. go run ./hack/kit decides what is
# built (hashes, freshness, the lock, the profile) and runs one recipe per
# artifact:
#
#   bash hack/kit/recipes.sh FUNCTION [ARGS...]
#
# Environment, set by hack/kit: KIT_DIR (the kit directory), KIT_LABEL (the
# image label that carries an artifact's hash), DEBIAN_IMAGE (the Debian base
# image), every versions.env variable, and GOFLAGS=-mod=mod CGO_ENABLED=0
# GOTOOLCHAIN=local. Module directories and versions that go.mod decides are
# passed as arguments.
#
# A function's text, exactly as written here, is hashed into every artifact
# whose recipe calls it (directly or through other functions), together with
# the versions.env and top-level variables it names: editing a function
# rebuilds what uses it, and nothing else.
set -Eeuo pipefail
shopt -s inherit_errexit

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# log, die and on_error only report: they are left out of the hashes.
log() { printf '%s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
on_error() { # status line
  log "ERROR: $kit_recipe failed (exit $1, line $2)"
  exit "$1"
}

# ---- helpers -----------------------------------------------------------------

# scratch_module DIR REQUIRE... : a throwaway module requiring the given module@versions.
scratch_module() {
  local dir=$1
  shift
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && go mod init fleetkit/scratch >/dev/null 2>&1 && for r in "$@"; do go mod edit -require "$r"; done)
}

# release_build LDFLAGS ARGS... : go build of a binary the kit ships: no file
# paths, no symbol table, no DWARF, plus LDFLAGS (-X stamps). -dwarf=false
# spares the compiler the DWARF that -w drops anyway: the same machine code,
# a tenth less compile CPU (docs/timings.md).
release_build() {
  local ld=$1
  shift
  go build -trimpath -gcflags=all=-dwarf=false -ldflags "-s -w${ld:+ $ld}" "$@"
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

# ---- binaries (hack/kit keeps each in $KIT_DIR/bin/<name>-<hash>) ------------

# Each build_*_binary OUT writes its binaries into the directory OUT.

k8s_staging_version() { echo "v0.${KUBERNETES_VERSION#v1.}"; }

build_k8s_binaries() {
  local out=$1 src="$KIT_DIR/src/kubernetes" gomod info commit date pkgs ld="" p
  scratch_module "$src" "k8s.io/kubernetes@$KUBERNETES_VERSION"
  info=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION")
  gomod=$(jq -er .GoMod <<<"$info")
  # k8s.io/kubernetes replaces its staging modules with local paths; point them at the proxy.
  # shellcheck disable=SC2013 # module paths hold no blanks: one per word
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
  (cd "$src" && release_build "$ld" -o "$out/" $pkgs)
}

build_etcd_binary() {
  local out=$1 src="$KIT_DIR/src/etcd"
  scratch_module "$src" "go.etcd.io/etcd/server/v3@$ETCD_MODULE_VERSION"
  mkdir -p "$out"
  (cd "$src" && release_build "" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

# The CoreDNS plugins (packages under github.com/coredns/coredns/plugin) of
# the directives kubeadm's Corefile uses (cmd/kubeadm/app/phases/addons/dns
# in k8s.io/kubernetes; prometheus is the package metrics, as CoreDNS's
# plugin.cfg maps it). Upstream's main imports every plugin, the cloud
# providers' SDKs and tracers among them: twice the packages to compile.
# hack/kit's TestCoreDNSPlugins checks this list against both sources.
COREDNS_PLUGINS="errors health ready kubernetes metrics forward cache loop reload loadbalance"

# build_coredns_binary OUT : CoreDNS as its own main package builds it
# (coremain.Run), with the plugins in COREDNS_PLUGINS.
build_coredns_binary() {
  local out=$1 src="$KIT_DIR/src/coredns" p
  scratch_module "$src" "github.com/coredns/coredns@$COREDNS_VERSION"
  {
    printf 'package main\n\nimport (\n\t"github.com/coredns/coredns/coremain"\n'
    for p in $COREDNS_PLUGINS; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$p"; done
    printf ')\n\nfunc main() { coremain.Run() }\n'
  } >"$src/main.go"
  mkdir -p "$out"
  (cd "$src" && release_build "" -o "$out/coredns" .)
}

build_crictl_binary() {
  local out=$1 src="$KIT_DIR/src/cri-tools"
  scratch_module "$src" "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION"
  mkdir -p "$out"
  (cd "$src" && release_build "" -o "$out/crictl" sigs.k8s.io/cri-tools/cmd/crictl)
}

build_pause_binary() {
  local out=$1
  mkdir -p "$out"
  (cd "$repo" && release_build "" -o "$out/pause" ./hack/kit/pause)
}

# ---- Debian base image -------------------------------------------------------

debian_mirror() {
  # The mirror this machine's apt already uses; never hard-coded.
  local m
  m=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  [ -n "$m" ] || m=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1)
  [ -n "$m" ] || die "no Debian mirror found in the apt sources"
  echo "$m"
}

# build_debian_image HASH : the Debian base image DEBIAN_IMAGE, by debootstrap.
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

# ---- control-plane images ----------------------------------------------------

REG=registry.k8s.io
controlplane_images() {
  echo "$REG/kube-apiserver:$KUBERNETES_VERSION $REG/kube-controller-manager:$KUBERNETES_VERSION" \
    "$REG/kube-scheduler:$KUBERNETES_VERSION $REG/kube-proxy:$KUBERNETES_VERSION" \
    "$REG/etcd:$ETCD_IMAGE_TAG $REG/coredns/coredns:$COREDNS_VERSION $REG/pause:$PAUSE_IMAGE_TAG"
}

# build_controlplane_images HASH K8S_BIN ETCD_BIN COREDNS_BIN PAUSE_BIN : the
# images kubeadm runs (controlplane_images), from the binary directories.
build_controlplane_images() {
  local h=$1 k8s=$2 etcd=$3 coredns=$4 pause=$5 dir="$KIT_DIR/rootfs/cp" c
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
  # kube-proxy programs iptables: the iptables commands and their libraries
  # from the Debian image, nothing else: its image is unpacked on every new
  # cluster while the cluster waits for it, so every megabyte counts.
  # shellcheck disable=SC2086 # a list of package names
  slim_rootfs "$dir" "$DEBIAN_IMAGE" $PROXY_PACKAGES && cp "$k8s/kube-proxy" "$dir/usr/local/bin/"
  import_dir "$dir" "$REG/kube-proxy:$KUBERNETES_VERSION" "$h" --change 'ENTRYPOINT ["/usr/local/bin/kube-proxy"]'
  check_commands "$REG/kube-proxy:$KUBERNETES_VERSION" "iptables-save --version" "iptables-restore --version" \
    "ip6tables-save --version" "ip6tables-restore --version" "conntrack --version"
  rm -rf "$dir"
}

# What kube-proxy runs in iptables mode (the Debian default, nft backend),
# and conntrack for clearing stale UDP entries.
PROXY_PACKAGES="libc6 iptables libxtables12 libnftnl11 libmnl0 libip4tc2 libip6tc2 conntrack libnetfilter-conntrack3 libnfnetlink0"

# debian_files PACKAGE... | debian_files --commands COMMAND... : a tar
# stream, on stdout, of what the packages installed (their files and
# symlinks, the alternatives links that name their commands, which
# update-alternatives makes and dpkg does not list, and the loader cache) or
# of what the commands need (each command, what its symlinks point to, and
# the shared libraries ldd names), with every symlink's target, each under
# its real directory (merged
# /usr: /lib/x/y is stored as usr/lib/x/y). Runs inside a Debian image.
debian_files() {
  local f t
  {
    if [ "$1" = --commands ]; then
      shift
      for f in "$@"; do
        f=$(command -v "$f") || { echo "debian_files: no command $f" >&2; exit 1; }
        echo "$f"
        ldd "$(readlink -f "$f")" 2>/dev/null | grep -o '/[^ ]*' || true
      done
    else
      dpkg -L "$@"
      find /etc/alternatives /usr/bin /usr/sbin -maxdepth 1 -lname '/etc/alternatives/*' -o -maxdepth 1 -path '/etc/alternatives/*'
    fi
    echo /etc/ld.so.cache
  } | while read -r f; do
    # Every hop of a symlink chain: /usr/bin/awk -> /etc/alternatives/awk -> /usr/bin/mawk.
    while [ -L "$f" ]; do
      echo "$f"
      t=$(readlink "$f")
      case $t in /*) f=$t ;; *) f="$(dirname "$f")/$t" ;; esac
    done
    echo "$f"
  done | while read -r f; do
    if [ -L "$f" ] || [ -f "$f" ]; then
      echo "$(readlink -f "$(dirname "$f")")/$(basename "$f")"
    fi
  done | sed 's#^/*##' | sort -u | tar -C / -c --no-recursion -T -
}

# slim_rootfs DIR IMAGE ARG... : a minimal root filesystem in DIR (merged
# /usr) holding debian_files ARG... taken from the Debian-based IMAGE.
slim_rootfs() {
  local dir=$1 from=$2 c
  shift 2
  minimal_rootfs "$dir"
  for c in bin sbin lib lib64; do ln -s "usr/$c" "$dir/$c"; done
  mkdir -p "$dir/usr/bin" "$dir/usr/sbin" "$dir/usr/lib" "$dir/usr/lib64"
  docker run --rm --entrypoint bash "$from" -euc "$(declare -f debian_files)"'; debian_files "$@"' bash "$@" |
    tar -C "$dir" -x || die "copying $* out of $from failed"
}

# check_commands IMAGE "COMMAND ARG..."... : each command line runs in IMAGE
# (a version query), so that a library or file left out fails the build.
check_commands() {
  local image=$1 line
  shift
  for line in "$@"; do
    # shellcheck disable=SC2086 # the command line is split on purpose
    docker run --rm --entrypoint ${line%% *} "$image" ${line#* } >/dev/null 2>&1 ||
      die "'$line' does not run in $image: a file it needs is missing from the image"
  done
}

# import_into_store ROOT WORK IMAGE... : the images, saved by docker, into the
# containerd store at ROOT (namespace k8s.io), unpacked, through a throwaway
# containerd whose socket, state and log (WORK/containerd.log) live in WORK.
# Unpacked, because a node otherwise extracts each image when its first
# container is made, for kube-proxy, CoreDNS and each Flux controller side
# by side, on the way to every cluster's first Service. Every image must be
# a single layer (the kit's are: docker import), so that no snapshot has a
# parent whose files its whiteouts would hide: move_snapshots_out puts the
# snapshots on the node's overlay root, which cannot carry whiteouts from
# one image layer to the next. Fails when the
# import does or an image has more layers; containerd is stopped either way.
import_into_store() {
  local root=$1 work=$2 pid i rc=0
  shift 2
  cat >"$work/config.toml" <<TOML
version = 2
root = "$root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$work/containerd.sock"
TOML
  containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
  pid=$!
  for i in $(seq 1 50); do [ -S "$work/containerd.sock" ] && break; sleep 0.2; done
  docker save "$@" | ctr --address "$work/containerd.sock" -n k8s.io images import - >/dev/null || rc=1
  # ctr snapshots ls: KEY PARENT KIND, the parent empty for a first layer.
  if [ "$rc" = 0 ] && ! ctr --address "$work/containerd.sock" -n k8s.io snapshots ls | awk 'NR > 1 && NF != 2 { bad = 1 } END { exit bad }'; then
    log "an image among $* has more than one layer, or its snapshots could not be listed (ctr snapshots ls):"
    ctr --address "$work/containerd.sock" -n k8s.io snapshots ls >&2
    rc=1
  fi
  # shellcheck disable=SC2015 # either failing means containerd is gone already
  kill "$pid" && wait "$pid" 2>/dev/null || true
  return "$rc"
}

# ---- kind node image ---------------------------------------------------------

NODE_PACKAGES="systemd containerd runc nftables ethtool socat ebtables kmod util-linux mount \
containernetworking-plugins jq libseccomp2 pigz e2fsprogs bash"

# build_node_image HASH IMAGE K8S_BIN CRICTL_BIN KIND_MODULE_DIR : the kind node
# image, with the control-plane images in its containerd store.
build_node_image() {
  local h=$1 image=$2 k8s=$3 crictl=$4 kindfiles="$5/images/base/files" dir="$KIT_DIR/rootfs/node" work="$KIT_DIR/scratch/preload"

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

  # 3. Preload the control-plane images with a throwaway containerd on the
  # rootfs, their blobs and unpacked layers outside /var (see CONTENT_DIR and
  # SNAPSHOT_DIR).
  rm -rf "$work" && mkdir -p "$work" "$dir/$CONTENT_DIR" "$dir/$SNAPSHOT_DIR" "$dir/var/lib/containerd"
  ln -s "../../../$CONTENT_DIR" "$dir/var/lib/containerd/io.containerd.content.v1.content"
  # shellcheck disable=SC2046
  import_into_store "$dir/var/lib/containerd" "$work" $(controlplane_images) ||
    die "preloading control-plane images failed (log: $work/containerd.log)"
  move_snapshots_out "$dir"
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

# ---- node image with the run's images baked in -------------------------------

# CONTENT_DIR is where a node's containerd keeps its image blobs: outside
# /var, with a relative symlink at the path containerd uses. kind gives every
# node an anonymous /var volume, which docker fills with a copy of the
# image's /var when the node starts: with the blobs there, each new cluster
# would copy a gigabyte before it starts. Blobs
# are plain files, which the node's overlay root holds as well; so are the
# unpacked image layers (SNAPSHOT_DIR), while the containers' writable
# layers, which need a non-overlay filesystem, are made on the volume.
CONTENT_DIR=opt/fleet-kit/containerd-content

# SNAPSHOT_DIR holds the images' unpacked layers, outside /var for the same
# reason, each behind a relative symlink at the path containerd's overlayfs
# snapshotter uses (SNAPSHOTS). They are only ever the lower directories of a
# container's overlay, which may sit on the node's overlay root; the upper
# ones, which may not, are made on the volume when a container is created.
SNAPSHOT_DIR=opt/fleet-kit/containerd-snapshots
SNAPSHOTS=var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots

# move_snapshots_out DIR : every snapshot directory under DIR/SNAPSHOTS moved
# to DIR/SNAPSHOT_DIR, a relative symlink left in its place.
move_snapshots_out() {
  local dir=$1 s id
  for s in "$dir/$SNAPSHOTS"/*; do
    [ -d "$s" ] && [ ! -L "$s" ] || continue
    id=$(basename "$s")
    [ ! -e "$dir/$SNAPSHOT_DIR/$id" ] || die "$SNAPSHOT_DIR/$id exists already: two stores share the directory"
    mv "$s" "$dir/$SNAPSHOT_DIR/$id"
    ln -s "../../../../../$SNAPSHOT_DIR/$id" "$s"
    [ -d "$s/fs" ] || die "$SNAPSHOTS/$id: the symlink does not reach the moved snapshot"
  done
}

# store_listing DIR : every entry of the containerd store under DIR (/var,
# CONTENT_DIR and SNAPSHOT_DIR) with its type, mode, size and mtime, so that
# two listings tell which entries an import added or changed.
store_listing() { (cd "$1" && find var "$CONTENT_DIR" "$SNAPSHOT_DIR" -printf '%p\t%y %m %s %T@\n' | LC_ALL=C sort); }

# build_preloaded_node_image BASE IMAGE HASH IMAGES... : BASE plus one layer
# holding IMAGES in the node's containerd store, imported the way the
# control-plane images are (a throwaway containerd, unpacked), so that a
# cluster starts with them instead of receiving a docker save stream per node.
# The layer carries only what the import added or changed (the new blobs and
# snapshots, the metadata databases): the control-plane images stay in BASE's
# layer.
build_preloaded_node_image() {
  local base=$1 image=$2 h=$3 work="$KIT_DIR/scratch/node-preload" name="fleet-kit-node-preload-$$"
  shift 3
  rm -rf "$work" && mkdir -p "$work/var/lib" "$work/$(dirname "$CONTENT_DIR")" "$work/$SNAPSHOT_DIR"
  docker rm -f "$name" >/dev/null 2>&1 || true
  docker create --name "$name" "$base" >/dev/null
  docker cp "$name:/var/lib/containerd" - | tar -C "$work/var/lib" -x
  docker cp "$name:/$CONTENT_DIR" - | tar -C "$work/$(dirname "$CONTENT_DIR")" -x
  [ -L "$work/var/lib/containerd/io.containerd.content.v1.content" ] ||
    die "$base keeps its image blobs under /var: rebuild it (the preloaded layer would write them outside its store)"
  # BASE's snapshots stay in BASE: the new images' single layers have no
  # parent to read, so only their names (dangling symlinks here) come along.
  store_listing "$work" >"$work/before"
  if ! import_into_store "$work/var/lib/containerd" "$work" "$@"; then
    cp "$work/containerd.log" "$KIT_DIR/node-preload-containerd.log" 2>/dev/null || true
    docker rm -f "$name" >/dev/null
    die "baking $* into the node image failed (containerd log: $KIT_DIR/node-preload-containerd.log)"
  fi
  move_snapshots_out "$work"
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

# ---- Flux controllers and manifests ------------------------------------------

# build_flux_controller_image CONTROLLER VERSION MODULE_DIR IMAGE HASH : the
# image of a Flux controller built from its root module (in the module cache at
# MODULE_DIR) at the version flux2 bundles.
build_flux_controller_image() {
  local c=$1 v=$2 moddir=$3 image=$4 h=$5 mod src bin="$KIT_DIR/scratch/$1-bin" dir="$KIT_DIR/rootfs/$1"
  mod="github.com/fluxcd/$c@$v"
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
  (cd "$src" && release_build "" -o "$bin" .) || die "building $mod failed"
  minimal_rootfs "$dir"
  install -m 0755 "$bin" "$dir/usr/local/bin/$c"
  mkdir -p "$dir/data" && chown 65534:65534 "$dir/data"
  import_dir "$dir" "$image" "$h" --change "ENTRYPOINT [\"/usr/local/bin/$c\"]" --change 'USER 65534:65534'
  rm -rf "$dir" "$bin" "$src"
}

# build_flux_manifests OUT FLUX_MODULE_DIR NOTIFICATION_API_MODULE_DIR CONTROLLER=MODULE_DIR... :
# the offline manifests directory install.Generate reads, written into OUT.
build_flux_manifests() {
  local out=$1 flux=$2 napi=$3 c args=() nc="$KIT_DIR/scratch/crd-notification-controller"
  shift 3
  for c in "$@"; do args+=(--controller "$c"); done
  rm -rf "$out" && mkdir -p "$out"
  (cd "$repo" && go run ./hack/kit/fluxmanifests --flux "$flux" "${args[@]}" --out "$out")
  # The CRDs of notification-controller, whose root module the proxy refuses,
  # so that fleets with Alerts, Providers or Receivers can at least be applied:
  # the harness applies extra-crds/*.yaml after Flux.
  rm -rf "$nc" && mkdir -p "$nc" "$out/extra-crds"
  (cd "$napi" &&
    go run -gcflags=all=-dwarf=false "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION" \
      crd paths=./... output:crd:artifacts:config="$nc")
  cat "$nc"/*.yaml >"$out/extra-crds/notification-controller.crds.yaml"
  rm -rf "$nc"
}

# ---- workload images ---------------------------------------------------------

# build_nginx_image, build_redis_image, build_app_image IMAGE HASH : the fleets' workload images.
#
# nginx and redis come from Debian's packages, but their images carry only
# the commands the fleets run and what those load: a new cluster extracts
# every image it starts, on the critical path of the bring-up, and the whole
# Debian userland under them would cost that time (or, baked in already
# extracted, as long in copying).
build_nginx_image() {
  slim_debian_image "$1" "$2" nginx-light "sh awk sed mkdir cat nginx" \
    "nginx -v" "sed --version" "awk -W version" "mkdir --version" \
    --change 'CMD ["nginx", "-g", "daemon off;"]'
}
build_redis_image() {
  slim_debian_image "$1" "$2" redis-server "sh chown redis-server redis-cli" \
    "redis-server --version" "redis-cli --version" "chown --version" \
    --change 'CMD ["redis-server", "--protected-mode", "no", "--save", "", "--appendonly", "no"]'
}

# slim_debian_image IMAGE HASH PACKAGES COMMANDS CHECK... [--change ...]... :
# IMAGE holds COMMANDS (and what they load) from the Debian image with
# PACKAGES installed, on a minimal root; every CHECK command line must run.
slim_debian_image() {
  local image=$1 h=$2 packages=$3 commands=$4 build="fleet-kit/slim-build:$$" dir="$KIT_DIR/rootfs/slim"
  local -a checks=()
  shift 4
  while [ $# -gt 0 ] && [ "$1" != --change ]; do checks+=("$1") && shift; done
  debian_layer "$build" "$h" "$packages" ''
  # shellcheck disable=SC2086 # a list of command names
  slim_rootfs "$dir" "$build" --commands $commands
  docker rmi "$build" >/dev/null
  import_dir "$dir" "$image" "$h" "$@"
  rm -rf "$dir"
  check_commands "$image" "${checks[@]}"
}
build_app_image() {
  local image=$1 h=$2 dir="$KIT_DIR/rootfs/app"
  minimal_rootfs "$dir"
  (cd "$repo" && release_build "" -o "$dir/usr/local/bin/fleet-app" ./fixtures/app)
  import_dir "$dir" "$image" "$h" --change 'ENTRYPOINT ["/usr/local/bin/fleet-app"]' --change 'USER 65534:65534'
  rm -rf "$dir"
}

# ---- podinfo image -----------------------------------------------------------

# build_podinfo_image IMAGE HASH MODULE_DIR : podinfo laid out like upstream's
# Dockerfile (WORKDIR /home/app with ./podinfo and ./ui, podcli on PATH for the
# chart's exec probes, a non-root user), built from the module's own go.mod
# (github.com/stefanprodan/podinfo@$PODINFO_MODULE_VERSION, in the module cache
# at MODULE_DIR).
build_podinfo_image() {
  local image=$1 h=$2 moddir=$3 mod="github.com/stefanprodan/podinfo@$PODINFO_MODULE_VERSION" commit src="$KIT_DIR/src/podinfo" dir="$KIT_DIR/rootfs/podinfo" p
  rm -rf "$src" && cp -r "$moddir" "$src" && chmod -R u+w "$src"
  # Upstream stamps only the git revision; the version is in pkg/version's source.
  commit=${PODINFO_MODULE_VERSION##*-}
  minimal_rootfs "$dir"
  mkdir -p "$dir/home/app"
  for p in podinfo podcli; do
    (cd "$src" && release_build "-X github.com/stefanprodan/podinfo/pkg/version.REVISION=$commit" \
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

# ---- in-cluster fleet server ------------------------------------------------

# build_git_image IMAGE HASH : the Debian base image with Debian's git, and
# an account for uid 65532, the fleet server's user, so that git can name it.
build_git_image() {
  debian_layer "$1" "$2" git "
    echo 'fleet-server:x:65532:65532:fleet server:/nonexistent:/usr/sbin/nologin' >>/etc/passwd
    echo 'fleet-server:x:65532:' >>/etc/group"
  check_commands "$1" "git --version"
}

# build_fleet_server_image IMAGE HASH GIT_IMAGE : GIT_IMAGE plus the static
# binary of hack/fleetserver at /fleet-server, its entrypoint, run as uid
# 65532. The base image's CMD is cleared: it would become the server's
# arguments.
build_fleet_server_image() {
  local image=$1 h=$2 from=$3 dir="$KIT_DIR/scratch/fleet-server-build"
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$repo" && release_build "" -o "$dir/fleet-server" ./hack/fleetserver)
  printf '%s\n' "FROM $from" 'COPY fleet-server /fleet-server' 'USER 65532:65532' 'ENTRYPOINT ["/fleet-server"]' \
    'CMD []' "LABEL $LABEL=$h" >"$dir/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$dir" >/dev/null
  rm -rf "$dir"
  check_commands "$image" "git --version"
}

# ---- dispatch ----------------------------------------------------------------

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  : "${KIT_DIR:?is unset: recipes are run by go run ./hack/kit}"
  : "${KIT_LABEL:?is unset: recipes are run by go run ./hack/kit}"
  : "${DEBIAN_IMAGE:?is unset: recipes are run by go run ./hack/kit}"
  LABEL=$KIT_LABEL
  [ $# -ge 1 ] || die "usage: $0 FUNCTION [ARGS...]"
  declare -F "$1" >/dev/null || die "$0 has no function '$1'"
  # The working directories every build may write under: the lanes run
  # builds in no fixed order, so none may count on another to make them.
  # Queries write nothing (kit -hash makes no kit directory).
  case $1 in build_*) mkdir -p "$KIT_DIR/src" "$KIT_DIR/scratch" "$KIT_DIR/rootfs" ;; esac
  kit_recipe=$1
  trap 'on_error $? $LINENO' ERR
  "$@"
fi
