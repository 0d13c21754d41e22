#!/usr/bin/env bash
# Builds the images that run agentexec on Kubernetes, from Debian's packages and without any registry
# (images/build.sh agentexec-node|dind calls this):
#
#   images/node.sh [--force] [agentexec-node] [dind]
#
# agentexec-node -> agentexec/node:<version>: a JRE 17 (openjdk-17-jre-headless), tini as pid 1, the node assembly
#   (modules/node/target/*.jar and target/lib), the entry script `agentexec` (serve, exec, chat, ..., as
#   io.agentexec.node.AgentexecMain offers, plus load-images), user agentexec (uid 10001), -XX:MaxRAMPercentage instead
#   of a fixed heap, and the sandbox images as `docker save` tarballs under /opt/agentexec/images (a worker pod's init
#   step loads them into its Docker daemon: agentexec load-images).
# dind -> agentexec/dind:<version>: a Docker daemon (Debian docker.io, runsc registered as a runtime) for the worker
#   pod's privileged sidecar, its socket on a volume shared with the worker.
#
# <version> is the Maven project version (pom.xml); the git commit is the label io.agentexec.commit. Each image is
# built on a base image from debootstrap (agentexec/node-base, agentexec/dind-base), reused while its package list is
# the same; the node image is rebuilt when the assembly or the sandbox images changed (label io.agentexec.content).
# Environment overrides (besides those of images/build.sh):
#   AGENTEXEC_NODE_VERSION (the pom's version)      the tag of both images
#   AGENTEXEC_NODE_SANDBOX_IMAGES ("python shell node polyglot")  sandbox images baked into the node image
#                                                   (images/build.sh names; polyglot is the Python client's default
#                                                   image; datascience is 1.2 GB, add it only if workers need it)
#   AGENTEXEC_NODE_UID (10001)                      uid and gid of the node's user
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
cd "$(dirname "$0")/.."

suite="${AGENTEXEC_DEBIAN_SUITE:-bookworm}"
prefix="${AGENTEXEC_IMAGE_PREFIX:-agentexec}"
cache="${AGENTEXEC_IMAGE_CACHE:-/var/cache/agentexec/debootstrap}"
mirror="${AGENTEXEC_DEBIAN_MIRROR:-}"
if [[ -z "$mirror" ]]; then
  mirror="$(grep -hoE 'https?://[^ ]+/debian/?$' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -n1 || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
fi
uid="${AGENTEXEC_NODE_UID:-10001}"
sandboxes="${AGENTEXEC_NODE_SANDBOX_IMAGES:-python shell node polyglot}"
# The project version: the first <version> of the parent pom (the one right after its artifactId).
version="${AGENTEXEC_NODE_VERSION:-$(sed -n '/<artifactId>agentexec-parent<\/artifactId>/{n;s/.*<version>\(.*\)<\/version>.*/\1/p;q}' pom.xml)}"
[[ -n "$version" ]] || { echo "node.sh: cannot read the project version from pom.xml" >&2; exit 1; }
commit="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
if [[ "$commit" != unknown ]] && ! git diff --quiet HEAD -- modules pom.xml 2>/dev/null; then commit="$commit-dirty"; fi

force=0
wanted=()
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,25p' "$self"; exit 0 ;;
    agentexec-node|dind) wanted+=("$arg") ;;
    *) echo "node.sh: unknown image '$arg' (agentexec-node, dind)" >&2; exit 2 ;;
  esac
done
[[ ${#wanted[@]} -eq 0 ]] && wanted=(agentexec-node)

command -v debootstrap >/dev/null || { echo "node.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
command -v docker >/dev/null || { echo "node.sh: docker is missing (apt-get install docker.io)" >&2; exit 1; }
mkdir -p "$cache"
say() { echo "[images] $*"; }

# Packages of each base image. curl: the node's image loader talks to the Docker API over its socket.
node_packages="openjdk-17-jre-headless,tini,curl,ca-certificates"
dind_packages="docker.io,tini,runsc,iptables,procps,ca-certificates"

# Removes the image $1 replaced (id $2) when nothing names it any more: each build makes a new image, and without this
# every rebuild (a CI run, a new jar) would leave ~800 MB behind. An image a container still uses stays.
drop_replaced() {
  local image="$1" old="$2"
  [[ -n "$old" && "$old" != "$(docker image inspect -f '{{.Id}}' "$image")" ]] || return 0
  [[ "$(docker image inspect -f '{{len .RepoTags}}' "$old" 2>/dev/null || echo 1)" == 0 ]] || return 0
  docker rmi "$old" >/dev/null 2>&1 || true
}

# Builds (once) a base image from debootstrap: $1 name, $2 packages, $3 a function preparing the root filesystem.
base_image() {
  local name="$1" packages="$2" prepare="$3"
  # The tag names the recipe: a change of packages, uid or preparation gives another base image.
  local recipe; recipe="$(printf '%s\n%s\n%s\n' "$packages" "$uid" "$(declare -f "$prepare")" | sha256sum | cut -c1-12)"
  local image="$prefix/$name-base:$suite-$recipe"
  if [[ $force -eq 0 ]] && docker image inspect "$image" >/dev/null 2>&1; then
    echo "$image"; return
  fi
  local rootfs; rootfs="$(mktemp -d "/tmp/agentexec-rootfs-$name.XXXXXX")"
  local started; started=$(date +%s)
  say "$image: debootstrap $suite ($packages) from $mirror" >&2
  if ! debootstrap --variant=minbase --cache-dir="$cache" --include="$packages" \
      "$suite" "$rootfs" "$mirror" > "/tmp/agentexec-debootstrap-$name.log" 2>&1; then
    echo "[images] debootstrap failed; last lines of /tmp/agentexec-debootstrap-$name.log:" >&2
    tail -n 20 "/tmp/agentexec-debootstrap-$name.log" >&2; rm -rf "$rootfs"; exit 1
  fi
  rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
         "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  find "$rootfs"/usr/share/locale -mindepth 1 -maxdepth 1 ! -name 'C.*' -exec rm -rf {} + 2>/dev/null || true
  "$prepare" "$rootfs"
  tar -C "$rootfs" -c . | docker import \
    --change "LABEL io.agentexec.image=$name-base io.agentexec.suite=$suite io.agentexec.packages=$packages" \
    - "$image" >/dev/null
  rm -rf "$rootfs"
  say "$image: built in $(( $(date +%s) - started )) s" >&2
  echo "$image"
}

prepare_node() {
  local root="$1"
  # The node's user: no login, no password; its home is the working directory (H2 and keys of a single node).
  echo "agentexec:x:$uid:$uid:agentexec:/var/lib/agentexec:/usr/sbin/nologin" >> "$root/etc/passwd"
  echo "agentexec:x:$uid:" >> "$root/etc/group"
  echo "agentexec:!:19000::::::" >> "$root/etc/shadow"
  install -d -o "$uid" -g "$uid" -m 0750 "$root/var/lib/agentexec"
}

prepare_dind() {
  local root="$1"
  # runsc (gVisor) as a runtime agentexec may select (cluster-gvisor overlay); --network=none: sandboxes have no
  # network, and gVisor refuses to start without its own network otherwise (as scripts/setup.sh does on a host).
  mkdir -p "$root/etc/docker"
  cat > "$root/etc/docker/daemon.json" <<'JSON'
{
  "runtimes": { "runsc": { "path": "/usr/bin/runsc", "runtimeArgs": ["--network=none"] } },
  "log-driver": "none"
}
JSON
}

build_node() {
  local image="$prefix/node:$version"
  local jar; jar="$(ls modules/node/target/agentexec-node-*.jar 2>/dev/null | grep -v -- '-tests\.jar$' | head -n1 || true)"
  if [[ -z "$jar" || ! -d modules/node/target/lib ]]; then
    echo "node.sh: the node assembly is missing (modules/node/target/*.jar and target/lib):" \
         "mvn -B -pl modules/node -am -DskipTests package" >&2
    exit 1
  fi
  local saved=() names=()
  for s in $sandboxes; do
    case "$s" in python|node|shell|datascience|polyglot) ;; *) echo "node.sh: unknown sandbox image '$s'" >&2; exit 2 ;; esac
    local simage="$prefix/$s:$suite"
    docker image inspect "$simage" >/dev/null 2>&1 \
      || { echo "node.sh: sandbox image $simage is missing (images/build.sh $s)" >&2; exit 1; }
    names+=("$simage $(docker image inspect -f '{{.Id}}' "$simage")")
  done
  local base; base="$(base_image node "$node_packages" prepare_node)"
  # What the image holds besides its base: the jars, the sandbox images, this script.
  local content; content="$( { echo "$base"; printf '%s\n' "${names[@]}"; sha256sum "$jar" modules/node/target/lib/*.jar \
      | sed 's|  .*/|  |'; sha256sum "$self" images/node/agentexec images/node/agentexec-load-images; } | sha256sum | cut -c1-16)"
  local have; have="$(docker image inspect -f '{{index .Config.Labels "io.agentexec.content"}}' "$image" 2>/dev/null || true)"
  if [[ $force -eq 0 && "$have" == "$content" ]]; then
    say "$image exists with the same content, skipped (use --force to rebuild)"
    return
  fi
  local started; started=$(date +%s)
  local stage; stage="$(mktemp -d /tmp/agentexec-node-stage.XXXXXX)"
  trap 'rm -rf "$stage"' RETURN
  local home="$stage/opt/agentexec"
  mkdir -p "$home/lib" "$home/bin" "$home/images"
  cp "$jar" "$home/agentexec-node.jar"
  cp modules/node/target/lib/*.jar "$home/lib/"
  for s in $sandboxes; do
    say "$image: docker save $prefix/$s:$suite"
    docker save -o "$home/images/$s.tar" "$prefix/$s:$suite"
  done
  printf '%s\n' "${names[@]}" > "$home/images/IMAGES"
  cp images/node/agentexec images/node/agentexec-load-images "$home/bin/"
  chmod 0755 "$home/bin/"*
  chmod -R a+rX,go-w "$home"
  local box="agentexec-node-build-$$" old; old="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
  docker rm -f "$box" >/dev/null 2>&1 || true
  docker create --name "$box" "$base" /bin/true >/dev/null
  docker cp "$stage/." "$box:/"
  docker commit \
    --change "USER $uid:$uid" \
    --change "WORKDIR /var/lib/agentexec" \
    --change 'ENV PATH=/opt/agentexec/bin:/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8' \
    --change 'ENTRYPOINT ["/usr/bin/tini", "--", "/opt/agentexec/bin/agentexec"]' \
    --change 'CMD ["serve"]' \
    --change 'EXPOSE 8080 8558 9464 25520' \
    --change "LABEL io.agentexec.image=node io.agentexec.version=$version io.agentexec.commit=$commit io.agentexec.content=$content org.opencontainers.image.version=$version org.opencontainers.image.revision=$commit" \
    "$box" "$image" >/dev/null
  docker rm -f "$box" >/dev/null
  drop_replaced "$image" "$old"
  say "$image: built in $(( $(date +%s) - started )) s, $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}') (commit $commit)"
}

build_dind() {
  local image="$prefix/dind:$version"
  local base; base="$(base_image dind "$dind_packages" prepare_dind)"
  local content; content="$( { echo "$base"; sha256sum images/node/agentexec-dind; } | sha256sum | cut -c1-16)"
  local have; have="$(docker image inspect -f '{{index .Config.Labels "io.agentexec.content"}}' "$image" 2>/dev/null || true)"
  if [[ $force -eq 0 && "$have" == "$content" ]]; then
    say "$image exists with the same content, skipped (use --force to rebuild)"
    return
  fi
  local box="agentexec-dind-build-$$" old; old="$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)"
  docker rm -f "$box" >/dev/null 2>&1 || true
  docker create --name "$box" "$base" /bin/true >/dev/null
  docker cp images/node/agentexec-dind "$box:/usr/local/bin/agentexec-dind"
  docker commit \
    --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'VOLUME /var/lib/docker' \
    --change 'ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/agentexec-dind"]' \
    --change "LABEL io.agentexec.image=dind io.agentexec.version=$version io.agentexec.commit=$commit io.agentexec.content=$content" \
    "$box" "$image" >/dev/null
  docker rm -f "$box" >/dev/null
  drop_replaced "$image" "$old"
  say "$image: built"
}

for name in "${wanted[@]}"; do
  case "$name" in
    agentexec-node) build_node ;;
    dind) build_dind ;;
  esac
done
