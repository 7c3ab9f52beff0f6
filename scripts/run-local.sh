#!/usr/bin/env bash
# The local run (`make run`): installs and starts DynamoDB Local, moto and OpenBao (Vault), creates
# the table, loads the demo data, prints a demo token and serves every endpoint on
# 127.0.0.1:${PORT:-3000}. VM logins go to Vault, as on the platform: the local OpenBao (its
# address and root token are printed; logins at enclaive-static/data/{teamId}/user/root), or the
# Vault named by VAULT_ADDR and VAULT_TOKEN; SECRET_BACKEND=secretsmanager keeps them in Secrets
# Manager on moto instead. The provisioner runs from DynamoDB Local's stream: Kraud.Cloud and Azure on the
# simulated cloud, AWS on moto's EC2. Ctrl-C or SIGTERM stops everything it started.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
need cargo "install Rust (rustup)"
ensure_dynamodb_local
ensure_moto
ensure_openbao
use_local_aws_env
trap stop_started EXIT
trap 'exit 130' INT TERM
log "building vmctl"
cargo build --locked --quiet -p vmctl
start_dynamodb_local
start_moto
export SECRET_BACKEND="${SECRET_BACKEND:-vault}"
if [ "$SECRET_BACKEND" = vault ] && [ -z "${VAULT_ADDR:-}" ]; then
  start_openbao
  export VAULT_ADDR="$VMAPI_VAULT_ADDR" VAULT_TOKEN="$VMAPI_VAULT_TOKEN"
  # For `sam local` by hand (docs/local-run.md): events/env.json's {{VAULT_TOKEN}}.
  printf '%s' "$VAULT_TOKEN" >"$LOCAL/vault-token"
  # A dev server's root token, local to this machine and gone when the run stops.
  log "Vault: VAULT_ADDR=$VAULT_ADDR VAULT_TOKEN=$VAULT_TOKEN (read a login: curl -H \"X-Vault-Token: \$VAULT_TOKEN\" \$VAULT_ADDR/v1/enclaive-static/data/{teamId}/user/root?version=0)"
fi
log "VM logins go to ${SECRET_BACKEND}${VAULT_ADDR:+ at $VAULT_ADDR}"
# Kraud.Cloud and Azure are simulated locally; AWS is driven for real, against moto's EC2.
export KRAUD_DRIVER="${KRAUD_DRIVER:-simulated}" AZURE_DRIVER="${AZURE_DRIVER:-simulated}"
export PROVISIONER_POLL_BUDGET_SECONDS="${PROVISIONER_POLL_BUDGET_SECONDS:-5}" CLEANUP_INTERVAL_SECONDS="${CLEANUP_INTERVAL_SECONDS:-30}"
export PROVISIONER_POLL_INTERVAL_SECONDS="${PROVISIONER_POLL_INTERVAL_SECONDS:-1}"
"$TARGET/debug/vmctl" dev --port "${PORT:-3000}" &
STARTED_PIDS+=("$!")
wait "${STARTED_PIDS[-1]}"
