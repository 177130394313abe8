#!/usr/bin/env bash
# The web side of the test command: the UI gate (Node), the demo console and the playground in
# headless chromium, the edge worker in workerd. Installs what is missing (chromium via apt-get, npm ci in
# tests/browser and edge), builds the module, binaries and parity corpus once, and exits
# non-zero if any part fails. Works with CI=true and only the package registries reachable.
set -uo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  apt-get update -qq && apt-get install -y -qq chromium >/dev/null || { echo "test-web: cannot install chromium" >&2; exit 1; }
fi
for dir in tests/browser edge; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund) || { echo "test-web: npm ci in $dir failed" >&2; exit 1; }
  fi
done
set -e
cargo build -q -p rolescope-demo-upstream -p rolescope-gateway -p rolescope-cli
if [ "${ROLESCOPE_SKIP_WASM_BUILD:-0}" != 1 ] || [ ! -f bindings/pkg/package.json ]; then
  cargo xtask wasm
fi
cargo run -q -p rolescope-parity
set +e
export ROLESCOPE_SKIP_WASM_BUILD=1

failed=()
echo "== test-web: UI gate (node --test bindings/npm/test/gate.test.mjs)"
node --test bindings/npm/test/gate.test.mjs || failed+=("gate")
echo "== test-web: demo console and playground in chromium (tests/browser/run.sh)"
tests/browser/run.sh || failed+=("browser")
echo "== test-web: edge worker in workerd (edge/test/run.sh)"
edge/test/run.sh || failed+=("edge")

if [ ${#failed[@]} -gt 0 ]; then
  echo "test-web: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test-web: gate, browser and edge tests passed"
