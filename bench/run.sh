#!/usr/bin/env bash
# Runs a benchmark program and updates docs/benchmarks.md.
#   bench/run.sh [engine|cluster|gateway|zygote|scale]     (default: engine)
# scale starts its own many-daemon cluster (scripts/cluster-up.sh) and needs root, like the scripts.
# Needs the machine prepared by scripts/setup.sh (dockerd, images).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-engine}"
mvn -B -q -DskipTests install -pl bench -am >&2
class="io.agentexec.bench.$(tr '[:lower:]' '[:upper:]' <<< "${which:0:1}")${which:1}Benchmark"
exec java -Xmx1g -cp "bench/target/agentexec-bench-0.1.0-SNAPSHOT.jar:bench/target/lib/*" "$class" "${@:2}"
