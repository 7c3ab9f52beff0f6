#!/usr/bin/env bash
# Smoke test of the local run (`make run`), as a new user would try it: start it, wait for it,
# send the API page's create request verbatim with the printed demo token (expects 201), list the
# project, read the new VM's credentials (and the same login from the local Vault with the API page's
# read request), wait until the provisioner has it running; then an
# idempotent create (201), an idempotent refusal (409) and its replay, after which a new VM still
# reaches running, stops and is deleted (the stall of issue 15); then SIGTERM it and check that
# everything it started has stopped.
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
# The login is in the local Vault where the platform reads it: the API page's read request, verbatim.
vault_addr=$(sed -n 's/.*Vault: VAULT_ADDR=\([^ ]*\) VAULT_TOKEN=.*/\1/p' "$OUT" | head -1)
vault_token=$(sed -n 's/.*Vault: VAULT_ADDR=[^ ]* VAULT_TOKEN=\([^ ]*\) .*/\1/p' "$OUT" | head -1)
[ -n "$vault_addr" ] && [ -n "$vault_token" ] || { log "make run did not print the Vault address and token"; exit 1; }
stored=$(curl -fs -H "X-Vault-Token: $vault_token" \
  "$vault_addr/v1/enclaive-static/data/6548a41f38406c14db33b61e/user/root?version=0") ||
  { log "the platform's Vault read request failed"; exit 1; }
python3 -c 'import json,sys; s=json.loads(sys.argv[1])["data"]["data"]; c=json.loads(sys.argv[2]); sys.exit(0 if s["privateKey"]==c["privateKey"] else 1)' \
  "$stored" "$creds" || { log "Vault holds another key than the credentials answer"; exit 1; }
running=""
for _ in $(seq 1 60); do
  vm=$(curl -fs "$base/api/virtual-machines/$vm_id" -H "Authorization: Bearer $TOKEN")
  if echo "$vm" | grep -q '"status":3,' && echo "$vm" | grep -q '"type":"public"'; then running=1; break; fi
  sleep 0.5
done
[ -n "$running" ] || { log "the provisioner did not bring the VM to running with a public address: $vm"; exit 1; }
# Idempotency-Key: a create (201), a refusal (409: the host name is taken) and its replay.
body_with_name() {
  python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); b["hostNames"]=[sys.argv[2]]; print(json.dumps(b))' \
    shared/models/tests/fixtures/create-request.json "$1"
}
post_with_key() { # key, body file, output file
  curl -s -o "$3" -w '%{http_code}' -X POST "$base/api/virtual-machines" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: $1" --data-binary @"$2"
}
body_with_name smoke-idem >"$LOCAL/logs/smoke-idem.json"
code=$(post_with_key "smoke-$RANDOM-a" "$LOCAL/logs/smoke-idem.json" "$LOCAL/logs/smoke-idem-1.json")
[ "$code" = 201 ] || { log "idempotent create answered $code: $(cat "$LOCAL/logs/smoke-idem-1.json")"; exit 1; }
refusal_key="smoke-$RANDOM-b"
code=$(post_with_key "$refusal_key" "$LOCAL/logs/smoke-idem.json" "$LOCAL/logs/smoke-idem-2.json")
[ "$code" = 409 ] || { log "idempotent refusal answered $code: $(cat "$LOCAL/logs/smoke-idem-2.json")"; exit 1; }
code=$(post_with_key "$refusal_key" "$LOCAL/logs/smoke-idem.json" "$LOCAL/logs/smoke-idem-3.json")
[ "$code" = 409 ] && cmp -s "$LOCAL/logs/smoke-idem-2.json" "$LOCAL/logs/smoke-idem-3.json" ||
  { log "the refusal's replay answered $code: $(cat "$LOCAL/logs/smoke-idem-3.json")"; exit 1; }
# After them, a new VM still moves: running, stopped, deleted.
body_with_name smoke-after >"$LOCAL/logs/smoke-after.json"
code=$(curl -s -o "$LOCAL/logs/smoke-after-1.json" -w '%{http_code}' -X POST "$base/api/virtual-machines" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data-binary @"$LOCAL/logs/smoke-after.json")
[ "$code" = 201 ] || { log "create after the refusal answered $code: $(cat "$LOCAL/logs/smoke-after-1.json")"; exit 1; }
after_id=$(sed -n 's/^\[{"_id":"\([0-9a-f]\{24\}\)".*/\1/p' "$LOCAL/logs/smoke-after-1.json")
wait_status() { # id, wanted status (a number) or 404, what
  local vm="" code
  for _ in $(seq 1 60); do
    code=$(curl -s -o "$LOCAL/logs/smoke-vm.json" -w '%{http_code}' "$base/api/virtual-machines/$1" -H "Authorization: Bearer $TOKEN")
    vm=$(cat "$LOCAL/logs/smoke-vm.json")
    if [ "$2" = 404 ] && { [ "$code" = 404 ] || echo "$vm" | grep -q "\"status\":8,"; }; then return 0; fi
    if [ "$code" = 200 ] && echo "$vm" | grep -q "\"status\":$2,"; then return 0; fi
    sleep 0.5
  done
  log "the VM never became $3 after the idempotent refusal (the stream stalled?): $code $vm"; exit 1
}
wait_status "$after_id" 3 running
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "$base/api/virtual-machines/$after_id/stop" -H "Authorization: Bearer $TOKEN")
[ "$code" = 200 ] || { log "stop answered $code"; exit 1; }
wait_status "$after_id" 7 stopped
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$base/api/virtual-machines/$after_id" -H "Authorization: Bearer $TOKEN")
[ "$code" = 200 ] || { log "delete answered $code"; exit 1; }
wait_status "$after_id" 404 gone
if grep -q "reading the shard failed\|sent to the on-failure destination" "$OUT"; then
  log "the stream consumer reported failures:"; grep "reading the shard failed\|sent to the on-failure destination" "$OUT"; exit 1
fi
code=$(curl -s -o /dev/null -w '%{http_code}' "$base/api/virtual-machines/654a11e60b23ef1b0f36d44e")
[ "$code" = 401 ] || { log "a request without token answered $code"; exit 1; }
ddb_port=$(sed -n 's/.*DynamoDB Local on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$OUT")
moto_port=$(sed -n 's/.*moto (Secrets Manager, EC2, CloudFormation) on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$OUT")
vault_port=${vault_addr##*:}
[ -n "$ddb_port" ] && [ -n "$moto_port" ] || { log "make run did not print where DynamoDB Local and moto listen"; exit 1; }
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
if (exec 3<>"/dev/tcp/127.0.0.1/$vault_port") 2>/dev/null; then
  log "OpenBao still runs after SIGTERM"; exit 1
fi
log "smoke run passed: served, created the spec's VM (201), listed it, read its credentials, saw it provisioned (running, public IP); an idempotent create (201), refusal (409) and replay, after which a new VM ran, stopped and was deleted; stopped cleanly on SIGTERM"
