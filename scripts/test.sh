#!/usr/bin/env bash
# The test command (README.md and .ci/run call this): prepares the machine (packages, dockerd,
# PostgreSQL, sandbox images), runs every module's tests against the real services, then runs
# the CLI once the way a user does.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
mvn -B verify
echo "[test] CLI smoke: bin/agentexec exec"
echo 'print("cli smoke")' | bin/agentexec exec --language python --timeout 10 - | tee /tmp/agentexec-cli-smoke.json
grep -q '"verdict" : "OK"' /tmp/agentexec-cli-smoke.json
left="$(docker ps -aq --filter label=io.agentexec.managed=true --filter status=running | wc -l)"
echo "[test] sandbox containers still running after the suite: $left"
