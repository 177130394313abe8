#!/usr/bin/env bash
# The long versions of the fail-closed checks (not part of the test command):
#   - every fuzz target for 10 minutes (scripts/fuzz.sh 600);
#   - the soak: 1,000,000 requests through a release gateway while the bundle swaps every 100 ms
#     (scripts/soak.sh 1000000);
#   - the differential test with 1,000,000 generated policy/request pairs;
#   - the gateway's bypass runs (issue 16): the differential framing test with 5,000 generated
#     byte streams, and 10,000 distinct tokens of 151 assignments each (0 errors, RSS within
#     the bound gateway/README.md states).
#
#   scripts/long.sh [FUZZ_SECONDS] [SOAK_REQUESTS] [DIFF_CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_secs="${1:-600}"
soak="${2:-1000000}"
diff_cases="${3:-1000000}"
echo "==> differential: $diff_cases cases"
ROLESCOPE_DIFF_CASES="$diff_cases" cargo test --release --locked -p rolescope-engine --test differential
echo "==> gateway framing differential (5000 streams) and 10,000 large principals"
ROLESCOPE_FRAMING_CASES=5000 ROLESCOPE_PRINCIPALS=10000 \
  cargo test --release --locked -p rolescope-gateway --test e2e -- \
  framing::gateway_and_a_strict_parser_agree_on_request_boundaries bypass::memory_per_principal_is_bounded
echo "==> soak: $soak requests"
scripts/soak.sh "$soak"
echo "==> fuzz: ${fuzz_secs}s per target"
scripts/fuzz.sh "$fuzz_secs"
