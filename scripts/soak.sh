#!/usr/bin/env bash
# The long soak (issue: fail closed under attack): 1,000,000 requests through a release build of
# the gateway while the bundle is swapped every 100 ms between two revisions with different
# answers; every answer is checked against the revision that served it, the upstream must see
# exactly the allowed requests, and the gateway's memory must stay flat. The test command runs
# the same test with 50,000 requests (debug build).
#
#   scripts/soak.sh [REQUESTS]      default 1000000
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-1000000}"
[ -f "${CARGO_TARGET_DIR:-target}/wasm/rolescope.wasm" ] || cargo xtask wasm
ROLESCOPE_WASM="$PWD/${CARGO_TARGET_DIR:-target}/wasm/rolescope.wasm" ROLESCOPE_SOAK_REQUESTS="$requests" \
  cargo test --release --locked -p rolescope-gateway --test e2e soak -- --nocapture
