#!/usr/bin/env bash
# Fuzz smoke test: replay every target's committed regressions, then fuzz each target for a
# short time from its seeds (CI calls this with the default).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 20 s each, every target
#   scripts/fuzz.sh 600                       the long run (10 minutes per target)
#
# Targets (fuzz/fuzz_targets/): parse_policy, condition, http_route, decide, wasm_abi. Needs the
# nightly toolchain; installs cargo-fuzz when missing. wasm_abi runs the engine's wasm module
# (target/wasm/rolescope.wasm): built with `cargo xtask wasm` when missing. A crash stops the
# script (non-zero) and leaves its input under fuzz/artifacts/<target>/: minimize it
# (`cargo +nightly fuzz tmin`), fix it, and commit it under fuzz/regressions/<target>/, where
# engine/tests/fuzz_regressions.rs (and this script, for wasm_abi) replays it.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-20}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(parse_policy condition http_route decide wasm_abi)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  cargo +nightly install cargo-fuzz --locked
fi

# Sanitizers off (the engine forbids unsafe code), debug assertions on (overflow panics).
flags=(-s none -a)
for t in "${targets[@]}"; do
  extra=()
  if [ "$t" = wasm_abi ]; then
    extra=(--features wasm)
    [ -f target/wasm/rolescope.wasm ] || cargo xtask wasm
  fi
  regressions="fuzz/regressions/$t"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    echo "== $t: replaying $(ls "$regressions" | wc -l) regression inputs"
    cargo +nightly fuzz run "${flags[@]}" "${extra[@]}" "$t" "$regressions" -- -runs=0
  fi
  mkdir -p "fuzz/corpus/$t"
  options=(-max_total_time="$secs" -timeout=20 -rss_limit_mb=4096 -max_len=65536 -print_final_stats=1)
  [ -f "fuzz/dicts/$t.dict" ] && options+=(-dict="fuzz/dicts/$t.dict")
  echo "== $t: fuzzing for ${secs}s"
  cargo +nightly fuzz run "${flags[@]}" "${extra[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- "${options[@]}"
done
