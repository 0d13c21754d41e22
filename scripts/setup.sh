#!/usr/bin/env bash
# Prepares a fresh Debian machine (as root) for agentexec's tests and its main job:
# installs what is missing, starts dockerd and PostgreSQL, builds the sandbox images.
# Idempotent: what is already there is reused. Environment overrides:
#   AGENTEXEC_PG_USER / AGENTEXEC_PG_PASSWORD / AGENTEXEC_PG_DB (agentexec / agentexec / agentexec)
#   AGENTEXEC_SKIP_IMAGES=1 to skip building images, AGENTEXEC_SKIP_POSTGRES=1 to skip PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "[setup] $*"; }

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[[ -f /usr/lib/x86_64-linux-gnu/libc.a ]] || need+=(libc6-dev)
if [[ "${AGENTEXEC_SKIP_POSTGRES:-0}" != 1 ]]; then
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
fi
command -v runsc >/dev/null || need+=(runsc)
command -v mvn >/dev/null || need+=(maven)
command -v python3 >/dev/null || need+=(python3)
[[ -x /usr/bin/python3 ]] || need+=(python3)
command -v node >/dev/null || need+=(nodejs)
# kubectl renders the Kubernetes overlays in the tests (`kubectl kustomize`). Debian's kubernetes-client is 1.20
# (kustomize v2.0.3), and the manifests are written for it and later; a kubectl already installed (another package
# owning /usr/bin/kubectl) is used as it is. The node image itself is built by the tests (images/build.sh
# agentexec-node), after Maven has built the node's assembly.
command -v kubectl >/dev/null || need+=(kubernetes-client)
if [[ ${#need[@]} -gt 0 ]]; then
  say "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q "${need[@]}" >/dev/null
fi

# gVisor (runsc) as an optional Docker runtime: agentexec uses it with AGENTEXEC_DOCKER_RUNTIME=runsc.
# --network=none: sandboxes have no network, and gVisor refuses to start without its own network otherwise.
python3 - <<'PY'
import json, os
path = "/etc/docker/daemon.json"
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) > 0 else {}
wanted = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"]}
if config.get("runtimes", {}).get("runsc") != wanted:
    config.setdefault("runtimes", {})["runsc"] = wanted
    os.makedirs("/etc/docker", exist_ok=True)
    json.dump(config, open(path, "w"), indent=2)
    print("[setup] registered gVisor (runsc) as a Docker runtime in " + path)
PY
# The runtimes are read into a variable first: with pipefail, `docker info | grep -q` fails whenever grep stops
# reading early (docker info then dies of SIGPIPE), and the check reported runsc missing while dockerd listed it.
dockerd_runtimes() { docker info --format '{{range $name, $_ := .Runtimes}}{{$name}} {{end}}' 2>/dev/null || true; }
if pidof dockerd >/dev/null && [[ " $(dockerd_runtimes) " != *" runsc "* ]]; then
  kill -HUP "$(pidof dockerd)"   # dockerd reloads its runtimes on SIGHUP
  sleep 1
fi

if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: /var/log/dockerd.log)"
  (setsid dockerd >/var/log/dockerd.log 2>&1 &)
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "[setup] dockerd did not start; see /var/log/dockerd.log" >&2; exit 1; }
fi
say "docker $(docker version -f '{{.Server.Version}}') is up"

if [[ "${AGENTEXEC_SKIP_POSTGRES:-0}" != 1 ]]; then
  pg_user="${AGENTEXEC_PG_USER:-agentexec}"
  pg_pass="${AGENTEXEC_PG_PASSWORD:-agentexec}"
  pg_db="${AGENTEXEC_PG_DB:-agentexec}"
  if ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
    say "starting PostgreSQL"
    version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
    if ! pg_lsclusters -h 2>/dev/null | grep -q .; then
      pg_createcluster "$version" main >/dev/null
    fi
    pg_ctlcluster "$version" main start || true
    for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 && break; sleep 0.5; done
    pg_isready -q -h 127.0.0.1 || { echo "[setup] PostgreSQL did not start" >&2; exit 1; }
  fi
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='$pg_user'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE $pg_user LOGIN PASSWORD '$pg_pass'\""
  su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='$pg_db'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE DATABASE $pg_db OWNER $pg_user\""
  say "PostgreSQL is up (database $pg_db, user $pg_user on 127.0.0.1:5432)"
fi

if [[ "${AGENTEXEC_SKIP_IMAGES:-0}" != 1 ]]; then
  images/build.sh
fi

# Whether gVisor works on this machine, by the check the engine runs at start (it refuses runsc when it fails):
# `ls /proc` works and a handful of processes start one after the other, within a generous bound (not a speed test).
check_runsc() {
  local image="" name="agentexec-setup-runsc-check-$$" out status
  for candidate in agentexec/python:bookworm agentexec/shell:bookworm; do
    docker image inspect "$candidate" >/dev/null 2>&1 && { image="$candidate"; break; }
  done
  if [[ " $(dockerd_runtimes) " != *" runsc "* ]]; then
    say "gVisor (runsc): NOT usable: dockerd does not list runsc among its runtimes"
    return 0
  fi
  if [[ -z "$image" ]]; then
    say "gVisor (runsc): not checked: no sandbox image yet (images/build.sh)"
    return 0
  fi
  status=0
  out="$(timeout 120 docker run --rm --name "$name" --runtime runsc --network none --log-driver none \
      --user 65534:65534 --entrypoint sh "$image" -c \
      'ls /proc > /dev/null && i=0 && while [ $i -lt 16 ]; do ls /proc > /dev/null || exit 1; i=$((i+1)); done' 2>&1)" \
    || status=$?
  docker rm -f "$name" >/dev/null 2>&1 || true
  if [[ $status == 0 ]]; then
    say "gVisor (runsc): healthy"
  elif [[ $status == 124 ]]; then
    say "gVisor (runsc): NOT healthy: its check did not finish within 120 s; agentexec refuses runsc here"
  else
    say "gVisor (runsc): NOT healthy: $(head -n1 <<<"$out") (exit $status); agentexec refuses runsc here"
  fi
}
check_runsc
say "done"
