#!/usr/bin/env bash
# A many-daemon agentexec cluster on one machine, all on loopback: one gateway node (role gateway: the
# entities and the API, no sandbox engine) and N worker nodes (role worker), each worker with a dockerd of
# its own; journal in the local PostgreSQL (a schema of the cluster's own); mutual TLS between the nodes.
#
#   scripts/cluster-up.sh N               start the gateway and workers 1..N (those not running yet)
#   scripts/cluster-up.sh --add-worker    start one more worker (next index, a new dockerd)
#   scripts/cluster-up.sh --worker K      (re)start worker K on its existing dockerd data (restarting the daemon
#                                         if it is down): a replacement on the same daemon
#   scripts/cluster-up.sh --status        print the cluster's state, change nothing
#
# Every command waits until the gateway's /readyz says as many workers are reachable as worker nodes run
# (AGENTEXEC_CLUSTER_READY_TIMEOUT, 300 s), then prints the cluster as one JSON object on stdout (also in
# $AGENTEXEC_CLUSTER_DIR/cluster.json): gateway URL, every node's pid, ports and log, every worker's DOCKER_HOST
# and dockerd. Progress goes to stderr. Running it again changes nothing that runs. scripts/cluster-down.sh stops
# it (or one worker).
#
# Ports (deterministic): node index i (gateway 0, worker K is K) listens on remoting PEKKO+i, HTTP/gRPC HTTP+i
# and metrics METRICS+i. Every node serves the API; the gateway node's is the one to use.
#
# Environment (those marked * are fixed when the cluster is made, in $AGENTEXEC_CLUSTER_DIR/cluster.env):
#   AGENTEXEC_CLUSTER_DIR            state, logs, pids, certificates, the dockerds' roots (/tmp/agentexec-cluster)
#   AGENTEXEC_CLUSTER_NAME*          names the database schema agentexec_cluster_NAME (local)
#   AGENTEXEC_CLUSTER_PEKKO_PORT*    remoting base port (25520)
#   AGENTEXEC_CLUSTER_HTTP_PORT*     HTTP and gRPC base port (8080)
#   AGENTEXEC_CLUSTER_METRICS_PORT*  metrics base port (9464)
#   AGENTEXEC_CLUSTER_DB_URL*        jdbc:postgresql://127.0.0.1:5432/agentexec
#   AGENTEXEC_CLUSTER_DB_USER*       agentexec; AGENTEXEC_CLUSTER_DB_PASSWORD (agentexec: scripts/setup.sh's role)
#   AGENTEXEC_CLUSTER_IMAGES         images copied from the main dockerd into each worker's (python, shell, node,
#                                    polyglot); cached as tar files in AGENTEXEC_CLUSTER_IMAGE_CACHE
#                                    (/var/tmp/agentexec-cluster-images), by image id
#   AGENTEXEC_CLUSTER_JAVA_OPTS      the nodes' JVM options (-Xmx512m)
#   AGENTEXEC_AUTH_MODE              none (the default here: every listener is on loopback) or api-keys
#   AGENTEXEC_NODE_CLASSPATH         run nodes from this class path instead of bin/agentexec (tests)
#   AGENTEXEC_CLUSTER_READY_TIMEOUT, AGENTEXEC_CLUSTER_DOCKERD_TIMEOUT (60), AGENTEXEC_CLUSTER_STOP_TIMEOUT (120)
#   Any other AGENTEXEC_* variable reaches every node (e.g. AGENTEXEC_WORKER_SLOTS, AGENTEXEC_SBR_STABLE_AFTER).
set -euo pipefail
# shellcheck source=lib/cluster.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/cluster.sh"

# The comment above, as help: on stdout for --help, on stderr (exit 2) without arguments.
usage() {
  sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//' >&"${1:-2}"
  exit $(( ${1:-2} == 1 ? 0 : 2 ))
}

mode=""
count=""
target=""
case "${1:-}" in
  "") usage ;;
  -h|--help) usage 1 ;;
  --status) mode=status ;;
  --add-worker) mode=add ;;
  --worker)
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || usage_error "scripts/cluster-up.sh --worker K (K: a worker's index, 1 or more); got '${2:-}'"
    mode=worker
    target="$2"
    shift ;;
  *)
    [[ "$1" =~ ^[1-9][0-9]*$ ]] || usage_error "scripts/cluster-up.sh N|--add-worker|--worker K|--status (N: workers, 1 or more); got '$1'"
    mode=up
    count="$1" ;;
esac
shift
[[ $# -eq 0 ]] || usage_error "unexpected argument '$1' (scripts/cluster-up.sh --help)"

cluster_settings
take_lock

readiness() {
  local reply
  reply="$(http_get "http://127.0.0.1:$http_base/readyz")"
  sed -n 's/.*"detail" *: *"\([^"]*\)".*/\1/p' <<<"$reply"
}

if [[ "$mode" == status ]]; then
  [[ -f "$dir/cluster.env" ]] || die "no cluster in $dir (scripts/cluster-up.sh N makes one)"
  ready=""
  [[ -n "$(node_pid 0)" ]] && ready="$(readiness)"
  state_json "$ready"
  exit 0
fi

# ---- a new cluster: check what it needs, start from a fresh schema

if [[ ! -f "$dir/cluster.env" ]]; then
  [[ "$mode" == up ]] || die "no cluster in $dir yet: scripts/cluster-up.sh N makes one"
  for c in docker dockerd psql python3 ss findmnt setsid flock java; do
    command -v "$c" >/dev/null || die "$c is not installed (scripts/setup.sh installs what agentexec needs)"
  done
  docker info >/dev/null 2>&1 || die "the main Docker daemon does not answer (the images are copied from it; scripts/setup.sh starts it)"
  psql_cluster -tAc 'SELECT 1' >/dev/null \
    || die "PostgreSQL at $db_host:$db_port (database $db_name, user $db_user) refused the connection; scripts/setup.sh starts it, AGENTEXEC_CLUSTER_DB_* name another"
  check_ports_free 0
  # A schema of this name is a previous cluster's whose directory was removed: start from an empty one.
  drop_schema
  save_settings
  say "new cluster '$name' in $dir (schema $schema in $db_name)"
fi

case "$mode" in
  up) workers=($(seq 1 "$count")) ;;
  add)
    last="$(worker_indexes | tail -n1)"
    workers=($(( ${last:-0} + 1 ))) ;;
  worker) workers=("$target") ;;
esac

# ---- the node build (bin/agentexec builds it on first use; once here, not once per node at the same time)

if [[ -z "${AGENTEXEC_NODE_CLASSPATH:-}" ]]; then
  "$cluster_root/bin/agentexec" --help >/dev/null
fi

# ---- certificates: one CA for the cluster, a key store per node

need_certs=()
[[ -f "$dir/tls/gateway.p12" ]] || need_certs+=(gateway)
for k in "${workers[@]}"; do
  [[ -f "$dir/tls/worker-$k.p12" ]] || need_certs+=("worker-$k")
done
if [[ ${#need_certs[@]} -gt 0 ]]; then
  say "certificates for ${need_certs[*]}"
  if ! "$cluster_root/scripts/make-certs.sh" "$dir/tls" "${need_certs[@]}" 2>>"$dir/make-certs.log"; then
    tail_log "$dir/make-certs.log"
    die "scripts/make-certs.sh $dir/tls ${need_certs[*]} failed"
  fi
fi

# ---- nodes

start_node() {
  local k="$1" d roles docker
  d="$(node_dir "$k")"
  mkdir -p "$d/runtime"
  chmod 700 "$d" "$d/runtime"
  if [[ "$k" == 0 ]]; then
    roles=gateway
    # The gateway runs no engine; should anything there reach for Docker, it fails rather than use the main daemon.
    docker="unix://$d/no-docker-here.sock"
  else
    roles=worker
    docker="$(docker_host "$k")"
  fi
  local cmd
  if [[ -n "${AGENTEXEC_NODE_CLASSPATH:-}" ]]; then
    # shellcheck disable=SC2206
    cmd=("${JAVA_HOME:+$JAVA_HOME/bin/}java" $java_opts -cp "$AGENTEXEC_NODE_CLASSPATH" io.agentexec.node.AgentexecMain)
  else
    cmd=(env "AGENTEXEC_JAVA_OPTS=$java_opts" "$cluster_root/bin/agentexec")
  fi
  echo "==== $(date -u +%FT%TZ) scripts/cluster-up.sh starts $(node_name "$k") (roles $roles)" >> "$d/node.log"
  start_detached "$d/node.pid" "$d/node.log" "$d" env \
    "AGENTEXEC_CLUSTER_NODE=$d" \
    "AGENTEXEC_ROLES=$roles" \
    "AGENTEXEC_HOST=127.0.0.1" "AGENTEXEC_PORT=$((pekko_base + k))" \
    "AGENTEXEC_SEED_NODES=pekko://agentexec@127.0.0.1:$pekko_base" \
    "AGENTEXEC_GATEWAY_HOST=127.0.0.1" "AGENTEXEC_GATEWAY_PORT=$((http_base + k))" \
    "AGENTEXEC_METRICS_HOST=127.0.0.1" "AGENTEXEC_METRICS_PORT=$((metrics_base + k))" \
    "AGENTEXEC_DB_DIALECT=postgresql" "AGENTEXEC_DB_URL=$db_url" "AGENTEXEC_DB_USER=$db_user" \
    "AGENTEXEC_DB_PASSWORD=$db_password" "AGENTEXEC_DB_SCHEMA=$schema" \
    "AGENTEXEC_TLS=on" "AGENTEXEC_TLS_KEY_STORE=$dir/tls/$(node_name "$k").p12" \
    "AGENTEXEC_TLS_TRUST_STORE=$dir/tls/truststore.p12" \
    "AGENTEXEC_TLS_KEY_STORE_PASSWORD=$(cat "$dir/tls/store-password")" \
    "AGENTEXEC_TLS_TRUST_STORE_PASSWORD=$(cat "$dir/tls/store-password")" \
    "AGENTEXEC_AUTH_MODE=$auth_mode" "AGENTEXEC_KEYS_FILE=$d/gateway-keys.json" \
    "AGENTEXEC_RUNTIME_DIR=$d/runtime" \
    "AGENTEXEC_SANDBOX_BACKEND=docker" "DOCKER_HOST=$docker" \
    "${cmd[@]}" serve "$cluster_root/config/cluster.conf"
  say "$(node_name "$k"): node $(cat "$d/node.pid") (remoting 127.0.0.1:$((pekko_base + k)), HTTP 127.0.0.1:$((http_base + k)), log $d/node.log)"
}

deadline=$((SECONDS + ready_timeout))

# Each worker to start: its dockerd (new, or the existing data root again) and images, in parallel with each other
# and with the gateway node's start (a JVM: the slowest step on a busy machine).
starting=()
for k in "${workers[@]}"; do
  [[ -n "$(node_pid "$k")" ]] && continue
  await_previous_exit "$k"
  check_ports_free "$k"
  mkdir -p "$(node_dir "$k")"
  starting+=("$k")
done
helpers=()
for k in "${starting[@]}"; do
  (start_dockerd "$k" && load_images "$k") &
  helpers+=($!)
done

if [[ -z "$(node_pid 0)" ]]; then
  await_previous_exit 0
  check_ports_free 0
  start_node 0
  until [[ "$(http_get "http://127.0.0.1:$http_base/healthz" | cut -d' ' -f1)" == 200 ]]; do
    if [[ -z "$(node_pid 0)" ]]; then
      tail_log "$dir/gateway/node.log"
      die "the gateway node exited at start; see $dir/gateway/node.log"
    fi
    if (( SECONDS >= deadline )); then
      tail_log "$dir/gateway/node.log"
      die "the gateway did not answer on http://127.0.0.1:$http_base/healthz within ${ready_timeout}s (AGENTEXEC_CLUSTER_READY_TIMEOUT)"
    fi
    sleep 0.5
  done
  say "gateway: up on http://127.0.0.1:$http_base"
fi

failed=0
for h in "${helpers[@]}"; do
  wait "$h" || failed=1
done
(( failed == 0 )) || die "a worker's dockerd could not be prepared (above); scripts/cluster-down.sh cleans up"
for k in "${starting[@]}"; do
  start_node "$k"
done

# ---- ready: the gateway sees every running worker

expected=0
for k in $(worker_indexes); do
  [[ -n "$(node_pid "$k")" ]] && expected=$((expected + 1))
done
want="$expected worker(s) reachable"
detail=""
while :; do
  reply="$(http_get "http://127.0.0.1:$http_base/readyz")"
  detail="$(sed -n 's/.*"detail" *: *"\([^"]*\)".*/\1/p' <<<"$reply")"
  if [[ "${reply%% *}" == 200 && "$detail" == "$want"* ]]; then
    # The gateway may still count a killed worker this one replaces: each new node must see them all too.
    seen=1
    for k in "${starting[@]}"; do
      node_reply="$(http_get "http://127.0.0.1:$((http_base + k))/readyz")"
      [[ "${node_reply%% *}" == 200 && "$(sed -n 's/.*"detail" *: *"\([^"]*\)".*/\1/p' <<<"$node_reply")" == "$want"* ]] || seen=0
    done
    (( seen )) && break
  fi
  for k in 0 "${starting[@]}"; do
    if [[ -z "$(node_pid "$k")" ]]; then
      tail_log "$(node_dir "$k")/node.log"
      die "$(node_name "$k") exited while the cluster was forming; see $(node_dir "$k")/node.log"
    fi
  done
  if (( SECONDS >= deadline )); then
    for k in 0 "${starting[@]}"; do tail_log "$(node_dir "$k")/node.log" 20; done
    die "the gateway's /readyz says '${detail:-${reply#* }}', not '$want', after ${ready_timeout}s (AGENTEXEC_CLUSTER_READY_TIMEOUT)"
  fi
  sleep 0.5
done

say "ready: $detail"
say "gateway: http://127.0.0.1:$http_base (HTTP and gRPC; auth $auth_mode); state, logs and pids in $dir"
state_json "$detail"
