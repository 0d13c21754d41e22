#!/usr/bin/env bash
# Runs a benchmark program and updates docs/benchmarks.md.
#   bench/run.sh [engine|cluster|gateway|zygote|throughput|daemon|scale|rolling]     (default: engine)
# scale and rolling start their own many-daemon cluster (scripts/cluster-up.sh) and need root, like the scripts.
# Needs the machine prepared by scripts/setup.sh (dockerd, images).
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-engine}"
# package, not install: the build stays in this tree (other trees share ~/.m2)
mvn -B -q -DskipTests package -pl bench -am >&2
class="io.agentexec.bench.$(tr '[:lower:]' '[:upper:]' <<< "${which:0:1}")${which:1}Benchmark"
exec java -Xmx1g -cp "bench/target/agentexec-bench-0.1.0-SNAPSHOT.jar:bench/target/lib/*" "$class" "${@:2}"
