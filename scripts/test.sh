#!/usr/bin/env bash
# The test command (`make test`): installs and starts DynamoDB Local, moto and OpenBao (Vault),
# installs the API description validator of the driver contract tests (ensure_spec_validator), lints
# template.yaml (cfn-lint, sam validate --lint), runs every unit and integration test against the
# local services, then the generated-client test (scripts/openapi-client.sh: a Python client
# generated from openapi.json drives a VM through the local server), then stops them. Extra
# arguments go to `cargo test` (and skip the client test, so a filtered run stays filtered).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
need cargo "install Rust (rustup)"
ensure_dynamodb_local
ensure_moto
ensure_openbao
ensure_spec_validator
ensure_template_tools
[ "$#" -gt 0 ] || ensure_openapi_client
use_local_aws_env
trap stop_started EXIT
trap 'exit 130' INT TERM
start_dynamodb_local
start_moto
start_openbao
template_status=0
check_template || template_status=$?
# One shared DynamoDB Local serves every test at once; on a busy 2-core machine an attempt can
# take longer than the production 4 s, which is not what these tests are about.
export SDK_ATTEMPT_TIMEOUT_SECONDS="${SDK_ATTEMPT_TIMEOUT_SECONDS:-20}"
export SDK_OPERATION_TIMEOUT_SECONDS="${SDK_OPERATION_TIMEOUT_SECONDS:-60}"
log "running cargo test"
mkdir -p "$LOCAL/logs"
set +e
cargo test --workspace --locked "$@" 2>&1 | tee "$LOCAL/logs/cargo-test.log"
status=${PIPESTATUS[0]}
: >"$LOCAL/logs/openapi-client.log"
if [ "$#" -eq 0 ]; then
  log "running the generated-client test (scripts/openapi-client.sh)"
  bash scripts/openapi-client.sh 2>&1 | tee "$LOCAL/logs/openapi-client.log"
  client_status=${PIPESTATUS[0]}
  if [ "$client_status" -ne 0 ]; then
    # Counted as a failure even when it stopped before its own summary line.
    grep -q '^test result:' "$LOCAL/logs/openapi-client.log" ||
      echo "test result: FAILED. 0 passed; 1 failed;" >>"$LOCAL/logs/openapi-client.log"
    [ "$status" -ne 0 ] || status=$client_status
  fi
fi
set -e
# One closing line over every test binary (cargo prints one summary per binary) and the client test.
awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
     END { printf "%d passed, %d failed\n", p, f }' "$LOCAL/logs/cargo-test.log" "$LOCAL/logs/openapi-client.log"
if [ "$template_status" -ne 0 ]; then
  log "template checks failed (cfn-lint / sam validate --lint)"
  [ "$status" -ne 0 ] || status=$template_status
fi
exit "$status"
