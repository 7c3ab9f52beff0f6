#!/usr/bin/env bash
# Smoke test of the local run (`make run`), as a new user would try it: start it, wait for it,
# send the API page's create request verbatim with the printed demo token (expects 201), list the
# project, read the new VM's credentials, wait until the provisioner has it running, then SIGTERM
# it and check that everything it started has stopped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
need curl "install curl"
PORT="$(free_port)"
export PORT
OUT="$LOCAL/logs/smoke-run.log"
mkdir -p "$LOCAL/logs"
rm -f "$LOCAL/demo-token"
setsid bash scripts/run-local.sh >"$OUT" 2>&1 &
RUN_PID=$!
cleanup() { kill -TERM -- "-$RUN_PID" 2>/dev/null || true; }
trap cleanup EXIT
base="http://127.0.0.1:$PORT"
for _ in $(seq 1 600); do
  if curl -fs -o /dev/null "$base/health"; then break; fi
  if ! kill -0 "$RUN_PID" 2>/dev/null; then log "make run exited early:"; cat "$OUT"; exit 1; fi
  sleep 1
done
curl -fs -o /dev/null "$base/health" || { log "the local server never answered"; cat "$OUT"; exit 1; }
grep -q "listening on http://127.0.0.1:$PORT" "$OUT" || { log "the URL was not printed"; cat "$OUT"; exit 1; }
TOKEN="$(cat "$LOCAL/demo-token")"
grep -qF "$TOKEN" "$OUT" || { log "the demo token was not printed"; exit 1; }
code=$(curl -s -o "$LOCAL/logs/smoke-create.json" -w '%{http_code}' -X POST "$base/api/virtual-machines" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data-binary @shared/models/tests/fixtures/create-request.json)
[ "$code" = 201 ] || { log "create answered $code: $(cat "$LOCAL/logs/smoke-create.json")"; exit 1; }
list=$(curl -fs "$base/api/teams/6548a41f38406c14db33b61e/projects/6548a41f38406c14db33b62c/virtual-machines" \
  -H "Authorization: Bearer $TOKEN")
echo "$list" | grep -q '"cloudProvider":{"_id":"6548a383e2442d14b6bf9685","name":"Kraud.Cloud"' ||
  { log "list did not show the created VM populated: $list"; exit 1; }
vm_id=$(sed -n 's/^\[{"_id":"\([0-9a-f]\{24\}\)".*/\1/p' "$LOCAL/logs/smoke-create.json")
[ -n "$vm_id" ] || { log "no _id in the create answer: $(cat "$LOCAL/logs/smoke-create.json")"; exit 1; }
creds=$(curl -fs "$base/api/virtual-machines/$vm_id/credentials" -H "Authorization: Bearer $TOKEN")
echo "$creds" | grep -q 'BEGIN OPENSSH PRIVATE KEY' ||
  { log "the credentials answer has no private key"; exit 1; }
running=""
for _ in $(seq 1 60); do
  vm=$(curl -fs "$base/api/virtual-machines/$vm_id" -H "Authorization: Bearer $TOKEN")
  if echo "$vm" | grep -q '"status":3,' && echo "$vm" | grep -q '"type":"public"'; then running=1; break; fi
  sleep 0.5
done
[ -n "$running" ] || { log "the provisioner did not bring the VM to running with a public address: $vm"; exit 1; }
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/api/virtual-machines/654a11e60b23ef1b0f36d44e")
[ "$code" = 401 ] || { log "a request without token answered $code"; exit 1; }
ddb_port=$(sed -n 's/.*DynamoDB Local on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$OUT")
moto_port=$(sed -n 's/.*moto (Secrets Manager, EC2) on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$OUT")
kill -TERM "$RUN_PID"
for _ in $(seq 1 100); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
trap - EXIT
if kill -0 "$RUN_PID" 2>/dev/null; then log "make run ignored SIGTERM"; cleanup; exit 1; fi
sleep 1
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then log "the API still listens after SIGTERM"; exit 1; fi
if [ -n "$ddb_port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$ddb_port") 2>/dev/null; then
  log "DynamoDB Local still runs after SIGTERM"; exit 1
fi
if [ -n "$moto_port" ] && (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null; then
  log "moto still runs after SIGTERM"; exit 1
fi
log "smoke run passed: served, created the spec's VM (201), listed it, read its credentials, saw it provisioned (running, public IP), stopped cleanly on SIGTERM"
