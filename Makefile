# The two set-up commands are `make run` and `make test`; the rest are conveniences.
.PHONY: run test smoke soak lint fmt build-release bench schemathesis fuzz sam-local

run: ## Serve the API with demo data on 127.0.0.1:$${PORT:-3000}
	bash scripts/run-local.sh

test: ## Start DynamoDB Local, moto and OpenBao, run all tests, stop them
	bash scripts/test.sh

smoke: ## Start `make run`, create the spec VM, stop it (CI runs this)
	bash scripts/smoke-run.sh

soak: ## Start `make run`, drive $${SOAK_CLIENTS:-4} clients through every endpoint for $${SOAK_MINUTES:-10} min, check end states, stream checkpoint, logs, RSS
	bash scripts/soak.sh

sam-local: ## Every function under `sam local invoke` and `sam local start-api` against the local run (Docker set up as root; docs/local-run.md)
	bash scripts/sam-local.sh

lint: ## Formatting and clippy, as CI runs them
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

fmt:
	cargo fmt --all

build-release: ## Release build of every binary (x86_64, for measurements)
	cargo build --release --workspace --locked

bench: ## Release build, then cold start, warm latency, sizes, RSS, throughput -> docs/bench-results.*
	bash scripts/bench.sh

schemathesis: ## schemathesis (every check) against `make run` and openapi.json
	bash scripts/schemathesis.sh

fuzz: ## cargo-fuzz targets of fuzz/ (stable + RUSTC_BOOTSTRAP=1), each for $${FUZZ_SECONDS:-300} s
	bash scripts/fuzz.sh
