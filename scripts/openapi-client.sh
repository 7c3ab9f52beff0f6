#!/usr/bin/env bash
# The generated-client test (run by `make test`; alone: `bash scripts/openapi-client.sh`):
# generates a Python client from openapi.json with openapi-generator (pinned, installed into
# .local/openapi-client), installs it into a temporary folder, serves the API with the demo data
# (`vmctl dev`, as `make run` does, on a free port, with a table, token and stream checkpoint of
# its own) and drives one VM through the client: create, get, list, stop, delete
# (scripts/openapi_client_test.py). Uses the test command's DynamoDB Local and moto when
# AWS_ENDPOINT_URL_DYNAMODB is set, else starts its own. Stops what it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
need cargo "install Rust (rustup)"
ensure_openapi_client
use_local_aws_env
WORK="$(mktemp -d)"
finish() { stop_started; rm -rf "$WORK"; }
trap finish EXIT
trap 'exit 130' INT TERM
if [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ] || [ -z "${AWS_ENDPOINT_URL_SECRETS_MANAGER:-}" ]; then
  ensure_dynamodb_local
  ensure_moto
  start_dynamodb_local
  start_moto
fi
started=$EPOCHREALTIME
cargo build --locked --quiet -p vmctl
log "generating the Python client from openapi.json (openapi-generator)"
VENV="$LOCAL/openapi-client"
if ! "$VENV/bin/openapi-generator-cli" generate -g python -i openapi.json -o "$WORK/client" \
  --package-name vmapi_client >"$WORK/generate.log" 2>&1; then
  cat "$WORK/generate.log"; log "openapi-generator failed on openapi.json"; exit 1
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps --no-index \
  --no-build-isolation --target "$WORK/site" "$WORK/client"
log "starting the local server (vmctl dev, demo data)"
port="$(free_port)"
SECRET_BACKEND=secretsmanager KRAUD_DRIVER=simulated AZURE_DRIVER=simulated \
  PROVISIONER_POLL_BUDGET_SECONDS=5 PROVISIONER_POLL_INTERVAL_SECONDS=1 CLEANUP_INTERVAL_SECONDS=30 \
  "$TARGET/debug/vmctl" --table "openapi-client-$$-$RANDOM" dev --port "$port" \
  --token-file "$WORK/token" --checkpoint-file "$WORK/stream.json" --failure-file "$WORK/failures.jsonl" \
  >"$WORK/server.log" 2>&1 &
STARTED_PIDS+=("$!")
if ! wait_for_port "$port" 60; then cat "$WORK/server.log"; log "the local server did not start"; exit 1; fi
set +e
PYTHONPATH="$WORK/site" "$VENV/bin/python" scripts/openapi_client_test.py "http://127.0.0.1:$port" \
  "$(cat "$WORK/token")" "$WORK/site/vmapi_client/models"
status=$?
set -e
[ "$status" -eq 0 ] || { log "the generated client's test failed; the server's log:"; cat "$WORK/server.log"; }
log "generated-client test: exit $status after $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s (build check, generate, install, serve, drive)"
exit "$status"
