#!/usr/bin/env bash
# Stops what scripts/cluster-up.sh started (same AGENTEXEC_CLUSTER_DIR, default /tmp/agentexec-cluster).
#
#   scripts/cluster-down.sh                  everything: every node (SIGTERM, then SIGKILL after
#                                            AGENTEXEC_CLUSTER_STOP_TIMEOUT, 120 s), every worker's containers and
#                                            dockerd (a dockerd that was killed is started once more to clean up
#                                            after itself), their mounts and data roots, the database schema, the
#                                            directory. Idempotent: nothing there, nothing done.
#   scripts/cluster-down.sh --worker K       worker K gracefully: SIGTERM to its node, wait for it to exit, then
#                                            stop its dockerd (its data root stays: cluster-up.sh --worker K
#                                            starts it again on the same daemon)
#   scripts/cluster-down.sh --kill-worker K  worker K's node JVM and its dockerd killed with SIGKILL, at once
#                                            (their containers stay behind, as after a crash)
#
# Prints one JSON object on stdout: what it did, and (for one worker) the cluster's state after it.
set -euo pipefail
# shellcheck source=lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# The comment above, as help: on stdout for --help, on stderr (exit 2) without arguments.
usage() {
  sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&"${1:-2}"
  exit $(( ${1:-2} == 1 ? 0 : 2 ))
}

mode=all
target=""
case "${1:-}" in
  "") ;;
  -h|--help) usage 1 ;;
  --worker|--kill-worker)
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage_error "scripts/cluster-down.sh $1 K (K: a worker's index, 1 or more); got '${2:-}'"
    mode="${1#--}"
    target="$2"
    shift ;;
  *) usage_error "scripts/cluster-down.sh [--worker K | --kill-worker K]; got '$1'" ;;
esac
shift || true
[[ $# -eq 0 ]] || usage_error "unexpected argument '$1' (scripts/cluster-down.sh --help)"

cluster_settings
take_lock

# ---- one worker

if [[ "$mode" != all ]]; then
  [[ -f "$dir/cluster.env" ]] || die "no cluster in $dir"
  [[ -d "$(node_dir "$target")" ]] || die "the cluster in $dir has no worker $target (workers: $(worker_indexes | tr '\n' ' '))"
  pid="$(node_pid "$target")"
  dpid="$(dockerd_pid "$target")"
  if [[ "$mode" == kill-worker ]]; then
    # Both at once, as a machine losing the worker would.
    [[ -n "$pid" ]] && kill -KILL "$pid"
    [[ -n "$dpid" ]] && kill -KILL "$dpid"
    [[ -n "$pid" ]] && wait_gone "$pid"
    [[ -n "$dpid" ]] && wait_gone "$dpid"
    say "worker-$target: killed node ${pid:-(not running)} and dockerd ${dpid:-(not running)} with SIGKILL"
    printf '{"killed":"worker-%s","nodePid":%s,"dockerdPid":%s,"state":%s}\n' "$target" "$(json_pid "$pid")" \
      "$(json_pid "$dpid")" "$(state_json)"
    exit 0
  fi
  node="$(stop_pid "$pid" "$stop_timeout" "worker-$target's node")"
  say "worker-$target: node $node"
  [[ "$node" == killed ]] && tail_log "$(node_dir "$target")/node.log" 60
  # What the node left in its daemon (a node that stops gracefully leaves nothing): reported, not removed.
  left=null
  [[ -n "$dpid" ]] && left="$(containers_of "$target" | wc -l)"
  daemon="$(stop_pid "$dpid" "$dockerd_timeout" "worker-$target's dockerd")"
  [[ "$daemon" == killed ]] && kill_stray_shims "$target"
  say "worker-$target: dockerd $daemon"
  printf '{"stopped":"worker-%s","node":"%s","dockerd":"%s","leftoverContainers":%s,"state":%s}\n' \
    "$target" "$node" "$daemon" "$left" "$(state_json)"
  exit 0
fi

# ---- everything

removed=0
if [[ -d "$dir" && ! -f "$dir/cluster.env" ]]; then
  rmdir "$dir" 2>/dev/null || die "$dir is not a cluster's directory (no cluster.env): not touching it"
fi
if [[ -d "$dir" ]]; then
  # Nodes first (workers together, then the gateway), so that no node is left trying to reach a daemon that is gone.
  helpers=()
  for k in $(worker_indexes); do
    pid="$(node_pid "$k")"
    [[ -n "$pid" ]] || continue
    (
      how="$(stop_pid "$pid" "$stop_timeout" "worker-$k's node")"
      say "worker-$k: node $how"
      [[ "$how" != killed ]] || tail_log "$(node_dir "$k")/node.log" 60
    ) &
    helpers+=($!)
  done
  for h in "${helpers[@]}"; do wait "$h" || true; done
  pid="$(node_pid 0)"
  if [[ -n "$pid" ]]; then
    how="$(stop_pid "$pid" "$stop_timeout" "the gateway node")"
    say "gateway: node $how"
    [[ "$how" != killed ]] || tail_log "$dir/gateway/node.log" 60
  fi
  # Strays (a pid file lost): whatever still carries this cluster's mark.
  for pid in $(marked_pids); do
    say "stray node process $pid of this cluster: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid"
  done

  for k in $(worker_indexes); do
    d="$(node_dir "$k")"
    if [[ -d "$d/data" ]]; then
      # A daemon that was killed left its containers running under their shims: started once more, it stops them
      # itself (no live-restore), and then they are removed like the others.
      if [[ -z "$(dockerd_pid "$k")" ]]; then
        (start_dockerd "$k") || say "worker-$k: its dockerd did not start again; killing what it left by hand"
      fi
      if [[ -n "$(dockerd_pid "$k")" ]]; then
        ids="$(containers_of "$k")"
        if [[ -n "$ids" ]]; then
          # shellcheck disable=SC2086
          docker -H "$(docker_host "$k")" rm -f -v $ids >/dev/null 2>&1 || say "worker-$k: docker rm failed for some of $ids"
          removed=$((removed + $(wc -w <<<"$ids")))
        fi
        say "worker-$k: dockerd $(stop_pid "$(dockerd_pid "$k")" "$dockerd_timeout" "worker-$k's dockerd")"
      fi
    fi
    kill_stray_shims "$k"
    unmount_under "$d"
    rm -rf "$d"
  done
  unmount_under "$dir"
fi

drop_schema
rm -rf "$dir"
[[ -z "$(mounts_under "$dir")" ]] || die "mounts are left below $dir: $(mounts_under "$dir" | tr '\n' ' ')"
say "cluster '$name' is down ($dir removed, schema $schema dropped, $removed container(s) removed)"
printf '{"down":%s,"dir":%s,"schema":%s,"containersRemoved":%d}\n' "$(json_str "$name")" "$(json_str "$dir")" \
  "$(json_str "$schema")" "$removed"
rm -f "$lock_file"
