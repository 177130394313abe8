# workerd configuration of the rolescope edge enforcer (local runs and tests).
#
#   node edge/build.mjs --policy policies/juniper-mist-msp     # writes edge/dist/
#   ROLESCOPE_EDGE_UPSTREAM=http://127.0.0.1:8081 ROLESCOPE_EDGE_JWKS="$(cat gateway/demo/keys/jwks.json)" \
#     edge/node_modules/.bin/workerd serve edge/config.capnp --socket-addr http=127.0.0.1:8787
#
# It listens on 127.0.0.1:8787 (`--socket-addr http=127.0.0.1:PORT` for another port) only; the worker may reach loopback addresses only (the upstream).
# Settings come from the environment (ROLESCOPE_EDGE_*), so one file serves every test run.

using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edge),
    # The worker's `fetch()` goes here: loopback only (the demo upstream, a local JWKS).
    (name = "loopback", network = (allow = ["local"], deny = [])),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "main"),
  ],
);

const edge :Workerd.Worker = (
  modules = [
    (name = "worker.mjs", esModule = embed "worker.mjs"),
    (name = "jwt.mjs", esModule = embed "jwt.mjs"),
    # The npm package's `web` build and the policy bundle (edge/build.mjs copies/builds them).
    (name = "dist/rolescope_wasm.js", esModule = embed "dist/rolescope_wasm.js"),
    (name = "dist/rolescope_wasm_bg.wasm", wasm = embed "dist/rolescope_wasm_bg.wasm"),
    (name = "dist/bundle.json", text = embed "dist/bundle.json"),
  ],
  compatibilityDate = "2025-09-01",
  globalOutbound = "loopback",
  bindings = [
    (name = "UPSTREAM", fromEnvironment = "ROLESCOPE_EDGE_UPSTREAM"),
    (name = "JWKS", fromEnvironment = "ROLESCOPE_EDGE_JWKS"),
    (name = "JWT_ISSUER", fromEnvironment = "ROLESCOPE_EDGE_JWT_ISSUER"),
    (name = "JWT_AUDIENCE", fromEnvironment = "ROLESCOPE_EDGE_JWT_AUDIENCE"),
    (name = "DECISION_LOG", fromEnvironment = "ROLESCOPE_EDGE_DECISION_LOG"),
    (name = "DECISION_LOG_INPUT", fromEnvironment = "ROLESCOPE_EDGE_DECISION_LOG_INPUT"),
    (name = "DECISION_LOG_PRINCIPAL_ATTRIBUTES", fromEnvironment = "ROLESCOPE_EDGE_DECISION_LOG_PRINCIPAL_ATTRIBUTES"),
    (name = "DECISION_LOG_HEADERS", fromEnvironment = "ROLESCOPE_EDGE_DECISION_LOG_HEADERS"),
    (name = "DECISION_LOG_MASK", fromEnvironment = "ROLESCOPE_EDGE_DECISION_LOG_MASK"),
  ],
);
