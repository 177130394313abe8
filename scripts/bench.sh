#!/usr/bin/env bash
# Runs the engine benchmarks (criterion). Not part of the test run.
# Usage: scripts/bench.sh [criterion args, e.g. --quick]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p rolescope-engine --bench decide --locked -- "$@"
