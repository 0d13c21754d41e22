# Shared by scripts/cluster-up.sh and scripts/cluster-down.sh (sourced, not run): the layout of a local
# many-daemon agentexec cluster, and how its nodes and dockerds are started, found and stopped.
#
# Layout (everything under $AGENTEXEC_CLUSTER_DIR, default /tmp/agentexec-cluster):
#   cluster.env          the settings fixed when the cluster was made (name, schema, ports, database); later
#                        commands read them from here, whatever their environment says
#   cluster.json         the cluster as the last command left it (the same JSON the commands print)
#   tls/                 scripts/make-certs.sh's CA, trust store and one key store per node
#   gateway/             the gateway node: node.pid, node.log (the node's working directory)
#   worker-K/            worker K: node.pid, node.log, and its own dockerd: docker.sock, docker.pid,
#                        dockerd.log, daemon.json, data/ (--data-root), exec/ (--exec-root)
# Node index: the gateway is 0, worker K is K; its ports are the bases plus its index.
#
# Processes are identified exactly, never by name: a node by AGENTEXEC_CLUSTER_NODE=<dir>/<node> in its
# environment, a dockerd by its --pidfile (a path inside this cluster's directory) on its command line.

cluster_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { echo "[cluster $(date -u +%H:%M:%S)] $*" >&2; }
die() { echo "[cluster] error: $*" >&2; exit 1; }
usage_error() { echo "[cluster] usage: $*" >&2; exit 2; }

# ---- settings

# Settings an operator may give; fixed at the cluster's creation (cluster.env) except where noted.
cluster_settings() {
  dir="${AGENTEXEC_CLUSTER_DIR:-/tmp/agentexec-cluster}"
  [[ "$dir" == /* ]] || die "AGENTEXEC_CLUSTER_DIR must be an absolute path; got '$dir'"
  [[ "$dir" =~ ^/[A-Za-z0-9._/-]+$ ]] || die "AGENTEXEC_CLUSTER_DIR may hold only letters, digits, '.', '_', '-' and '/'; got '$dir'"
  dir="${dir%/}"
  # Unix socket paths are limited to 108 bytes; the longest one below the directory is the worker's containerd
  # socket (worker-NN/exec/containerd/containerd.sock.ttrpc, 47 bytes): keep the directory short.
  (( ${#dir} <= 56 )) || die "AGENTEXEC_CLUSTER_DIR '$dir' is too long (${#dir} bytes, at most 56): the dockerds' unix sockets live below it"
  # Beside the other lock files of the machine, not in the cluster's directory (which cluster-down.sh removes).
  local locks=/run/lock
  [[ -d "$locks" && -w "$locks" ]] || locks=/tmp
  lock_file="$locks/agentexec-cluster$(tr / _ <<<"$dir").lock"
  if [[ -f "$dir/cluster.env" ]]; then
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
  else
    name="${AGENTEXEC_CLUSTER_NAME:-local}"
    pekko_base="${AGENTEXEC_CLUSTER_PEKKO_PORT:-25520}"
    http_base="${AGENTEXEC_CLUSTER_HTTP_PORT:-8080}"
    metrics_base="${AGENTEXEC_CLUSTER_METRICS_PORT:-9464}"
    db_url="${AGENTEXEC_CLUSTER_DB_URL:-jdbc:postgresql://127.0.0.1:5432/${AGENTEXEC_PG_DB:-agentexec}}"
    db_user="${AGENTEXEC_CLUSTER_DB_USER:-${AGENTEXEC_PG_USER:-agentexec}}"
  fi
  [[ "$name" =~ ^[a-z0-9_]{1,32}$ ]] || die "AGENTEXEC_CLUSTER_NAME is 1-32 of a-z, 0-9, '_' (it names the database schema); got '$name'"
  for p in pekko_base http_base metrics_base; do
    [[ "${!p}" =~ ^[0-9]+$ ]] && (( ${!p} >= 1024 && ${!p} <= 65000 )) \
      || die "AGENTEXEC_CLUSTER_${p%_base}_PORT must be a port number from 1024 to 65000; got '${!p}'" 
  done
  schema="agentexec_cluster_$name"
  # The jdbc URL gives psql its host, port and database.
  [[ "$db_url" =~ ^jdbc:postgresql://([^:/]+)(:([0-9]+))?/([A-Za-z0-9_]+)$ ]] \
    || die "AGENTEXEC_CLUSTER_DB_URL must look like jdbc:postgresql://HOST[:PORT]/DATABASE; got '$db_url'"
  db_host="${BASH_REMATCH[1]}"
  db_port="${BASH_REMATCH[3]:-5432}"
  db_name="${BASH_REMATCH[4]}"
  # Not stored: from the environment each time (the local PostgreSQL's test role by default, see scripts/setup.sh).
  db_password="${AGENTEXEC_CLUSTER_DB_PASSWORD:-${AGENTEXEC_PG_PASSWORD:-agentexec}}"
  # Not fixed: they may change from one command to the next.
  images="${AGENTEXEC_CLUSTER_IMAGES:-agentexec/python:bookworm agentexec/shell:bookworm agentexec/node:bookworm agentexec/polyglot:bookworm}"
  images="${images//,/ }"
  image_cache="${AGENTEXEC_CLUSTER_IMAGE_CACHE:-/var/tmp/agentexec-cluster-images}"
  ready_timeout="${AGENTEXEC_CLUSTER_READY_TIMEOUT:-300}"
  stop_timeout="${AGENTEXEC_CLUSTER_STOP_TIMEOUT:-120}"
  dockerd_timeout="${AGENTEXEC_CLUSTER_DOCKERD_TIMEOUT:-60}"
  java_opts="${AGENTEXEC_CLUSTER_JAVA_OPTS:--Xmx512m}"
  auth_mode="${AGENTEXEC_AUTH_MODE:-none}"
  for t in ready_timeout stop_timeout dockerd_timeout; do
    [[ "${!t}" =~ ^[0-9]+$ ]] && (( ${!t} > 0 )) || die "AGENTEXEC_CLUSTER_${t^^} must be a whole number of seconds above 0; got '${!t}'"
  done
}

save_settings() {
  mkdir -p "$dir"
  chmod 700 "$dir"
  cat > "$dir/cluster.env" <<EOF
# Written by scripts/cluster-up.sh when this cluster was made; read by every later command.
name=$name
pekko_base=$pekko_base
http_base=$http_base
metrics_base=$metrics_base
db_url=$db_url
db_user=$db_user
EOF
}

# Serialises the commands on one cluster (a test adding a worker while another stops one).
take_lock() {
  exec 9>"$lock_file"
  flock -w "$stop_timeout" 9 || die "another cluster command holds $lock_file for more than ${stop_timeout}s"
}

node_dir() { [[ "$1" == 0 ]] && echo "$dir/gateway" || echo "$dir/worker-$1"; }
node_name() { [[ "$1" == 0 ]] && echo gateway || echo "worker-$1"; }
docker_host() { echo "unix://$(node_dir "$1")/docker.sock"; }

# Indexes of the workers this cluster has (running or not), in order.
worker_indexes() {
  local d
  for d in "$dir"/worker-*; do
    [[ -d "$d" ]] && echo "${d##*/worker-}"
  done | sort -n
}

# ---- processes

# True when pid runs: while any of its threads does. A zombie does not; but a process killed with SIGKILL has its
# main thread a zombie while its other threads still exit (seen: a JVM's, for tens of ms, longer on a loaded
# machine), and its sockets and files stay open until the last one has (a node started then found its port in use).
# Builtins only: stop_pid polls this every 0.1 s.
alive() {
  local pid="$1" task line state
  [[ "$pid" =~ ^[0-9]+$ && -r "/proc/$pid/stat" ]] || return 1
  for task in "/proc/$pid/task/"*/stat; do
    line=""
    read -r line < "$task" 2>/dev/null || true
    state="${line##*) }"
    state="${state%% *}"
    [[ -n "$line" && "$state" != Z && "$state" != X ]] && return 0
  done
  return 1
}

# True when pid's main thread is a zombie (the process exited or exits; alive says whether its other threads do).
zombie_leader() {
  local line=""
  read -r line < "/proc/$1/stat" 2>/dev/null || return 1
  line="${line##*) }"
  [[ "${line%% *}" == Z ]]
}

# A node or dockerd of node K killed just before (kill -9, then scripts/cluster-up.sh --worker K at once) may still
# be exiting: its main thread a zombie (so it is no longer recognisably ours: its command line and environment read
# empty), its other threads still holding its ports and files. Waited for (bounded by wait_gone), rather than
# taking its ports for another program's.
await_previous_exit() {
  local d f pid
  d="$(node_dir "$1")"
  for f in "$d/node.pid" "$d/docker.pid"; do
    pid="$(cat "$f" 2>/dev/null || true)"
    if alive "$pid" && zombie_leader "$pid"; then
      say "$(node_name "$1"): its previous process $pid (${f##*/}) is still exiting: waiting for it"
      wait_gone "$pid"
    fi
  done
}

# The pid of node K if it runs and is ours, else nothing.
node_pid() {
  local d pid
  d="$(node_dir "$1")"
  pid="$(cat "$d/node.pid" 2>/dev/null || true)"
  if alive "$pid" && { tr '\0' '\n' < "/proc/$pid/environ"; } 2>/dev/null | grep -Fxq "AGENTEXEC_CLUSTER_NODE=$d"; then
    echo "$pid"
  fi
}

# The pid of worker K's dockerd if it runs and is ours, else nothing.
dockerd_pid() {
  local d pid
  d="$(node_dir "$1")"
  pid="$(cat "$d/docker.pid" 2>/dev/null || true)"
  if alive "$pid" && { tr '\0' '\n' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -Fxq "$d/docker.pid"; then
    echo "$pid"
  fi
}

# Processes whose environment marks them as nodes of this cluster (strays whose pid file is gone included).
marked_pids() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' '\n' < "$p/environ"; } 2>/dev/null | awk -v m="AGENTEXEC_CLUSTER_NODE=$dir/" 'index($0, m) == 1 { found = 1 } END { exit !found }' && echo "${p#/proc/}"
  done
  return 0
}

# Runs a command detached (own session, no terminal, output to a log), writing its pid to a file.
start_detached() {
  local pidfile="$1" log="$2" cwd="$3"
  shift 3
  rm -f "$pidfile"
  # bash writes its own pid, then becomes the command: the pid file names the command itself.
  # Every descriptor above 2 closed: fd 9 (this command's lock), and whatever the caller had open (e.g. a lock the
  # caller holds with flock, which nodes and dockerds that run on for hours would otherwise hold with it).
  (cd "$cwd" && exec 9>&- && exec setsid bash -c 'for f in /proc/$$/fd/*; do f="${f##*/}"; (( f > 2 )) && exec {f}>&-; done; echo $$ > "$0"; exec "$@"' "$pidfile" "$@") >>"$log" 2>&1 </dev/null &
  local waited=0
  until [[ -s "$pidfile" ]]; do
    (( waited++ < 100 )) || die "could not start $1 (no pid in $pidfile); see $log"
    sleep 0.1
  done
}

# SIGTERM, then up to timeout seconds for the exit, then SIGKILL. Prints how it ended.
stop_pid() {
  local pid="$1" timeout="$2" what="$3" waited=0
  alive "$pid" || { echo "not-running"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  while alive "$pid"; do
    if (( waited >= timeout * 10 )); then
      say "$what (pid $pid) still runs ${timeout}s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid"
      echo "killed"
      return 0
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  echo "stopped"
}

# After SIGKILL: a process may take a moment to die (a JVM's many threads on a loaded machine).
wait_gone() {
  local i
  for i in $(seq 1 600); do alive "$1" || return 0; sleep 0.1; done
  say "pid $1 still runs 60s after SIGKILL"
}

tail_log() {
  [[ -f "$1" ]] && { echo "---- last lines of $1:" >&2; tail -n "${2:-40}" "$1" >&2; echo "----" >&2; }
  return 0
}

# ---- ports

port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }

check_ports_free() {
  local k="$1" p
  for p in $((pekko_base + k)) $((http_base + k)) $((metrics_base + k)); do
    port_in_use "$p" && die "port $p (for $(node_name "$k")) is in use: choose other bases with AGENTEXEC_CLUSTER_PEKKO_PORT, AGENTEXEC_CLUSTER_HTTP_PORT, AGENTEXEC_CLUSTER_METRICS_PORT (before the cluster is made)"
  done
  return 0
}

# ---- HTTP

# GET a URL on loopback: prints "STATUS BODY" (STATUS 000 when nothing answers).
http_get() {
  python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        print(r.status, r.read().decode("utf-8", "replace").replace("\n", " "))
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode("utf-8", "replace").replace("\n", " "))
except Exception as e:
    print("000", e)
PY
}

# ---- the database

psql_cluster() {
  PGPASSWORD="$db_password" PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -h "$db_host" -p "$db_port" -U "$db_user" -d "$db_name" "$@"
}

drop_schema() {
  psql_cluster -c "DROP SCHEMA IF EXISTS $schema CASCADE" >&2 || true
  if [[ "$(psql_cluster -tAc "SELECT count(*) FROM information_schema.schemata WHERE schema_name = '$schema'")" != 0 ]]; then
    die "could not drop schema $schema in $db_name on $db_host:$db_port"
  fi
}

# ---- worker dockerds

# Worker K's dockerd: its own data root, exec root (its own containerd under it), socket, pid file and
# configuration file (only the main daemon's runtimes, e.g. runsc, copied from /etc/docker/daemon.json), no bridge
# and no iptables rules (sandboxes run with network none), and a containerd namespace of its own in case a
# system-wide containerd is running (dockerd would use it instead of starting its own).
start_dockerd() {
  local k="$1" d
  d="$(node_dir "$k")"
  [[ -n "$(dockerd_pid "$k")" ]] && return 0
  command -v dockerd >/dev/null || die "dockerd is not installed (scripts/setup.sh installs docker.io)"
  mkdir -p "$d/data" "$d/exec"
  if [[ ! -f "$d/daemon.json" ]]; then
    python3 - "$d/daemon.json" <<'PY'
import json, os, sys
main = "/etc/docker/daemon.json"
config = json.load(open(main)) if os.path.exists(main) and os.path.getsize(main) > 0 else {}
json.dump({"runtimes": config["runtimes"]} if "runtimes" in config else {}, open(sys.argv[1], "w"), indent=2)
PY
  fi
  rm -f "$d/docker.sock" "$d/docker.pid"
  clear_stale_containerd "$k"
  start_detached "$d/dockerd.launcher.pid" "$d/dockerd.log" "$d" dockerd \
    --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
    -H "unix://$d/docker.sock" --pidfile "$d/docker.pid" \
    --bridge=none --iptables=false --ip-masq=false --ip-forward=false --userland-proxy=false \
    --containerd-namespace "agentexec-$name-w$k" --containerd-plugins-namespace "agentexec-$name-w$k-plugins"
  local launched waited=0
  launched="$(cat "$d/dockerd.launcher.pid")"
  until docker -H "unix://$d/docker.sock" info >/dev/null 2>&1; do
    if ! alive "$launched"; then
      tail_log "$d/dockerd.log"
      if tail -n 5 "$d/dockerd.log" | grep -q 'timeout waiting for containerd'; then
        die "dockerd of $(node_name "$k") exited at start: it did not reach its containerd (socket $d/exec/containerd/containerd.sock; 'containerd is still running' above names the pid it took for it); see $d/dockerd.log"
      fi
      die "dockerd of $(node_name "$k") exited at start; see $d/dockerd.log"
    fi
    if (( waited >= dockerd_timeout * 2 )); then
      tail_log "$d/dockerd.log"
      die "dockerd of $(node_name "$k") did not answer on $d/docker.sock within ${dockerd_timeout}s (AGENTEXEC_CLUSTER_DOCKERD_TIMEOUT)"
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  [[ "$(cat "$d/docker.pid" 2>/dev/null)" == "$launched" ]] || die "dockerd of $(node_name "$k") wrote another pid than it has"
  say "$(node_name "$k"): dockerd $launched on unix://$d/docker.sock"
}

# What a dockerd that died without stopping (SIGKILL, the OOM killer) leaves in its exec root for the next one. Its
# containerd dies with it (dockerd gives it a parent-death signal), but its pid file stays: dockerd reads it at start
# and takes any process of that pid for its containerd still running (kill -0; a zombie too: this machine's init
# reaps orphans about 1.7 s late, so right after the kill it is containerd's own zombie; later any process may have
# that pid), then waits for a containerd socket nobody serves and exits: "timeout waiting for containerd to start".
# So a containerd of this exec root that still runs is stopped, one still exiting waited for (both bounded), and the
# files of one that no longer runs removed; the containers' shims keep running, and the new containerd takes them over.
clear_stale_containerd() {
  local k="$1" c pid
  c="$(node_dir "$k")/exec/containerd"
  [[ -e "$c/containerd.pid" ]] || return 0
  pid="$(head -c 16 "$c/containerd.pid" 2>/dev/null || true)"
  if alive "$pid"; then
    if { tr '\0' '\n' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -Fxq "$c/containerd.toml"; then
      say "$(node_name "$k"): containerd $pid outlived its dockerd: $(stop_pid "$pid" "$dockerd_timeout" "$(node_name "$k")'s containerd of a dockerd that is gone")"
    elif zombie_leader "$pid"; then
      say "$(node_name "$k"): containerd $pid of its killed dockerd is still exiting: waiting for it"
      wait_gone "$pid"
    fi
    alive "$pid" && { tr '\0' '\n' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -Fxq "$c/containerd.toml" \
      && die "containerd $pid of $(node_name "$k") (config $c/containerd.toml) still runs after SIGKILL: its dockerd cannot start on it"
  fi
  say "$(node_name "$k"): its previous dockerd did not stop (killed?): removing its containerd's pid file (pid $pid, no longer its containerd) and sockets"
  rm -f "$c/containerd.pid" "$c/containerd.sock" "$c/containerd.sock.ttrpc" "$c/containerd-debug.sock"
}

# The sandbox images, from the main daemon into worker K's: each saved once into the cache (by image id, so a
# rebuilt image is saved again), loaded where the worker's daemon lacks that id.
load_images() {
  local k="$1" host image id cached
  host="$(docker_host "$k")"
  mkdir -p "$image_cache"
  for image in $images; do
    id="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null)" \
      || die "image $image is not on the main Docker daemon (images/build.sh builds it; AGENTEXEC_CLUSTER_IMAGES chooses the images)"
    [[ "$(docker -H "$host" image inspect -f '{{.Id}}' "$image" 2>/dev/null)" == "$id" ]] && continue
    cached="$image_cache/$(echo "$image" | tr '/:' '__')@${id#sha256:}.tar"
    if [[ ! -s "$cached" ]]; then
      # One saver at a time (workers start in parallel, clusters may too); saved under a temporary name and
      # renamed, so that nobody loads half a file.
      (
        flock -w 600 8 || die "another command holds $image_cache/.lock for 10 minutes"
        if [[ ! -s "$cached" ]]; then
          docker save -o "$cached.$BASHPID" "$image" || die "docker save $image failed"
          rm -f "$image_cache/$(echo "$image" | tr '/:' '__')"@*.tar
          mv "$cached.$BASHPID" "$cached"
        fi
      ) 8>"$image_cache/.lock"
    fi
    docker -H "$host" load -q -i "$cached" >/dev/null || die "loading $image into $(node_name "$k")'s dockerd failed"
  done
  say "$(node_name "$k"): images loaded ($images)"
}

containers_of() { docker -H "$(docker_host "$1")" ps -aq 2>/dev/null || true; }

# Shims of worker K's containerd that outlived it (its dockerd was killed), with their containers' processes.
kill_stray_shims() {
  local k="$1" d p id procs
  d="$(node_dir "$k")"
  for p in /proc/[0-9]*; do
    { tr '\0' '\n' < "$p/cmdline"; } 2>/dev/null | grep -Fxq "$d/exec/containerd/containerd.sock" || continue
    id="$({ tr '\0' '\n' < "$p/cmdline"; } 2>/dev/null | grep -A1 -Fx -- '-id' | tail -n1)"
    for procs in /sys/fs/cgroup/pids/docker/"$id"/cgroup.procs /sys/fs/cgroup/system.slice/docker-"$id".scope/cgroup.procs; do
      [[ -n "$id" && -f "$procs" ]] && xargs -r kill -KILL < "$procs" 2>/dev/null
    done
    kill -KILL "${p#/proc/}" 2>/dev/null || true
  done
  return 0
}

# Mounts below a directory, deepest first.
mounts_under() {
  findmnt -rn -o TARGET | awk -v d="$1" 'index($0, d "/") == 1 || $0 == d' | sort -r
}

unmount_under() {
  local m
  while read -r m; do
    [[ -n "$m" ]] && { umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "could not unmount $m"; }
  done < <(mounts_under "$1")
}

# ---- machine-readable state

json_str() {
  local s="$1"
  s="${s//\\/\\\\}"; s="${s//\"/\\\"}"; s="${s//$'\n'/\\n}"; s="${s//$'\t'/\\t}"
  printf '"%s"' "$s"
}
json_pid() { [[ -n "$1" ]] && printf '%s' "$1" || printf null; }
json_bool() { [[ -n "$1" ]] && printf true || printf false; }

# The cluster as it is now, one JSON object (also written to cluster.json). $1: the readiness detail, if known.
state_json() {
  local ready="${1:-}" k pid dpid d first=1 out
  out="$(
    printf '{"cluster":%s,"dir":%s,"schema":%s,"databaseUrl":%s,"tlsDir":%s,"auth":%s,' \
      "$(json_str "$name")" "$(json_str "$dir")" "$(json_str "$schema")" "$(json_str "$db_url")" \
      "$(json_str "$dir/tls")" "$(json_str "$auth_mode")"
    printf '"seedNode":%s,"ready":%s,' "$(json_str "pekko://agentexec@127.0.0.1:$pekko_base")" \
      "$( [[ -n "$ready" ]] && json_str "$ready" || printf null)"
    pid="$(node_pid 0)"
    printf '"gateway":{"name":"gateway","url":%s,"pid":%s,"alive":%s,"pekkoPort":%d,"httpPort":%d,"metricsPort":%d,"log":%s},' \
      "$(json_str "http://127.0.0.1:$http_base")" "$(json_pid "$pid")" "$(json_bool "$pid")" \
      "$pekko_base" "$http_base" "$metrics_base" "$(json_str "$dir/gateway/node.log")"
    printf '"workers":['
    for k in $(worker_indexes); do
      d="$(node_dir "$k")"
      pid="$(node_pid "$k")"
      dpid="$(dockerd_pid "$k")"
      (( first )) || printf ','
      first=0
      printf '{"index":%d,"name":%s,"pid":%s,"alive":%s,"pekkoPort":%d,"httpPort":%d,"metricsPort":%d,"log":%s,' \
        "$k" "$(json_str "worker-$k")" "$(json_pid "$pid")" "$(json_bool "$pid")" \
        $((pekko_base + k)) $((http_base + k)) $((metrics_base + k)) "$(json_str "$d/node.log")"
      printf '"dockerHost":%s,"dockerdPid":%s,"dockerdAlive":%s,"dockerdLog":%s,"dataRoot":%s,"execRoot":%s,"containers":%s}' \
        "$(json_str "unix://$d/docker.sock")" "$(json_pid "$dpid")" "$(json_bool "$dpid")" "$(json_str "$d/dockerd.log")" \
        "$(json_str "$d/data")" "$(json_str "$d/exec")" \
        "$( [[ -n "$dpid" ]] && containers_of "$k" | wc -l || printf null)"
    done
    printf ']}'
  )"
  [[ -d "$dir" ]] && printf '%s\n' "$out" > "$dir/cluster.json"
  printf '%s\n' "$out"
}
