#!/usr/bin/env bash
# The browser test: the demo console in headless chromium (Debian's /usr/bin/chromium, driven
# by playwright-core) against the demo upstream, the gateway and web/serve.mjs on 127.0.0.1,
# plus the parity corpus in the browser, and the playground (web/playground/, served by
# web/playground/serve.mjs) edited, run and shared in the same chromium. Installs/builds what is missing: chromium (apt-get),
# tests/browser/node_modules (npm ci), the debug binaries, bindings/pkg (cargo xtask wasm;
# ROLESCOPE_SKIP_WASM_BUILD=1 skips it when fresh), target/parity. Screenshots go to
# target/artifacts/. ROLESCOPE_WEB_ENFORCER=edge puts the edge worker in the gateway's place.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
if [ "${ROLESCOPE_WEB_ENFORCER:-gateway}" = edge ] && [ ! -x edge/node_modules/.bin/workerd ]; then
  (cd edge && npm ci --no-audit --no-fund)
fi
cargo build -q -p rolescope-demo-upstream -p rolescope-gateway -p rolescope-cli
if [ "${ROLESCOPE_SKIP_WASM_BUILD:-0}" != 1 ] || [ ! -f bindings/pkg/package.json ]; then
  cargo xtask wasm
fi
cargo run -q -p rolescope-parity
exec node --test tests/browser/console.test.mjs tests/browser/playground.test.mjs
