#!/usr/bin/env bash
# The benchmarks of docs/performance.md (`make bench`): one release build of the workspace, then
# against DynamoDB Local and moto (started here, stopped at the end):
#   1. cold starts: every function's release binary and a bare lambda_http hello world, each
#      started BENCH_RUNS times under the local Runtime API emulator (tools/lambda-emulator);
#   2. warm latency: GET one VM and list 50 VMs through the handler against the raw DynamoDB
#      calls the handler needs (benches/, `vmapi-bench warm`);
#   3. zip sizes: each binary as Lambda's `bootstrap`, `zip -9`;
#   4. peak RSS: each HTTP function fed its event in a loop for BENCH_LOAD_SECONDS (VmHWM);
#   5. throughput: `vmctl serve` for GET and list, and DynamoDB Local's own GetItem and Query
#      rate, with oha (installed into .local/oha on first use).
# Results: docs/bench-results.json and docs/bench-results.md (BENCH_OUT_DIR to put them
# elsewhere). Quick run: BENCH_RUNS=5 BENCH_LOAD_SECONDS=5 BENCH_WARM_ITERATIONS=200
# BENCH_THROUGHPUT_SECONDS=3 BENCH_OUT_DIR=.local/bench bash scripts/bench.sh
# Cold starts of some functions only (the hello binary is always measured beside them), written
# to $OUT_DIR/bench-cold.json and .md: BENCH_COLD_ONLY="provisioner cleanup" bash scripts/bench.sh
# (BENCH_BUILD_PACKAGES limits the release build to the packages named there).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"

RUNS="${BENCH_RUNS:-30}"
LOAD_SECONDS="${BENCH_LOAD_SECONDS:-60}"
WARM_ITERATIONS="${BENCH_WARM_ITERATIONS:-2000}"
THROUGHPUT_SECONDS="${BENCH_THROUGHPUT_SECONDS:-15}"
THROUGHPUT_CONNECTIONS="${BENCH_THROUGHPUT_CONNECTIONS:-8}"
OUT_DIR="${BENCH_OUT_DIR:-docs}"
OHA_VERSION="1.16.0"
RELEASE="${CARGO_TARGET_DIR:-$ROOT/target}/release"
WORK="$LOCAL/bench"
OWNER="6548a41138406c14db33b606"
EVENT_VM="654a11e60b23ef1b0f36d44e"
# Every endpoint's function, from the endpoint table (through openapi.json, generated from it and
# checked current by `make test`); create-vm and delete-vm last, as they change the event VM.
mapfile -t HTTP_FUNCTIONS < <(python3 - "$ROOT/openapi.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()
       if isinstance(op, dict) and op.get("operationId") not in (None, "openapi")]
last = ["create-vm", "delete-vm", "admin-delete-vm"]
print("\n".join([i for i in ids if i not in last] + [i for i in last if i in ids]))
PY
)
WORKER_FUNCTIONS=(provisioner cleanup)

need cargo "install Rust (rustup)"
need zip "install zip (apt-get install zip)"
need python3 "install Python 3"
if [ "$(uname -m)" != x86_64 ]; then
  log "warning: the documented numbers are for x86_64; this is $(uname -m)"
fi
ensure_dynamodb_local
ensure_moto
use_local_aws_env
trap stop_started EXIT
trap 'exit 130' INT TERM

if [ ! -x "$LOCAL/oha/bin/oha" ]; then
  log "installing oha $OHA_VERSION into .local/oha (cargo install)"
  cargo install oha --version "$OHA_VERSION" --locked --root "$LOCAL/oha" --quiet
fi
OHA="$LOCAL/oha/bin/oha"

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  if [ -n "${BENCH_BUILD_PACKAGES:-}" ]; then
    log "release build of $BENCH_BUILD_PACKAGES"
    # shellcheck disable=SC2046
    cargo build --release --locked $(printf -- '-p %s ' $BENCH_BUILD_PACKAGES)
  else
    log "release build of the workspace (cargo build --release --workspace --locked)"
    cargo build --release --workspace --locked
  fi
fi

LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$WORK/run"
mkdir -p "$WORK/run/cold" "$WORK/run/load" "$WORK/run/zip" "$WORK/run/events" "$WORK/run/logs" "$OUT_DIR"
RUN="$WORK/run"

start_dynamodb_local
start_moto
export TABLE_NAME="vm-api-bench"
export LOCAL_JWT_SECRET="vm-api-local-development-secret" CURSOR_SECRET="vm-api-local-cursor-secret"
# The functions run under tools/lambda-emulator (AWS_LAMBDA_FUNCTION_NAME set): local tokens are
# accepted there only as under `sam local`.
export AWS_SAM_LOCAL=true
# As in Lambda, where the template always sets it (required there).
export DEPLOYMENT_ID=local
export SECRET_BACKEND=secretsmanager CREDENTIAL_SCOPE=team
unset JWKS_URL VAULT_ADDR VAULT_TOKEN
"$RELEASE/vmctl" create-table >/dev/null
"$RELEASE/vmctl" load data/demo.json >/dev/null
"$RELEASE/vmapi-bench" seed --vms 60
TOKEN="$("$RELEASE/vmctl" token --user "$OWNER" --hours 24)"
ADMIN_KEY="$("$RELEASE/vmctl" admin-key create --name "bench-$(date +%s)" 2>/dev/null)"

# The events with the token in place (the files keep a placeholder).
for f in events/*.json; do
  sed -e "s/{{TOKEN}}/$TOKEN/g" -e "s/{{ADMIN_KEY}}/$ADMIN_KEY/g" -e "s/{{VM_ID}}/$EVENT_VM/g" "$f" >"$RUN/events/$(basename "$f")"
done
# create-vm: a new host name per start / per invocation (the event's name is taken after one).
sed -i 's/kraud-cloud-ubuntu-1vcpu-4gb-berlin-01/bench-create-{{RUN}}/' "$RUN/events/create-vm.json"

# What must hold before a start of a function that changes the events' VM (each start then
# sees the same record and does the same work).
reset_for() {
  case "$1" in
    update-vm) echo "$RELEASE/vmapi-bench reset-vm --status 3 --release-name renamed-vm-01" ;;
    stop-vm | reboot-vm | delete-vm | admin-delete-vm | create-security-rule | delete-security-rule)
      echo "$RELEASE/vmapi-bench reset-vm --status 3" ;;
    start-vm) echo "$RELEASE/vmapi-bench reset-vm --status 7" ;;
    resize-vm) echo "$RELEASE/vmapi-bench reset-vm --status 3 --aws" ;;
    *) echo "" ;;
  esac
}

emulator() { "$RELEASE/lambda-emulator" "$@"; }

# 1. Cold starts.
# Every function's starts are paired with starts of the bare hello binary, alternately before
# and after each (--baseline): its ratio compares medians of the same stretch of time, so the
# machine's drift over the run (hello medians moved by up to 40 % between runs minutes apart)
# does not move the ratio. The standalone hello rows at the start and the end show that drift.
cold() {
  local name=$1 bin=$2 event=$3 hook base=()
  hook="$(reset_for "$name")"
  case "$name" in
    bench-hello*) ;;
    *) base=(--baseline "$RELEASE/bench-hello" --baseline-event "$RUN/events/health.json") ;;
  esac
  log "cold start: $name ($RUNS starts${base:+, each paired with a bench-hello start})"
  emulator cold --name "$name" --bin "$bin" --event "$event" --runs "$RUNS" "${base[@]}" \
    ${hook:+--before-each "$hook"} --log "$RUN/logs/$name.log" --out "$RUN/cold/$name.json" >/dev/null
}
cold bench-hello "$RELEASE/bench-hello" "$RUN/events/health.json"
if [ -n "${BENCH_COLD_ONLY:-}" ]; then
  for f in $BENCH_COLD_ONLY; do
    [ -x "$RELEASE/$f" ] || { log "no release binary $RELEASE/$f: build it (BENCH_BUILD_PACKAGES)"; exit 1; }
    cold "$f" "$RELEASE/$f" "$RUN/events/$f.json"
  done
  cold bench-hello-end "$RELEASE/bench-hello" "$RUN/events/health.json"
  python3 - "$RUN" "$OUT_DIR" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD)" "$LOAD_AT_START" <<'EOF'
import json, os, sys
run, out_dir, date, commit, load_start = sys.argv[1:]
load_end = " ".join(open("/proc/loadavg").read().split()[:3])
cold = {f[:-5]: json.load(open(f"{run}/cold/{f}")) for f in os.listdir(f"{run}/cold")}
hello = [cold[n]["init_ms"]["median"] for n in ("bench-hello", "bench-hello-end")]
hello_init = sum(hello) / len(hello)
rows = []
md = [f"# Cold starts ({date}, commit {commit}, {os.cpu_count()} CPUs, load average {load_start} at the start, {load_end} at the end)", "",
      "| function | init ms (median) | init ms (p90) | paired hello ms | × paired hello | × standalone hello | first invocation ms | answers | target (≤ 10 ms, ≤ 3× both) |",
      "|---|---:|---:|---:|---:|---:|---:|---|---|"]
for name in sorted(cold, key=lambda n: (not n.startswith("bench-hello"), n)):
    c = cold[name]
    init = c["init_ms"]["median"]
    base = c.get("baseline")
    hello_paired = base["init_ms"]["median"] if base and base["init_ms"] else None
    ratio = base["init_ratio"] if base else None
    alone = round(init / hello_init, 2)
    ok = None if name.startswith("bench-hello") else (init <= 10.0 and ratio is not None and ratio <= 3.0 and alone <= 3.0 and not c["failures"])
    first = c["first_invocation_ms"]["median"] if c["first_invocation_ms"] else None
    rows.append({"function": name, "init_ms_median": init, "init_ms_p90": c["init_ms"]["p90"], "hello_init_ms_median_paired": hello_paired,
                 "init_ratio_to_hello": ratio, "init_ratio_to_standalone_hello": alone, "first_invocation_ms_median": first, "outcomes": c["outcomes"],
                 "failures": len(c["failures"]), "target_met": ok})
    outs = ", ".join(f"{k}×{v}" for k, v in c["outcomes"].items())
    md.append(f"| {name} | {init} | {c['init_ms']['p90']} | {hello_paired if hello_paired is not None else '—'} | {ratio if ratio is not None else '—'} | {alone} | {first} | {outs} | {'—' if ok is None else ('yes' if ok else '**no**')} |")
json.dump({"date": date, "commit": commit, "hello_init_ms_median": hello_init, "functions": rows},
          open(f"{out_dir}/bench-cold.json", "w"), indent=2)
open(f"{out_dir}/bench-cold.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
EOF
  exit 0
fi
for f in "${HTTP_FUNCTIONS[@]}" "${WORKER_FUNCTIONS[@]}"; do
  cold "$f" "$RELEASE/$f" "$RUN/events/$f.json"
done
# Production token mode (JWKS_URL set: the verifier builds its HTTPS client at init, fetches the
# keys on first use). Nothing serves this URL, so only the init time of this row means anything.
JWKS_URL="http://127.0.0.1:9/.well-known/jwks.json" JWT_ISSUER="https://issuer.example" JWT_AUDIENCE="vm-api" \
  cold get-vm-jwks "$RELEASE/get-vm" "$RUN/events/get-vm.json"
# Diagnosis: the same binary with an empty native trust store (the SDK's HTTPS client parses
# every system root certificate at init; see docs/performance.md). HTTP to DynamoDB Local still works.
SSL_CERT_FILE=/dev/null SSL_CERT_DIR=/nonexistent cold get-vm-no-roots "$RELEASE/get-vm" "$RUN/events/get-vm.json"
# The hello binary once more at the end: the ratio should not depend on the machine's drift.
cold bench-hello-end "$RELEASE/bench-hello" "$RUN/events/health.json"
"$RELEASE/vmapi-bench" reset-vm --status 3 --release-name renamed-vm-01

# 2. Warm latency.
log "warm latency: $WARM_ITERATIONS requests per case"
"$RELEASE/vmapi-bench" warm --iterations "$WARM_ITERATIONS" --out "$RUN/warm.json" >/dev/null

# 3. Zip sizes (the binary as Lambda's bootstrap, as `cargo lambda build --output-format zip`).
log "zip sizes"
for f in bench-hello "${HTTP_FUNCTIONS[@]}" "${WORKER_FUNCTIONS[@]}"; do
  dir="$RUN/zip/$f"
  mkdir -p "$dir"
  cp "$RELEASE/$f" "$dir/bootstrap"
  (cd "$dir" && rm -f bootstrap.zip && zip -q -9 -X bootstrap.zip bootstrap)
  printf '%s %s %s\n' "$f" "$(stat -c %s "$dir/bootstrap")" "$(stat -c %s "$dir/bootstrap.zip")"
done >"$RUN/sizes.txt"

# 4. Throughput of the local server and of DynamoDB Local itself.
PORT="$(free_port)"
log "throughput: vmctl serve on :$PORT, $THROUGHPUT_SECONDS s per case, $THROUGHPUT_CONNECTIONS connections"
KRAUD_DRIVER=simulated AZURE_DRIVER=simulated "$RELEASE/vmctl" serve --port "$PORT" >"$RUN/logs/vmctl-serve.log" 2>&1 &
STARTED_PIDS+=("$!")
wait_for_port "$PORT" 30 || { log "vmctl serve did not start; see $RUN/logs/vmctl-serve.log"; exit 1; }
oha_run() {
  local out=$1
  shift
  "$OHA" --no-tui --output-format json -z "${THROUGHPUT_SECONDS}s" -c "$THROUGHPUT_CONNECTIONS" "$@" >"$out"
}
BASE="http://127.0.0.1:$PORT"
# Warm-up (JIT of DynamoDB Local, caches), not recorded.
"$OHA" --no-tui -z 3s -c "$THROUGHPUT_CONNECTIONS" -H "Authorization: Bearer $TOKEN" "$BASE/api/virtual-machines/$EVENT_VM" >/dev/null
oha_run "$RUN/oha-get.json" -H "Authorization: Bearer $TOKEN" "$BASE/api/virtual-machines/$EVENT_VM"
oha_run "$RUN/oha-list.json" -H "Authorization: Bearer $TOKEN" \
  "$BASE/api/teams/6548a41f38406c14db33b61e/projects/6548a41f38406c14db33b62c/virtual-machines?limit=50"
# DynamoDB Local accepts any SigV4-shaped Authorization header (no signature check).
ddb() {
  local out=$1 target=$2 body=$3
  oha_run "$out" -m POST -T "application/x-amz-json-1.0" \
    -H "X-Amz-Target: DynamoDB_20120810.$target" -H "X-Amz-Date: 20260101T000000Z" \
    -H "Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000" \
    -d "$body" "$AWS_ENDPOINT_URL_DYNAMODB/"
}
ddb "$RUN/oha-ddb-getitem.json" GetItem \
  "{\"TableName\":\"$TABLE_NAME\",\"Key\":{\"pk\":{\"S\":\"VM#$EVENT_VM\"},\"sk\":{\"S\":\"VM\"}}}"
ddb "$RUN/oha-ddb-query.json" Query \
  "{\"TableName\":\"$TABLE_NAME\",\"IndexName\":\"gsi1\",\"KeyConditionExpression\":\"gsi1pk = :p\",\"ExpressionAttributeValues\":{\":p\":{\"S\":\"PROJECT#6548a41f38406c14db33b62c#VMS\"}},\"ScanIndexForward\":false,\"Limit\":51}"
kill "${STARTED_PIDS[-1]}" 2>/dev/null || true
wait "${STARTED_PIDS[-1]}" 2>/dev/null || true

# 5. Peak RSS under a loop of invocations (one container, one invocation at a time).
load() {
  local name=$1 bin=$2 event=$3 hook
  hook="$(reset_for "$name")"
  [ -z "$hook" ] || $hook
  log "peak RSS: $name ($LOAD_SECONDS s)"
  sed 's/{{RUN}}/load-{{N}}/' "$event" >"$RUN/events/load-$name.json"
  emulator load --name "$name" --bin "$bin" --event "$RUN/events/load-$name.json" \
    --seconds "$LOAD_SECONDS" --log "$RUN/logs/load-$name.log" --out "$RUN/load/$name.json" >/dev/null
}
load bench-hello "$RELEASE/bench-hello" "$RUN/events/health.json"
for f in "${HTTP_FUNCTIONS[@]}"; do
  load "$f" "$RELEASE/$f" "$RUN/events/$f.json"
done

# The machine, and everything in one file plus a Markdown summary.
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpus=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "memory_mib=$(awk '/MemTotal/ {printf "%d", $2 / 1024}' /proc/meminfo)"
  echo "kernel=$(uname -sr)"
  echo "arch=$(uname -m)"
  echo "rustc=$(rustc -V)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo '+changes')"
  echo "oha=$("$OHA" --version)"
  echo "load_average_at_start=$LOAD_AT_START"
  echo "load_average_at_end=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "runs=$RUNS"
  echo "load_seconds=$LOAD_SECONDS"
  echo "warm_iterations=$WARM_ITERATIONS"
  echo "throughput_seconds=$THROUGHPUT_SECONDS"
  echo "throughput_connections=$THROUGHPUT_CONNECTIONS"
} >"$RUN/machine.txt"
# The summary (also usable alone on a run directory: python3 scripts/bench_summary.py RUN OUT "http…" "workers…").
python3 scripts/bench_summary.py "$RUN" "$OUT_DIR" "${HTTP_FUNCTIONS[*]}" "${WORKER_FUNCTIONS[*]}"
log "results: $OUT_DIR/bench-results.json, $OUT_DIR/bench-results.md"
