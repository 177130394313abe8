#!/usr/bin/env bash
# The long versions of the fail-closed checks (not part of the test command):
#   - every fuzz target for 10 minutes (scripts/fuzz.sh 600);
#   - the soak: 1,000,000 requests through a release gateway while the bundle swaps every 100 ms
#     (scripts/soak.sh 1000000);
#   - the differential test with 1,000,000 generated policy/request pairs.
#
#   scripts/long.sh [FUZZ_SECONDS] [SOAK_REQUESTS] [DIFF_CASES]
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_secs="${1:-600}"
soak="${2:-1000000}"
diff_cases="${3:-1000000}"
echo "==> differential: $diff_cases cases"
ROLESCOPE_DIFF_CASES="$diff_cases" cargo test --release --locked -p rolescope-engine --test differential
echo "==> soak: $soak requests"
scripts/soak.sh "$soak"
echo "==> fuzz: ${fuzz_secs}s per target"
scripts/fuzz.sh "$fuzz_secs"
