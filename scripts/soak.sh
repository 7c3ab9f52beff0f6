#!/usr/bin/env bash
# Soak run (`make soak`, issue 15 point 4): starts the local run (`make run`, i.e.
# scripts/run-local.sh) on a free port in its own session, waits for /health, runs the soak driver
# scripts/soak.py with the moto venv's Python (.local/py, which run-local installs) for
# SOAK_MINUTES (default 10, fractions allowed) with SOAK_CLIENTS (default 4) concurrent clients,
# then stops the run with SIGTERM and checks that the API, DynamoDB Local, moto and OpenBao have stopped.
# The exit code is the soak's verdict: 0 only if every check of soak.py passed and the run
# stopped cleanly. Logs: .local/logs/soak-run.log (the run), .local/logs/soak-summary.md (the
# summary table and the checks, markdown).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
need curl "install curl"
need pgrep "install procps"
export SOAK_MINUTES="${SOAK_MINUTES:-10}" SOAK_CLIENTS="${SOAK_CLIENTS:-4}"
# Building vmctl can take long when another build holds cargo's lock: wait for it.
START_TIMEOUT="${SOAK_START_TIMEOUT_SECONDS:-2400}"
PORT="$(free_port)"
export PORT
OUT="$LOCAL/logs/soak-run.log"
mkdir -p "$LOCAL/logs"
log "soak: ${SOAK_MINUTES} min, ${SOAK_CLIENTS} clients; starting the local run on port $PORT (log: .local/logs/soak-run.log)"
setsid bash scripts/run-local.sh >"$OUT" 2>&1 &
RUN_PID=$!
DRIVER_PID=""
cleanup() {
  if [ -n "$DRIVER_PID" ]; then kill -TERM "$DRIVER_PID" 2>/dev/null || true; fi
  kill -TERM -- "-$RUN_PID" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 "$START_TIMEOUT"); do
  if curl -fs -o /dev/null "$base/health"; then break; fi
  if ! kill -0 "$RUN_PID" 2>/dev/null; then log "the local run exited early:"; tail -n 40 "$OUT"; exit 1; fi
  sleep 1
done
curl -fs -o /dev/null "$base/health" || { log "the local server never answered on $base"; tail -n 40 "$OUT"; exit 1; }
# The token this run printed (the line after "demo token for user ..."); .local/demo-token may
# belong to another run started at the same time.
TOKEN="$(sed -n '/^demo token for user/{n;p;q}' "$OUT")"
[ -n "$TOKEN" ] || { log "the run printed no demo token"; exit 1; }
ADMIN_KEY="$(sed -n '/^admin key (send as/{n;p;q}' "$OUT")"
[ -n "$ADMIN_KEY" ] || { log "the run printed no admin key"; exit 1; }
DDB_URL="$(sed -n 's/.*DynamoDB Local on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$OUT" | head -n 1)"
moto_port=$(sed -n 's/.*moto (Secrets Manager, EC2, CloudFormation) on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$OUT" | head -n 1)
vault_port=$(sed -n 's/.*Vault: VAULT_ADDR=http:\/\/127.0.0.1:\([0-9]*\) .*/\1/p' "$OUT" | head -n 1)
[ -n "$DDB_URL" ] || { log "the run did not print its DynamoDB Local endpoint"; exit 1; }
[ -n "$moto_port" ] || { log "the run did not print its moto endpoint"; exit 1; }
VMCTL_PID="$(pgrep -f "vmctl dev --port $PORT" | head -n 1 || true)"
[ -n "$VMCTL_PID" ] || { log "no 'vmctl dev --port $PORT' process found"; exit 1; }
log "soak: API $base (vmctl dev pid $VMCTL_PID), DynamoDB Local $DDB_URL"
set +e
SOAK_BASE_URL="$base" SOAK_TOKEN="$TOKEN" SOAK_ADMIN_KEY="$ADMIN_KEY" SOAK_RUN_LOG="$OUT" SOAK_VMCTL_PID="$VMCTL_PID" \
  AWS_ENDPOINT_URL_DYNAMODB="$DDB_URL" TABLE_NAME="${TABLE_NAME:-vm-api}" \
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  "$LOCAL/py/bin/python" scripts/soak.py &
DRIVER_PID=$!
wait "$DRIVER_PID"
verdict=$?
DRIVER_PID=""
set -e
# Stop the run as a user would (SIGTERM), and check that everything it started has stopped.
kill -TERM "$RUN_PID" 2>/dev/null || true
for _ in $(seq 1 200); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
trap - EXIT
stopped=1
if kill -0 "$RUN_PID" 2>/dev/null; then
  log "FAIL: the local run ignored SIGTERM for 20 s"; stopped=0
  kill -TERM -- "-$RUN_PID" 2>/dev/null || true
fi
sleep 1
if kill -0 "$VMCTL_PID" 2>/dev/null; then log "FAIL: vmctl dev (pid $VMCTL_PID) still runs after SIGTERM"; stopped=0; fi
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then log "FAIL: the API still listens after SIGTERM"; stopped=0; fi
ddb_port="${DDB_URL##*:}"
if (exec 3<>"/dev/tcp/127.0.0.1/$ddb_port") 2>/dev/null; then log "FAIL: DynamoDB Local still runs after SIGTERM"; stopped=0; fi
if [ -n "$moto_port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null; then
  log "FAIL: moto still runs after SIGTERM"; stopped=0
fi
if [ -n "$vault_port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$vault_port") 2>/dev/null; then
  log "FAIL: OpenBao still runs after SIGTERM"; stopped=0
fi
if [ "$stopped" = 1 ]; then log "soak: the local run stopped cleanly on SIGTERM"; fi
if [ "$verdict" = 0 ] && [ "$stopped" = 1 ]; then
  log "soak PASSED (summary: .local/logs/soak-summary.md)"
  exit 0
fi
log "soak FAILED (driver exit $verdict; summary: .local/logs/soak-summary.md; run log: .local/logs/soak-run.log)"
[ "$verdict" = 0 ] && exit 1
exit "$verdict"
