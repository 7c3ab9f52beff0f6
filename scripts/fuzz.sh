#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (`make fuzz`), on the stable toolchain with RUSTC_BOOTSTRAP=1:
# installs cargo-fuzz into .local/cargo-fuzz if missing, then runs each target for FUZZ_SECONDS
# (default 300) at low CPU priority. New inputs go to a scratch corpus in .local/fuzz/corpus/;
# the committed corpus fuzz/corpus/<target> and the inputs of crashes found so far,
# fuzz/regressions/<target> (replayed first: a crash not yet fixed fails at once), only seed it.
# FUZZ_UPDATE_CORPUS=1 merges the new inputs into fuzz/corpus/<target>, minimized with
# `cargo fuzz cmin`. fuzz/dict/<target>.dict is the target's libFuzzer dictionary. Crash inputs
# land in fuzz/artifacts/<target>/; logs in .local/logs/fuzz-<target>.log.
# Arguments: the targets to run (default: every target). Exit status non-zero if any crashed.
# Environment: FUZZ_SECONDS, FUZZ_NICE (default 19), FUZZ_UPDATE_CORPUS, FUZZ_IGNORE_PANIC
# (panic messages to tolerate, `|`-separated; only to fuzz on past an already reported crash).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
CARGO_FUZZ_VERSION="0.13.2"
FUZZ_SECONDS="${FUZZ_SECONDS:-300}"
FUZZ_NICE="${FUZZ_NICE:-19}"
CARGO_FUZZ="$LOCAL/cargo-fuzz/bin/cargo-fuzz"
export RUSTC_BOOTSTRAP=1

need cargo "install Rust (cargo)"
need c++ "libfuzzer-sys builds libFuzzer with a C++ compiler: install g++ or clang"
if [ ! -x "$CARGO_FUZZ" ]; then
  log "installing cargo-fuzz $CARGO_FUZZ_VERSION into .local/cargo-fuzz"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION" --root "$LOCAL/cargo-fuzz"
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <("$CARGO_FUZZ" list)
fi

mkdir -p "$LOCAL/logs"
failed=()
for target in "${targets[@]}"; do
  work="$LOCAL/fuzz/corpus/$target"
  logfile="$LOCAL/logs/fuzz-$target.log"
  mkdir -p "$work" "fuzz/corpus/$target"
  log "fuzzing '$target' for ${FUZZ_SECONDS}s (log: ${logfile#"$ROOT"/})"
  seeds=("fuzz/corpus/$target")
  if [ -d "fuzz/regressions/$target" ]; then seeds+=("fuzz/regressions/$target"); fi
  extra=()
  if [ -f "fuzz/dict/$target.dict" ]; then extra+=("-dict=fuzz/dict/$target.dict"); fi
  status=0
  nice -n "$FUZZ_NICE" "$CARGO_FUZZ" run "$target" "$work" "${seeds[@]}" -- \
    -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "${extra[@]}" 2>&1 | tee "$logfile" || status=$?
  summary="$(grep -aE '^#[0-9]+[[:space:]]+DONE ' "$logfile" | tail -1 || true)"
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$logfile" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logfile" | tail -1)"
  if [ "$status" -ne 0 ]; then
    failed+=("$target")
    log "'$target' FAILED (exit $status): see ${logfile#"$ROOT"/} and fuzz/artifacts/$target/"
  else
    log "'$target': ${execs:-?} executions, ${rate:-?}/s, ${summary:-no summary}; 0 crashes"
  fi
  if [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ] && [ "$status" -eq 0 ]; then
    cp -n "$work"/* "fuzz/corpus/$target"/ 2>/dev/null || true
    nice -n "$FUZZ_NICE" "$CARGO_FUZZ" cmin "$target" "fuzz/corpus/$target"
    log "'$target': corpus $(find "fuzz/corpus/$target" -type f | wc -l) files, $(du -sh "fuzz/corpus/$target" | cut -f1)"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  log "crashed: ${failed[*]}"
  exit 1
fi
log "every target ran ${FUZZ_SECONDS}s without a crash"
