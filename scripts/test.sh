#!/usr/bin/env bash
# The test command (`make test`): installs and starts DynamoDB Local, runs every unit and
# integration test against it, then stops it. Extra arguments go to `cargo test`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
need cargo "install Rust (rustup)"
ensure_dynamodb_local
use_local_aws_env
trap stop_started EXIT
trap 'exit 130' INT TERM
start_dynamodb_local
log "running cargo test"
cargo test --workspace --locked "$@"
