#!/usr/bin/env bash
# The edge worker's tests: edge/jwt.mjs in Node, then the worker in workerd on 127.0.0.1 in
# front of the demo upstream over the parity corpus's HTTP cases, compared with the gateway.
# Installs/builds what is missing: edge/node_modules (npm ci: workerd), the debug binaries,
# bindings/pkg (cargo xtask wasm, skipped with ROLESCOPE_SKIP_WASM_BUILD=1 when it is fresh),
# target/parity (cargo run -p rolescope-parity).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x edge/node_modules/.bin/workerd ]; then
  (cd edge && npm ci --no-audit --no-fund)
fi
cargo build -q -p rolescope-demo-upstream -p rolescope-gateway -p rolescope-cli
if [ "${ROLESCOPE_SKIP_WASM_BUILD:-0}" != 1 ] || [ ! -f bindings/pkg/package.json ]; then
  cargo xtask wasm
fi
cargo run -q -p rolescope-parity
exec node --test edge/test/jwt.test.mjs edge/test/edge.test.mjs edge/test/records.test.mjs
