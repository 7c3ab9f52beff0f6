#!/usr/bin/env bash
# The local run (`make run`): installs and starts DynamoDB Local and moto, creates the table,
# loads the demo data, prints a demo token and serves every endpoint on 127.0.0.1:${PORT:-3000}.
# VM logins go to Secrets Manager on moto, or to Vault when VAULT_ADDR is set (with
# VAULT_TOKEN). The provisioner runs from DynamoDB Local's stream: Kraud.Cloud and Azure on the
# simulated cloud, AWS on moto's EC2. Ctrl-C or SIGTERM stops everything it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
need cargo "install Rust (rustup)"
ensure_dynamodb_local
ensure_moto
use_local_aws_env
trap stop_started EXIT
trap 'exit 130' INT TERM
log "building vmctl"
cargo build --locked --quiet -p vmctl
start_dynamodb_local
start_moto
if [ -n "${VAULT_ADDR:-}" ]; then
  export SECRET_BACKEND=vault
else
  export SECRET_BACKEND=secretsmanager
fi
# Kraud.Cloud and Azure are simulated locally; AWS is driven for real, against moto's EC2.
export KRAUD_DRIVER="${KRAUD_DRIVER:-simulated}" AZURE_DRIVER="${AZURE_DRIVER:-simulated}"
export PROVISIONER_POLL_BUDGET_SECONDS="${PROVISIONER_POLL_BUDGET_SECONDS:-5}" CLEANUP_INTERVAL_SECONDS="${CLEANUP_INTERVAL_SECONDS:-30}"
export PROVISIONER_POLL_INTERVAL_SECONDS="${PROVISIONER_POLL_INTERVAL_SECONDS:-1}"
"$ROOT/target/debug/vmctl" dev --port "${PORT:-3000}" &
STARTED_PIDS+=("$!")
wait "${STARTED_PIDS[-1]}"
