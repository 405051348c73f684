#!/usr/bin/env bash
# The test suite (`make test`: lint, types, security, the offline dev package and every
# test); with a URL, then the integration tests against that deployed stage, signed with
# your AWS credentials (AWS_PROFILE after `aws sso login`).
#
# Usage: scripts/test_api.sh [URL]    e.g. https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/dev
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -gt 1 ]]; then
    echo "usage: scripts/test_api.sh [URL]" >&2
    exit 2
fi
URL="${1:-}"
if [[ -n "$URL" && ! "$URL" =~ ^https://[^/]+/[A-Za-z0-9_-]+/?$ ]]; then
    echo "test_api: URL must be a stage's https URL, e.g. https://ID.execute-api.REGION.amazonaws.com/dev" >&2
    exit 2
fi
make test
if [[ -n "$URL" ]]; then
    SKYMARSHAL_ENV=test SKYMARSHAL_API_URL="${URL%/}" \
        .venv/bin/python -m pytest tests/integration -m deployed -q
fi
