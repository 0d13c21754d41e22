#!/usr/bin/env bash
# Builds agentexec's images from Debian's packages, without any Docker registry:
# debootstrap a minimal root filesystem, strip it, and `docker import` it.
#
#   images/build.sh [--force] [python|node|shell|datascience|polyglot|agentexec-node|dind ...]
#
# With no name: the sandbox images (python, node = Node.js, shell, datascience, polyglot), as setup.sh builds them.
# agentexec-node: the agentexec node itself, agentexec/node:<maven version> (images/node.sh; needs the assembly,
# mvn -pl modules/node -am -DskipTests package). dind: the Docker daemon of a worker pod, agentexec/dind:<version>.
# ("node" stays the Node.js sandbox image, agentexec/node:bookworm, as before.)
#
# An image that already exists, built from the same package list, is skipped unless --force is given. Environment overrides:
#   AGENTEXEC_DEBIAN_SUITE (bookworm), AGENTEXEC_DEBIAN_MIRROR (the mirror apt already uses),
#   AGENTEXEC_IMAGE_PREFIX (agentexec), AGENTEXEC_IMAGE_CACHE (/var/cache/agentexec/debootstrap);
#   for agentexec-node and dind, see images/node.sh.
set -euo pipefail

suite="${AGENTEXEC_DEBIAN_SUITE:-bookworm}"
prefix="${AGENTEXEC_IMAGE_PREFIX:-agentexec}"
cache="${AGENTEXEC_IMAGE_CACHE:-/var/cache/agentexec/debootstrap}"
mirror="${AGENTEXEC_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror="$(grep -hoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
fi

force=0
wanted=()
deployables=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    python|node|shell|datascience|polyglot) wanted+=("$arg") ;;
    agentexec-node|dind) deployables+=("$arg") ;;
    *) echo "build.sh: unknown image '$arg' (python, node, shell, datascience, polyglot, agentexec-node, dind)" >&2; exit 2 ;;
  esac
done
if [[ ${#deployables[@]} -gt 0 ]]; then
  # The node and dind images have their own recipe (a base layer from debootstrap, then agentexec's files).
  [[ ${#wanted[@]} -gt 0 ]] && "$0" $([[ $force -eq 1 ]] && echo --force) "${wanted[@]}"
  exec "$(dirname "$0")/node.sh" $([[ $force -eq 1 ]] && echo --force) "${deployables[@]}"
fi
[[ ${#wanted[@]} -eq 0 ]] && wanted=(python node shell datascience polyglot)

packages_for() {
  case "$1" in
    python) echo "python3,bash,coreutils" ;;
    node) echo "nodejs,bash,coreutils" ;;
    shell) echo "bash,coreutils,findutils,grep,sed,gawk,tar,gzip" ;;
    datascience) echo "python3,python3-numpy,python3-pandas,python3-matplotlib,bash,coreutils" ;;
    # Every language of an AG2 chat in one image, so that its python, bash and node blocks share one workspace.
    polyglot) echo "python3,nodejs,bash,coreutils" ;;
  esac
}

command -v debootstrap >/dev/null || { echo "build.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
command -v docker >/dev/null || { echo "build.sh: docker is missing (apt-get install docker.io)" >&2; exit 1; }
mkdir -p "$cache"

for name in "${wanted[@]}"; do
  image="$prefix/$name:$suite"
  # An image is reused only if it was built from the same package list (the recipe changes with this script).
  have="$(docker image inspect -f '{{index .Config.Labels "io.agentexec.packages"}}' "$image" 2>/dev/null || true)"
  if [[ $force -eq 0 && "$have" == "$(packages_for "$name")" ]]; then
    echo "[images] $image exists, skipped (use --force to rebuild)"
    continue
  fi
  rootfs="$(mktemp -d /tmp/agentexec-rootfs-$name.XXXXXX)"
  trap 'rm -rf "$rootfs"' EXIT
  started=$(date +%s)
  echo "[images] $image: debootstrap $suite ($(packages_for "$name")) from $mirror"
  debootstrap --variant=minbase --cache-dir="$cache" --include="$(packages_for "$name")" \
    "$suite" "$rootfs" "$mirror" > "/tmp/agentexec-debootstrap-$name.log" 2>&1 || {
      echo "[images] debootstrap failed; last lines of /tmp/agentexec-debootstrap-$name.log:" >&2
      tail -n 20 "/tmp/agentexec-debootstrap-$name.log" >&2; exit 1; }
  echo "[images] $image: stripping documentation and apt caches"
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
         "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} + 2>/dev/null || true
  # Matplotlib needs a writable config dir; the sandbox's HOME is its workspace, so point it at /tmp.
  echo "[images] $image: docker import"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV MPLCONFIGDIR=/tmp' \
    --change 'CMD ["/bin/bash"]' \
    --change "LABEL io.agentexec.image=$name io.agentexec.suite=$suite io.agentexec.packages=$(packages_for "$name")" \
    - "$image" >/dev/null
  rm -rf "$rootfs"; trap - EXIT
  echo "[images] $image: built in $(( $(date +%s) - started )) s, $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')"
done
