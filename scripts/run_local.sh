#!/usr/bin/env bash
# The whole stack on this machine, no AWS account needed: the same as `make run`
# (DynamoDB Local, the local SkyMarshal runtime and the API; Ctrl-C stops everything).
# Arguments go to scripts/run_local.py, e.g. scripts/run_local.sh --api-port 8100 --in-memory
set -euo pipefail
cd "$(dirname "$0")/.."
exec make run RUN_ARGS="$*"
