#!/usr/bin/env bash
# Runs every test of the project. Installs what it needs first (idempotent).
# Used by the README's test command and by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm32 target"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown

step "format"
cargo fmt --all --check

step "clippy (all targets, all features, warnings are errors)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "engine builds for wasm32-unknown-unknown"
cargo build -p rolescope-engine --target wasm32-unknown-unknown --release --locked

step "docs build without warnings"
RUSTDOCFLAGS="-D warnings" cargo doc -p rolescope-engine --no-deps --all-features --locked

step "benchmarks compile, in the dev profile (shared with the tests; they run with scripts/bench.sh, not here)"
cargo build --workspace --benches --locked

step "peer benchmarks (bench/peers, a workspace of its own): format, clippy, compile, and the peers' agreement with the engine"
(cd bench/peers && cargo fmt --check && cargo clippy --all-targets --locked -- -D warnings \
  && cargo build --benches --locked && cargo test --locked)

step "wasm module and npm package (cargo xtask wasm: installs wasm-bindgen-cli and binaryen if missing)"
cargo xtask wasm

step "real proxies for the gateway's e2e tests: nginx and Caddy from Debian (installed when missing)"
missing=()
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || missing+=(nginx)
command -v caddy >/dev/null || missing+=(caddy)
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "tests (unit, public API, corpus, CLI, doc tests; the gateway runs the module just built)"
ROLESCOPE_WASM="${CARGO_TARGET_DIR:-$PWD/target}/wasm/rolescope.wasm" cargo test --workspace --all-features --locked

step "Kubernetes manifests (deploy/kubernetes): kubernetes-validate --strict offline (installs it in a venv under target/), their configurations through check-config"
scripts/test-deploy.sh

step "container image (scripts/image.sh --check): static musl binary, module and config FROM scratch with podman (installs podman); inspect, copy the binary out, one allow and one deny"
scripts/image.sh --check

step "parity corpus: native decisions (target/parity)"
cargo run -q --locked -p rolescope-parity

step "web: the UI gate, the demo console in headless chromium, the edge worker in workerd (installs chromium, playwright-core, workerd)"
ROLESCOPE_SKIP_WASM_BUILD=1 scripts/test-web.sh

step "Node: the npm package runs the corpus, the parity corpora (checks and HTTP), its error paths, its types and the gate"
node --test bindings/npm/test/

step "peer benchmarks' agreement check in Node (bench/js: cedar-wasm, CASL, casbin must answer as the npm package; timing runs in cargo xtask bench, not here)"
npm ci --prefix bench/js --no-audit --no-fund --loglevel=error
node --test bench/js/

step "the main command: scripts/demo.sh with debug binaries, checking every curl line it prints"
DEMO_EXIT=1 DEMO_PROFILE=dev DEMO_SKIP_WASM_BUILD=1 DEMO_UPSTREAM_PORT=28081 DEMO_GATEWAY_PORT=28080 \
  DEMO_ADMIN_PORT=29090 DEMO_CONSOLE_PORT=28000 scripts/demo.sh

step "fuzz smoke: every target's committed regressions, then a short run of each (scripts/fuzz.sh)"
scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
