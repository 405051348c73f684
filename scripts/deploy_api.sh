#!/usr/bin/env bash
# Deploy (or update) the SkyMarshal API stage STAGE to AWS Lambda behind its IAM-authorized
# API Gateway, then check it:
#
#   1. prerequisites: the stage, the tools, AWS credentials (aws sso login), and a runtime
#      ARN in zappa_settings.json that is this account's, not the example
#   2. the sessions table stack (infrastructure/sessions-table.yaml)
#   3. the tests (`make test`, which packages and tests the dev package), unless
#      SKIP_TESTS=1, then the stage's package, built offline (scripts/package.py); the
#      stages' packages differ only in their baked-in zappa_settings.py (a test checks it)
#   4. `zappa deploy` or `zappa update` of the worker function (STAGE_worker: background runs,
#      its own reserved concurrency and 900 s timeout; its post callback sets its asynchronous
#      invocation's retries and event age), then of the API function, each with its own
#      zip (--zip); the API's post callback adds the unsigned health route, throttling and
#      the usage plan
#   5. DJANGO_SECRET_KEY from SSM Parameter Store into both functions' environments
#   6. the stage settings again (idempotent), the endpoint URL, an unsigned GET /health and a
#      signed POST /invoke, and a report
#
# Usage: scripts/deploy_api.sh STAGE        (STAGE: dev or prod; AWS_PROFILE selects the account)
set -euo pipefail

usage() {
    echo "usage: scripts/deploy_api.sh STAGE   (STAGE: dev or prod)" >&2
    exit 2
}

fail() {
    echo "deploy_api: $*" >&2
    exit 1
}

[[ $# -eq 1 ]] || usage
STAGE="$1"
[[ "$STAGE" == "dev" || "$STAGE" == "prod" ]] || usage

cd "$(dirname "$0")/.."
FUNCTION="skymarshal-api-$STAGE"
PACKAGE=".local/package/$FUNCTION.zip"
WORKER_STAGE="${STAGE}_worker"
WORKER_FUNCTION="skymarshal-api-$STAGE-worker"
WORKER_PACKAGE=".local/package/$WORKER_FUNCTION.zip"
TABLE_STACK="skymarshal-sessions-$STAGE"

# --- 1. prerequisites -----------------------------------------------------------------------
for tool in make python3.13 aws curl; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (see README.md, Deployment)"
done
make --quiet install >/dev/null

setting() {  # setting KEY → the stage's value in zappa_settings.json (environment first)
    .venv/bin/python - "$STAGE" "$1" <<'PY'
import json, sys
stage = json.load(open("zappa_settings.json"))[sys.argv[1]]
print(stage.get("environment_variables", {}).get(sys.argv[2], stage.get(sys.argv[2], "")))
PY
}
REGION="$(setting aws_region)"
RUNTIME_ARN="$(setting AGENTCORE_RUNTIME_ARN)"
TABLE="$(setting SESSION_TABLE_NAME)"
[[ -n "$REGION" && -n "$RUNTIME_ARN" && -n "$TABLE" ]] || fail "zappa_settings.json lacks the $STAGE stage's region, runtime ARN or table"
RUNTIME_ACCOUNT="$(cut -d: -f5 <<<"$RUNTIME_ARN")"
if [[ "$RUNTIME_ACCOUNT" == "123456789012" || "$RUNTIME_ARN" == *EXAMPLE* ]]; then
    fail "AGENTCORE_RUNTIME_ARN of $STAGE in zappa_settings.json is the example ($RUNTIME_ARN): set your runtime's ARN (and keep infrastructure/lambda-policy-$STAGE.json matching it)"
fi

export AWS_DEFAULT_REGION="$REGION"
CALLER="$(aws sts get-caller-identity --output json)" \
    || fail "no AWS credentials: run 'aws sso login --profile NAME' and export AWS_PROFILE=NAME"
ACCOUNT="$(.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["Account"])' <<<"$CALLER")"
echo "Deploying $STAGE as $(.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["Arn"])' <<<"$CALLER") in $REGION"
[[ "$RUNTIME_ACCOUNT" == "$ACCOUNT" ]] \
    || fail "the runtime ARN is in account $RUNTIME_ACCOUNT, the credentials are for $ACCOUNT"

# --- 2. the sessions table ------------------------------------------------------------------
echo "Sessions table stack $TABLE_STACK …"
aws cloudformation deploy \
    --stack-name "$TABLE_STACK" \
    --template-file infrastructure/sessions-table.yaml \
    --parameter-overrides "Stage=$STAGE" \
    --tags project=skymarshal "stage=$STAGE" \
    --no-fail-on-empty-changeset

# --- 3. tests and the package ---------------------------------------------------------------
if [[ "${SKIP_TESTS:-0}" != "1" ]]; then
    make test
fi
.venv/bin/python -m scripts.package "$STAGE" --output "$PACKAGE"
.venv/bin/python -m scripts.package "$WORKER_STAGE" --output "$WORKER_PACKAGE"

# --- 4. deploy or update that zip -----------------------------------------------------------
zappa() {
    VIRTUAL_ENV="$PWD/.venv-lambda" PATH="$PWD/.venv-lambda/bin:$PATH" .venv-lambda/bin/zappa "$@"
}
deploy_or_update() {  # deploy_or_update ZAPPA_STAGE FUNCTION ZIP
    if aws lambda get-function --function-name "$2" >/dev/null 2>&1; then
        zappa update "$1" --zip "$3"
    else
        zappa deploy "$1" --zip "$3"
    fi
}
# The worker first: the API hands background runs to it from its first request.
deploy_or_update "$WORKER_STAGE" "$WORKER_FUNCTION" "$WORKER_PACKAGE"
deploy_or_update "$STAGE" "$FUNCTION" "$PACKAGE"

# --- 5. the secret key ----------------------------------------------------------------------
.venv/bin/python -m scripts.lambda_secret "$WORKER_STAGE" --region "$REGION"
.venv/bin/python -m scripts.lambda_secret "$STAGE" --region "$REGION"

# --- 6. stage settings, then check the deployment -------------------------------------------
APPLIED="$(.venv/bin/python -m scripts.apigateway_stage "$STAGE" --region "$REGION")"
echo "$APPLIED"
URL="$(.venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["url"])' <<<"$APPLIED")"

health_status=""
for attempt in 1 2 3 4 5 6; do
    health_status="$(curl -sS -o .local/deploy-health.json -w '%{http_code}' "$URL/api/v1/health" || true)"
    [[ "$health_status" == "200" ]] && break
    echo "GET /api/v1/health: $health_status (attempt $attempt); retrying in 10 s"
    sleep 10
done

invoke_status="$(.venv/bin/python -m scripts.signed_request POST "$URL/api/v1/invoke" \
    --region "$REGION" --output .local/deploy-invoke.json \
    --data '{"prompt": "Flight UA45 delayed 90 minutes at ORD due to weather, 180 passengers"}' \
    || true)"

echo
echo "SkyMarshal API $STAGE"
echo "  URL                $URL"
echo "  function           $FUNCTION ($REGION, account $ACCOUNT)"
echo "  worker             $WORKER_FUNCTION"
echo "  table              $TABLE (stack $TABLE_STACK)"
echo "  GET  /api/v1/health (unsigned)  $health_status"
echo "  POST /api/v1/invoke (signed)    $invoke_status"
echo "  logs               .venv-lambda/bin/zappa tail $STAGE"
[[ "$health_status" == "200" && "$invoke_status" == "200" ]] || fail "the deployed API did not answer as expected"
