#!/usr/bin/env bash
# Makes sure a Docker engine that can run kind nodes is up.
#
# - Installs Debian's docker.io (and jq) when dockerd is missing.
# - Leaves a running engine alone when it already runs privileged containers.
# - On a host whose capability bounding set lacks CAP_SYS_RESOURCE, registers the
#   runc wrapper (hack/kit/runc-drop-sys-resource) as the default runtime.
# - Raises the host's inotify limits to what kind advises when they are lower.
# - Starts dockerd when none is running and waits until it answers.
# Never restarts a dockerd it did not start.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log() { printf '[docker-engine] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

wrapper_dst=/usr/local/libexec/flux-fleet/runc-drop-sys-resource
daemon_json=/etc/docker/daemon.json
dockerd_log=${FLEET_DOCKERD_LOG:-/var/log/flux-fleet-dockerd.log}

need_cap_workaround() {
  # CAP_SYS_RESOURCE is bit 24 of the bounding set.
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  (((0x$bnd >> 24) & 1)) && return 1 || return 0
}

engine_answers() { docker info >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null 2>&1 || ! command -v jq >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || die "dockerd or jq missing and not root: install docker.io and jq"
  log "installing docker.io and jq from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq docker.io jq >/dev/null || die "apt-get install docker.io jq failed"
fi

# The wrapper is exec'd per container operation, so refreshing our own copy is
# safe even while an engine that uses it runs.
if [ -f "$wrapper_dst" ] && ! cmp -s "$here/runc-drop-sys-resource" "$wrapper_dst"; then
  log "updating the runc wrapper"
  install -m 0755 "$here/runc-drop-sys-resource" "$wrapper_dst"
fi

# kind nodes draw on the host's inotify limits, which are not namespaced: each
# node's systemd, kubelet and containerd hold about two dozen instances, so at
# the usual default of 128 a fifth running node's systemd cannot start. kind's
# known issues ("too many open files") advise 512 instances and 524288
# watches. Only ever raised, never lowered.
raise_inotify() {
  local key=$1 want=$2 file=/proc/sys/fs/inotify/$1 have
  have=$(cat "$file" 2>/dev/null) || return 0
  [ "$have" -lt "$want" ] || return 0
  if [ "$(id -u)" = 0 ] && echo "$want" >"$file" 2>/dev/null; then
    log "raised fs.inotify.$key from $have to $want: kind nodes share the host's inotify limits"
  else
    log "WARNING: fs.inotify.$key is $have, too low for more than a few kind nodes at once; raise it: sudo sysctl fs.inotify.$key=$want"
  fi
}
raise_inotify max_user_instances 512
raise_inotify max_user_watches 524288

if engine_answers; then
  if need_cap_workaround && ! docker info --format '{{json .Runtimes}}' | grep -q runc-drop-sys-resource; then
    die "a Docker engine is running that this host cannot use for kind (no CAP_SYS_RESOURCE): it was not started by this kit, so it is left alone. Stop it and re-run, or register hack/kit/runc-drop-sys-resource as its default runtime."
  fi
  log "engine already running: left alone"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "no Docker engine answers and not root: start dockerd yourself"
mkdir -p /lib/modules # kind mounts it read-only into every node

if need_cap_workaround; then
  log "host lacks CAP_SYS_RESOURCE: installing the runc wrapper as default runtime"
  install -D -m 0755 "$here/runc-drop-sys-resource" "$wrapper_dst"
  mkdir -p "$(dirname "$daemon_json")"
  current='{}'
  [ -s "$daemon_json" ] && current=$(cat "$daemon_json")
  jq --arg path "$wrapper_dst" \
    '.runtimes["runc-drop-sys-resource"] = {path: $path} | .["default-runtime"] = "runc-drop-sys-resource"' \
    <<<"$current" >"$daemon_json.tmp"
  mv "$daemon_json.tmp" "$daemon_json"
fi

log "starting dockerd (log: $dockerd_log)"
# A stale pid file from a dockerd ended with the previous session blocks a new start.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
stale=/var/run/docker/containerd/containerd.pid
if [ -f "$stale" ] && ! kill -0 "$(cat "$stale")" 2>/dev/null; then rm -f "$stale"; fi
setsid dockerd >>"$dockerd_log" 2>&1 </dev/null &
for _ in $(seq 1 60); do
  engine_answers && { log "dockerd up"; exit 0; }
  sleep 1
done
tail -20 "$dockerd_log" >&2 || true
die "dockerd did not answer within 60s (log: $dockerd_log)"
