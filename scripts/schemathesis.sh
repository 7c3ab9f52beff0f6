#!/usr/bin/env bash
# schemathesis against the local server (`make run`, demo data) and the committed openapi.json
# (`make schemathesis`): installs schemathesis into the venv .local/schemathesis, starts the
# local run on a free port, takes its demo token, creates a few VMs (so generated requests also
# reach real VMs, not only 404s), runs every check (`--checks all`) over every phase, and stops
# everything it started on exit, Ctrl-C or SIGTERM. Exit status: schemathesis's (non-zero on any
# failure). Reports (JUnit XML, NDJSON events) go to .local/logs/schemathesis/. Extra arguments
# go to `schemathesis run` (e.g. `--max-examples 20`, `--seed 1`). Results: docs/reliability.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
SCHEMATHESIS_VERSION="4.32.5"
need curl "install curl"
need python3 "install Python 3 with the venv module"
if [ ! -x "$LOCAL/schemathesis/bin/schemathesis" ]; then
  log "installing schemathesis==$SCHEMATHESIS_VERSION into .local/schemathesis"
  python3 -m venv "$LOCAL/schemathesis"
  "$LOCAL/schemathesis/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
PORT="$(free_port)"
export PORT
SERVER_LOG="$LOCAL/logs/schemathesis-server.log"
REPORTS="$LOCAL/logs/schemathesis"
mkdir -p "$LOCAL/logs"
rm -rf "$REPORTS"
rm -f "$LOCAL/demo-token"
# The local run in a session of its own, so one signal stops it and all it started.
setsid bash scripts/run-local.sh >"$SERVER_LOG" 2>&1 &
RUN_PID=$!
stop_run() {
  kill -TERM -- "-$RUN_PID" 2>/dev/null || true
  wait "$RUN_PID" 2>/dev/null || true
}
trap stop_run EXIT
trap 'exit 130' INT TERM
base="http://127.0.0.1:$PORT"
log "starting the local server on $base (log: .local/logs/schemathesis-server.log)"
for _ in $(seq 1 900); do
  if curl -fs -o /dev/null "$base/health"; then break; fi
  if ! kill -0 "$RUN_PID" 2>/dev/null; then log "the local run exited early:"; cat "$SERVER_LOG"; exit 1; fi
  sleep 1
done
curl -fs -o /dev/null "$base/health" || { log "the local server never answered"; cat "$SERVER_LOG"; exit 1; }
TOKEN="$(cat "$LOCAL/demo-token")"
# VMs of the demo project for the generated requests to find: the spec's create request with
# other host names.
vm_ids=()
for i in 1 2 3 4 5 6; do
  body=$(python3 -c 'import json,sys; b=json.load(open(sys.argv[1])); b["hostNames"]=["schemathesis-%s" % sys.argv[2]]; print(json.dumps(b))' \
    shared/models/tests/fixtures/create-request.json "$i")
  answer=$(curl -fs -X POST "$base/api/virtual-machines" -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' --data-binary "$body") || { log "seeding VM $i failed"; exit 1; }
  vm_ids+=("$(printf '%s' "$answer" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["_id"])')")
done
CONFIG="$LOCAL/schemathesis.toml"
python3 - shared/models/tests/fixtures/create-request.json "${vm_ids[@]}" >"$CONFIG" <<'PY'
import json, sys
spec, vms = json.load(open(sys.argv[1])), sys.argv[2:]
out = ["# Written by scripts/schemathesis.sh for one run.",
       "# Path ids: mostly the VMs, team and project that exist, sometimes generated ones.",
       f"[dictionaries.vms]\nvalues = {json.dumps(vms)}",
       f"[dictionaries.teams]\nvalues = [{json.dumps(spec['team'])}]",
       f"[dictionaries.projects]\nvalues = [{json.dumps(spec['project'])}]"]
# Creates: mostly the catalog entries of the spec's request (flat or wrapped in "data"), so
# that generated creates can succeed and reach the service's core logic.
leaves = {
    "cloudProvider": spec["cloudProvider"], "team": spec["team"], "project": spec["project"],
    "provider": spec["provider"], "size": spec["size"], "price": spec["price"],
    "region.physicalLocation": spec["region"]["physicalLocation"],
    "region.datacenter.name": spec["region"]["datacenter"]["name"],
    "region.datacenter.displayName": spec["region"]["datacenter"]["displayName"],
    "image.distribution": spec["image"]["distribution"],
    "image.version.name": spec["image"]["version"]["name"],
    "image.version.displayName": spec["image"]["version"]["displayName"],
}
for i, value in enumerate(leaves.values()):
    out.append(f"[dictionaries.create{i}]\nvalues = [{json.dumps(value)}]")
# Values the schema cannot pin down (a network without host bits, an ordered port range), so
# rule bodies mostly carry valid ones.
out += ['[dictionaries.networks]\nvalues = ["0.0.0.0/0", "203.0.113.0/24", "2001:db8::/32", "*"]',
        '[dictionaries.ports]\nvalues = ["22", "443", "8000-8090", "*"]',
        '[dictionaries.any]\nvalues = ["*"]']
out += ["[parameters]",
        '"path.id" = { dictionary = "vms", probability = 0.8 }',
        '"path.team" = { dictionary = "teams", probability = 0.8 }',
        '"path.project" = { dictionary = "projects", probability = 0.8 }',
        # Security rules: mostly for the VMs that exist.
        '"body.virtualMachine" = { dictionary = "vms", probability = 0.8 }',
        '"body.data.virtualMachine" = { dictionary = "vms", probability = 0.8 }']
for prefix in ("body.", "body.data."):
    for field, dictionary in (("cidrBlock", "networks"), ("sourceAddressPrefix", "networks"),
                              ("source", "any"), ("portRange", "ports"),
                              ("destinationPortRange", "ports")):
        out.append(f'"{prefix}{field}" = {{ dictionary = "{dictionary}", probability = 0.9 }}')
for i, path in enumerate(leaves):
    for prefix in ("body.", "body.data."):
        out.append(f'"{prefix}{path}" = {{ dictionary = "create{i}", probability = 0.95 }}')
# Refusals a schema cannot express, so schema-valid requests may get them: an Idempotency-Key
# already used with another request (422 IDEMPOTENCY_KEY_REUSED; generated keys repeat), an
# If-Match tag that is not the VM's version (412 PRECONDITION_FAILED), and a security rule the
# VM's cloud cannot express (422 UNSUPPORTED_BY_PROVIDER: the seeded VMs are on Kraud.Cloud).
accepted = ["2xx", "3xx", "401", "403", "404", "409", "412", "429", "5xx"]
out += ["[[operations]]",
        'include-operation-id-regex = "^((create|delete|start|stop|reboot)-vm|(create|delete)-security-rule)$"',
        f"checks.positive_data_acceptance.expected-statuses = {json.dumps(accepted + ['422'])}",
        "[[operations]]",
        'include-operation-id = "update-vm"',
        f"checks.positive_data_acceptance.expected-statuses = {json.dumps(accepted)}"]
print("\n".join(out))
PY
log "schemathesis $SCHEMATHESIS_VERSION: openapi.json against $base, every check (VMs: ${vm_ids[*]})"
set +e
# From .local/, where schemathesis keeps its cache (.schemathesis/: failures to replay first).
(cd "$LOCAL" && "$LOCAL/schemathesis/bin/schemathesis" --config-file "$CONFIG" run "$ROOT/openapi.json" \
  --url "$base" \
  -H "Authorization: Bearer $TOKEN" \
  --checks all \
  --continue-on-failure \
  --workers 1 \
  --no-color \
  --report junit,ndjson --report-dir "$REPORTS" \
  "$@")
status=$?
set -e
log "schemathesis exited with $status; reports in .local/logs/schemathesis/"
exit "$status"
