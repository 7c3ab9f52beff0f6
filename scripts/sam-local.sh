#!/usr/bin/env bash
# `make sam-local`: every function under `sam local invoke` with its event (events/) and
# events/env.json, and `sam local start-api` with one request per route, against the local run
# (DynamoDB Local, moto, OpenBao for Vault, `vmctl dev` with the demo data and its provisioner).
# Logins are in Vault, as on the platform; create-vm and get-credentials also run once with
# SECRET_BACKEND=secretsmanager (moto). Asserts each answer's status. Sets up, idempotently, what that needs on Debian (docs/local-run.md):
# Debian's docker.io and debootstrap (apt, as root), a Docker daemon without NAT on a bridge of
# its own (stopped again; a daemon already running is used and left alone), and the Lambda base
# image imported from a minimal Debian root file system. Nothing leaves the machine: the
# containers reach only the bridge's gateway, where DynamoDB Local, moto and OpenBao answer.
# SAM_LOCAL_BUILD_DIR=.aws-sam/build runs the release functions a `sam build` made instead of the
# debug binaries.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
need cargo "install Rust (rustup)"

BRIDGE="${SAM_LOCAL_BRIDGE:-172.31.250.1/24}"
WORK="$ROOT/target/sam-local"
BASE_IMAGE="public.ecr.aws/lambda/provided:al2023-x86_64"
SAM="$LOCAL/sam/bin/sam"
export SAM_CLI_TELEMETRY=0
DOCKERD_PID=""
API_PID=""
KRAUD_VM=654a11e60b23ef1b0f36d44e   # the events' VM (data/demo.json, demoVms)
AWS_VM=654a11e60b23ef1b0f36d451
AZURE_VM=654a11e60b23ef1b0f36d453
AZURE_RULE=654a11e60b23ef1b0f36d454
OWNER=6548a41138406c14db33b606
TEAM=6548a41f38406c14db33b61e
AZURE_CLOUD=6548a383e2442d14b6bf9687
AZURE_PROVIDER=6548a383e2442d14b6bf968d
LIST_PATH=/api/teams/$TEAM/projects/6548a41f38406c14db33b62c/virtual-machines
failures=0

ensure_docker_packages() {
  command -v dockerd >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || { log "docker.io and debootstrap are missing; install them (as root)"; exit 1; }
  log "installing docker.io and debootstrap (apt)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io debootstrap >/dev/null
}

# Uses the Docker daemon that answers, or starts one without NAT on the bridge $BRIDGE.
start_docker() {
  if docker info >/dev/null 2>&1; then
    log "using the Docker daemon already running (left running)"
    return 0
  fi
  [ "$(id -u)" = 0 ] || { log "no Docker daemon, and starting one needs root"; exit 1; }
  dockerd --iptables=false --ip-masq=false --bip="$BRIDGE" >"$WORK/logs/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  local i=0
  until docker info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 600 ] || ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      log "dockerd did not start; see $WORK/logs/dockerd.log"; exit 1
    fi
    sleep 0.1
  done
  log "dockerd (pid $DOCKERD_PID) on bridge $BRIDGE, no NAT"
}

stop_docker() {
  [ -n "$DOCKERD_PID" ] || return 0
  if kill -0 "$DOCKERD_PID" 2>/dev/null; then
    kill "$DOCKERD_PID" 2>/dev/null || true
    wait "$DOCKERD_PID" 2>/dev/null || true
    log "dockerd stopped"
  fi
  DOCKERD_PID=""
}

# The Lambda base image cannot be pulled here: a minimal Debian under its names will do (SAM
# builds its emulation image on it, with the Runtime Interface Emulator it ships).
ensure_base_image() {
  if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    local rootfs
    rootfs="$(mktemp -d)"
    log "importing a minimal Debian (debootstrap bookworm) as $BASE_IMAGE"
    debootstrap --variant=minbase bookworm "$rootfs" >"$WORK/logs/debootstrap.log" 2>&1 ||
      { log "debootstrap failed; see $WORK/logs/debootstrap.log"; rm -rf "$rootfs"; exit 1; }
    tar -C "$rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs"
  fi
  docker tag "$BASE_IMAGE" public.ecr.aws/lambda/provided:al2023
}

cleanup() {
  if [ -n "$API_PID" ] && kill -0 "$API_PID" 2>/dev/null; then
    # TERM: a background job of a script ignores SIGINT.
    kill "$API_PID" 2>/dev/null || true
    wait "$API_PID" 2>/dev/null || true
  fi
  stop_started
  stop_docker
}

rm -rf "$WORK/events" "$WORK/out" "$WORK/logs" "$WORK/build"
mkdir -p "$WORK/events" "$WORK/out" "$WORK/logs"
ensure_docker_packages
ensure_dynamodb_local
ensure_moto
ensure_openbao
ensure_template_tools
use_local_aws_env
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${SAM_LOCAL_BUILD_DIR:-}" ]; then
  [ -f "$SAM_LOCAL_BUILD_DIR/template.yaml" ] || { log "no sam build output in $SAM_LOCAL_BUILD_DIR"; exit 1; }
  log "the functions as built by sam build in $SAM_LOCAL_BUILD_DIR; building vmctl (debug)"
  cargo build --locked --quiet -p vmctl
else
  log "building the function binaries and vmctl (debug)"
  packages=()
  for f in functions/*/; do packages+=(-p "$(basename "$f")"); done
  cargo build --locked --quiet "${packages[@]}" -p vmctl
fi

start_docker
GATEWAY="$(docker network inspect bridge --format '{{(index .IPAM.Config 0).Gateway}}')"
ensure_base_image
start_dynamodb_local
MOTO_HOST="$GATEWAY" start_moto
VAULT_HOST="$GATEWAY" start_openbao
ddb_port="${AWS_ENDPOINT_URL_DYNAMODB##*:}"
moto_port="${AWS_ENDPOINT_URL_SECRETS_MANAGER##*:}"
vault_port="${VMAPI_VAULT_ADDR##*:}"

# The local run (as `make run`), with its files in $WORK.
export SECRET_BACKEND=vault VAULT_ADDR="$VMAPI_VAULT_ADDR" VAULT_TOKEN="$VMAPI_VAULT_TOKEN"
export KRAUD_DRIVER=simulated AZURE_DRIVER=simulated
export PROVISIONER_POLL_BUDGET_SECONDS=5 PROVISIONER_POLL_INTERVAL_SECONDS=1 CLEANUP_INTERVAL_SECONDS=3600
export STREAM_CHECKPOINT_FILE="$WORK/stream-consumer.json" STREAM_FAILURE_FILE="$WORK/stream-failures.jsonl"
rm -f "$STREAM_CHECKPOINT_FILE" "$STREAM_FAILURE_FILE"
run_port="$(free_port)"
"$TARGET/debug/vmctl" dev --port "$run_port" --token-file "$WORK/demo-token" --admin-key-file "$WORK/admin-key" >"$WORK/logs/run.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for_port "$run_port" 120 || { log "the local run did not start; see $WORK/logs/run.log"; exit 1; }
TOKEN="$(cat "$WORK/demo-token")"
ADMIN_KEY="$(cat "$WORK/admin-key")"
run="http://127.0.0.1:$run_port"

# Status code of a GET on the local run; $2 = the body's "status" that ends the wait.
wait_vm_status() {
  local id=$1 want=$2 i=0 body
  while :; do
    body="$(curl -s "$run/api/virtual-machines/$id" -H "Authorization: Bearer $TOKEN")"
    case "$body" in *"\"status\":$want,"*) return 0 ;; esac
    i=$((i + 1))
    [ "$i" -lt 120 ] || { log "VM $id did not reach status $want: $body"; return 1; }
    sleep 0.5
  done
}
# Until the VM has no pending operation (vmctl vm prints the record as stored).
wait_settled() {
  local id=$1 i=0
  while "$TARGET/debug/vmctl" vm "$id" 2>/dev/null | grep -q '"pendingOp": {'; do
    i=$((i + 1))
    [ "$i" -lt 120 ] || { log "VM $id kept its pending operation"; return 1; }
    sleep 0.5
  done
}
for vm in "$KRAUD_VM" "$AWS_VM" "$AZURE_VM"; do wait_vm_status "$vm" 3; done
log "the local run on $run: the three demo VMs are running"

# The functions as `sam build` lays them out, from the debug binaries (or `sam build`'s own output).
if [ -n "${SAM_LOCAL_BUILD_DIR:-}" ]; then
  build_dir="$(cd "$SAM_LOCAL_BUILD_DIR" && pwd)"
  mapfile -t functions < <("$LOCAL/sam/bin/python" scripts/sam-layout.py --list template.yaml)
else
  build_dir="$WORK/build"
  mapfile -t functions < <("$LOCAL/sam/bin/python" scripts/sam-layout.py template.yaml "$TARGET/debug" "$build_dir")
fi
for f in events/*.json; do sed -e "s/{{TOKEN}}/$TOKEN/g" -e "s/{{ADMIN_KEY}}/$ADMIN_KEY/g" "$f" >"$WORK/events/$(basename "$f")"; done
sed -e "s/host.docker.internal:8000/host.docker.internal:$ddb_port/" \
  -e "s/host.docker.internal:5000/host.docker.internal:$moto_port/g" \
  -e "s/host.docker.internal:8200/host.docker.internal:$vault_port/" \
  -e "s/{{VAULT_TOKEN}}/$VMAPI_VAULT_TOKEN/" events/env.json >"$WORK/env.json"
# The same with the logins in Secrets Manager on moto.
sed 's/"SECRET_BACKEND": "vault"/"SECRET_BACKEND": "secretsmanager"/' "$WORK/env.json" >"$WORK/env-secretsmanager.json"
sam_args=(-t "$build_dir/template.yaml" --skip-pull-image
  --add-host "host.docker.internal:$GATEWAY"
  --parameter-overrides "Architecture=x86_64 JwtIssuer=local JwtAudience=local JwksUrl=none CursorSecret=vm-api-local-cursor-secret")

logical_id() {
  local line
  for line in "${functions[@]}"; do [ "${line#* }" = "$1" ] && { echo "${line%% *}"; return; }; done
  log "no function with binary $1 in template.yaml"; exit 1
}

# sam local invoke <binary> <expected statusCode, or a Python expression over the answer `a`>
#   [<event file, default the binary's>] [<env file, default env.json (Vault)>] [<name of this run>].
invoke() {
  local bin=$1 expect=$2 event=${3:-$WORK/events/$1.json} env=${4:-$WORK/env.json} name=${5:-$1} id out got
  id="$(logical_id "$bin")"
  out="$WORK/out/$name.json"
  local start=$SECONDS
  if ! "$SAM" local invoke "$id" -e "$event" --env-vars "$env" "${sam_args[@]}" >"$out" 2>"$WORK/logs/$name.log"; then
    log "FAIL $id: sam local invoke failed; see $WORK/logs/$name.log"; failures=$((failures + 1)); return
  fi
  if [[ "$expect" =~ ^[0-9]+$ ]]; then
    got="$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]).get("statusCode"))' "$out" 2>&1)"
  else
    got="$(python3 -c 'import json,sys; a=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print("ok" if ('"$expect"') else a)' "$out" 2>&1)"
    [ "$got" = ok ] && expect=ok
  fi
  if grep -q 'IncompleteMessage' "$WORK/logs/$name.log"; then
    log "FAIL $id: the function logged IncompleteMessage at shutdown"; failures=$((failures + 1)); return
  fi
  if [ "$got" = "$expect" ]; then
    log "ok   $id ($name): $expect in $((SECONDS - start)) s"
  else
    log "FAIL $id ($name): expected $expect, got $got; answer in $out, log in $WORK/logs/$name.log"
    failures=$((failures + 1))
  fi
}

log "sam local invoke: every function with its event"
invoke health 200
invoke get-vm 200
invoke list-vms 200
invoke get-activity 200
invoke get-credentials 200
invoke list-security-rules 200
invoke list-cloud-providers 200
invoke list-providers 200
invoke list-locations 200
invoke list-images 200
invoke list-prices 200
invoke get-team-costs 200
invoke admin-list-team-vms 200
invoke admin-block-vm 200
invoke admin-unblock-vm 200
invoke create-vm 201
invoke update-vm 200
invoke create-security-rule 201
invoke delete-security-rule 200
wait_settled "$KRAUD_VM"
invoke start-vm 200
invoke reboot-vm 200
invoke resize-vm 200
wait_settled "$KRAUD_VM"
invoke stop-vm 200
invoke provisioner 'a == {"batchItemFailures": []}'
invoke cleanup '"candidates" in a and a.get("failed") == 0'
invoke delete-vm 200
# The admin's delete takes the AWS demo VM (the events' VM is being deleted already).
sed "s/$KRAUD_VM/$AWS_VM/g" "$WORK/events/admin-delete-vm.json" >"$WORK/events/admin-delete-aws-vm.json"
invoke admin-delete-vm 200 "$WORK/events/admin-delete-aws-vm.json"

log "sam local invoke: create-vm and get-credentials with SECRET_BACKEND=secretsmanager (moto)"
sm_env="$WORK/env-secretsmanager.json"
python3 - "$WORK/events/create-vm.json" "$WORK/events/create-vm-sm.json" <<'PY'
import json, sys
event = json.load(open(sys.argv[1]))
body = json.loads(event["body"])
body["hostNames"] = ["sam-local-secretsmanager-01"]
event["body"] = json.dumps(body)
json.dump(event, open(sys.argv[2], "w"))
PY
invoke create-vm 201 "$WORK/events/create-vm-sm.json" "$sm_env" create-vm-secretsmanager
sm_vm="$(python3 -c 'import json,sys; a=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(json.loads(a["body"])[0]["_id"])' "$WORK/out/create-vm-secretsmanager.json" 2>/dev/null || true)"
if [ -n "$sm_vm" ]; then
  sed "s/$KRAUD_VM/$sm_vm/g" "$WORK/events/get-credentials.json" >"$WORK/events/get-credentials-sm.json"
  invoke get-credentials 200 "$WORK/events/get-credentials-sm.json" "$sm_env" get-credentials-secretsmanager
else
  log "FAIL: no VM id in the Secrets Manager create's answer"; failures=$((failures + 1))
fi

log "sam local start-api: one request per route"
api_port="$(free_port)"
"$SAM" local start-api --host 127.0.0.1 --port "$api_port" --env-vars "$WORK/env.json" "${sam_args[@]}" >"$WORK/logs/start-api.log" 2>&1 &
API_PID=$!
wait_for_port "$api_port" 120 || { log "sam local start-api did not listen; see $WORK/logs/start-api.log"; exit 1; }
api="http://127.0.0.1:$api_port"

# request <method> <path> <expected status> [body]; paths under /admin send the admin key
request() {
  local method=$1 path=$2 expect=$3 body=${4:-} code start=$SECONDS auth="Authorization: Bearer $TOKEN"
  case "$path" in /admin/*) auth="Api-Key: $ADMIN_KEY" ;; esac
  local args=(-s -o "$WORK/out/api.json" -w '%{http_code}' -X "$method" "$api$path" -H "$auth")
  [ -z "$body" ] || args+=(-H 'Content-Type: application/json' --data-binary "$body")
  code="$(curl "${args[@]}")" || code="curl failed"
  if [ "$code" = "$expect" ]; then
    log "ok   $method $path: $code in $((SECONDS - start)) s"
  else
    log "FAIL $method $path: expected $expect, got $code: $(head -c 400 "$WORK/out/api.json" 2>/dev/null)"
    failures=$((failures + 1))
  fi
}
create_body="$(sed 's/kraud-cloud-ubuntu-1vcpu-4gb-berlin-01/start-api-01/' shared/models/tests/fixtures/create-request.json)"
rule_body="{\"virtualMachine\": \"$AZURE_VM\", \"name\": \"https\", \"direction\": \"Inbound\", \"protocol\": \"Tcp\", \"portRange\": [\"443\"], \"cidrBlock\": \"0.0.0.0/0\", \"access\": \"Allow\", \"priority\": 200}"
request GET /health 200
request GET "$LIST_PATH" 200
request GET "/api/virtual-machines/$AZURE_VM" 200
request GET "/api/virtual-machines/$AZURE_VM/activity" 200
request GET "/api/virtual-machines/$AZURE_VM/credentials" 200
request GET "/api/virtual-machines/$AZURE_VM/security-rules" 200
request POST /api/virtual-machines 201 "$create_body"
request PATCH "/api/virtual-machines/$AZURE_VM" 200 '{"name": "demo-azure-renamed"}'
request POST /api/security-rules 201 "$rule_body"
request DELETE "/api/security-rules/$AZURE_RULE" 200
request GET /api/cloud-providers 200
request GET "/api/cloud-providers/$AZURE_CLOUD/providers" 200
request GET "/api/providers/$AZURE_PROVIDER/locations" 200
request GET "/api/providers/$AZURE_PROVIDER/locations/westeurope/images" 200
request GET "/api/providers/$AZURE_PROVIDER/locations/westeurope/images/Ubuntu/prices" 200
request GET "/api/teams/$TEAM/costs" 200
request GET "/admin/api/teams/$TEAM/virtual-machines?page=1&limit=5" 200
request PUT "/admin/api/virtual-machines/$AZURE_VM/block" 200
request PUT "/admin/api/virtual-machines/$AZURE_VM/unblock" 200
wait_settled "$AZURE_VM"
request PUT "/api/virtual-machines/$AZURE_VM/start" 200
request PUT "/api/virtual-machines/$AZURE_VM/reboot" 200
wait_settled "$AZURE_VM"
request PUT "/api/virtual-machines/$AZURE_VM/stop" 200
request DELETE "/api/virtual-machines/$AZURE_VM" 200
request DELETE "/admin/api/virtual-machines/$AZURE_VM" 200

if [ "$failures" -ne 0 ]; then
  log "make sam-local: $failures failed (answers in $WORK/out, logs in $WORK/logs)"
  exit 1
fi
log "make sam-local: every function answered as expected (logs in $WORK/logs)"
