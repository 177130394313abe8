// Test support shared by the edge test (edge/test/) and the browser test (tests/browser/):
// where things are, free loopback ports, demo tokens signed like `rolescope-gateway mint`, and
// the processes of a stack (demo upstream, gateway, workerd) started on 127.0.0.1 and stopped
// when the test ends. Not a test file itself (no `.test.`).

import { spawn } from "node:child_process";
import { createPrivateKey, sign } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, "target");
/** Where the Rust binaries are (`cargo build` output; ROLESCOPE_BIN_DIR overrides). */
export const binDir = process.env.ROLESCOPE_BIN_DIR ? resolve(process.env.ROLESCOPE_BIN_DIR) : join(targetDir, "debug");
/** The npm package (`cargo xtask wasm`; ROLESCOPE_PKG_DIR overrides). */
export const pkgDir = process.env.ROLESCOPE_PKG_DIR ? resolve(process.env.ROLESCOPE_PKG_DIR) : join(root, "bindings", "pkg");
/** The parity corpus (`cargo run -p rolescope-parity`). */
export const parityDir = join(targetDir, "parity");
export const keysDir = join(root, "gateway", "demo", "keys");
export const ISSUER = "rolescope-demo";
export const AUDIENCE = "rolescope-gateway";

export const bin = (name) => join(binDir, name);

/**
 * The gateway binary: $ROLESCOPE_GATEWAY_BIN, else the one in the binaries folder (a debug
 * build compiles the module with an unoptimized cranelift: about 20 s a start, hence the long
 * start-up allowance below).
 */
export function gatewayBin() {
  return process.env.ROLESCOPE_GATEWAY_BIN ? resolve(process.env.ROLESCOPE_GATEWAY_BIN) : bin("rolescope-gateway");
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.unref();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The seed policy folders' bundles and HTTP cases of the parity corpus, by folder. */
export function httpCorpus() {
  const file = join(parityDir, "http.jsonl");
  if (!existsSync(file)) return null;
  const byPolicy = new Map();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line) continue;
    const c = JSON.parse(line);
    if (!byPolicy.has(c.policy)) byPolicy.set(c.policy, []);
    byPolicy.get(c.policy).push(c);
  }
  return byPolicy;
}

/** The bundle the parity corpus wrote for a policy folder (e.g. `policies/msp-panel`). */
export const bundleOf = (folder) => join(parityDir, "bundles", `${folder.replaceAll("/", "__")}.json`);

// ---------------------------------------------------------------------------------------------
// Tokens

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** A signing key of gateway/demo/keys (`demo-es256` or `demo-rs256`), or any PEM file. */
export function signer(kid = "demo-es256", pemFile = join(keysDir, `${kid}.pem`)) {
  const key = createPrivateKey(readFileSync(pemFile));
  const alg = key.asymmetricKeyType === "ec" ? "ES256" : "RS256";
  return { kid, alg, key };
}

/**
 * A JWT for `principal` as `rolescope-gateway mint` makes it (claims `sub`, `status`,
 * `assignments`, `attributes`, `iss`, `aud`, `iat`, `nbf`, `exp`); `over` replaces claims
 * (`undefined` removes one) and `header` header fields.
 */
export function token(principal, { by = signer(), over = {}, header = {}, ttl = 3600 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: principal.id, iss: ISSUER, aud: AUDIENCE, iat: now, nbf: now, exp: now + ttl };
  if (principal.status !== undefined) claims.status = principal.status;
  if (principal.assignments?.length) claims.assignments = principal.assignments;
  if (principal.attributes && Object.keys(principal.attributes).length) claims.attributes = principal.attributes;
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete claims[k];
    else claims[k] = v;
  }
  const head = { typ: "JWT", alg: by.alg, kid: by.kid, ...header };
  const data = `${b64url(JSON.stringify(head))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign("sha256", Buffer.from(data), by.alg === "ES256" ? { key: by.key, dsaEncoding: "ieee-p1363" } : by.key);
  return `${data}.${b64url(sig)}`;
}

// ---------------------------------------------------------------------------------------------
// HTTP: raw targets (node:http sends the path exactly as given)

/** Send one request; resolves `{status, headers, body, json}` (json: parsed or null). */
export function send(base, { method = "GET", target, headers = [], body } = {}) {
  const url = new URL(base);
  return new Promise((ok, fail) => {
    const req = httpRequest(
      // Raw headers (repeats kept); node:http adds no Host to a raw list.
      { host: url.hostname, port: url.port, method, path: target, headers: [["host", url.host], ...headers].flat(), agent: false },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json = null;
          try {
            json = JSON.parse(text);
          } catch {
            json = null;
          }
          ok({ status: res.statusCode, headers: res.headers, body: text, json });
        });
      },
    );
    req.on("error", fail);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Wait until `url` answers (any status) or `ms` passes. */
export async function waitFor(url, ms = 20000, what = url) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    try {
      return await send(url, { target: new URL(url).pathname });
    } catch (e) {
      last = e;
      await sleep(100);
    }
  }
  throw new Error(`${what} did not come up in ${ms} ms: ${last}`);
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Processes started by this test run, stopped (by pid) at exit. */
const children = new Set();
process.on("exit", () => {
  for (const c of children) c.kill("SIGTERM");
});

/** Start `cmd`; its output goes to `log` (a file). Throws if it exits before `stop()`. */
export function start(cmd, args, { env = {}, cwd = root, log } = {}) {
  const out = log ? ["ignore", "pipe", "pipe"] : ["ignore", "inherit", "inherit"];
  const child = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: out });
  const lines = [];
  if (log) {
    for (const s of [child.stdout, child.stderr]) {
      s.on("data", (d) => {
        lines.push(d.toString());
        if (lines.length > 2000) lines.shift();
      });
    }
  }
  children.add(child);
  let stopped = false;
  child.on("exit", (code, signal) => {
    children.delete(child);
    if (log) writeFileSync(log, lines.join(""));
    if (!stopped && code !== 0 && code !== null) console.error(`${cmd} exited with ${code ?? signal}:\n${lines.join("").slice(-4000)}`);
  });
  return {
    child,
    output: () => lines.join(""),
    stop() {
      stopped = true;
      if (child.exitCode === null) child.kill("SIGTERM");
      return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.on("exit", () => r())));
    },
  };
}

/** The demo upstream on a free port: `{url, stop, log(), clearLog()}`. */
export async function startUpstream() {
  const port = await freePort();
  const p = start(bin("rolescope-demo-upstream"), ["--listen", `127.0.0.1:${port}`], { log: join(tmpdir(), `rolescope-upstream-${port}.log`) });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/__health`, 20000, "the demo upstream");
  return {
    ...p,
    url,
    async log() {
      return (await send(url, { target: "/__log" })).json;
    },
    async clearLog() {
      await send(url, { method: "DELETE", target: "/__log" });
    },
  };
}

/** The demo's one gateway configuration (its identity section is what the demo's tokens must pass). */
export const demoConfig = join(root, "gateway", "demo", "gateway.yaml");

/**
 * The gateway for one bundle on free ports, on the demo configuration (gateway/demo/gateway.yaml,
 * as scripts/demo.sh runs it) with this run's ports, module, bundle and decision log set by the
 * gateway's environment overrides: `{url, admin, stop, decisions}` (`decisions`: the decision
 * log file, when `log` is true).
 */
export async function startGateway(bundle, upstream, { log = false, env = {} } = {}) {
  const [port, admin] = [await freePort(), await freePort()];
  const dir = mkdtempSync(join(tmpdir(), "rolescope-gw-"));
  const decisions = join(dir, "decisions.jsonl");
  const p = start(gatewayBin(), ["serve", "--config", demoConfig], {
    log: join(dir, "gateway.log"),
    env: {
      ROLESCOPE_GATEWAY_LISTEN: `127.0.0.1:${port}`,
      ROLESCOPE_GATEWAY_ADMIN_LISTEN: `127.0.0.1:${admin}`,
      ROLESCOPE_GATEWAY_UPSTREAM: upstream,
      ROLESCOPE_GATEWAY_MODULE: join(targetDir, "wasm", "rolescope.wasm"),
      ROLESCOPE_GATEWAY_POLICY_FILE: bundle,
      ROLESCOPE_GATEWAY_POLICY_WATCH: "false",
      ...(log ? { ROLESCOPE_GATEWAY_DECISION_LOG: "file", ROLESCOPE_GATEWAY_DECISION_LOG_PATH: decisions } : { ROLESCOPE_GATEWAY_DECISION_LOG: "off" }),
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`http://127.0.0.1:${admin}/livez`, 240000, `the gateway (${gatewayBin()})`);
  } catch (e) {
    await p.stop();
    throw new Error(`${e.message}\n${p.output().slice(-3000)}`);
  }
  return { ...p, url, admin: `http://127.0.0.1:${admin}`, config: demoConfig, decisions };
}

/**
 * The edge worker in workerd for one bundle on a free port: a private copy of edge/ with its
 * dist/ (the package's web build + the bundle), `{url, stop}`.
 */
export async function startEdge(bundle, upstream, env = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "rolescope-edge-"));
  const build = start(process.execPath, [join(root, "edge", "build.mjs"), "--bundle", bundle, "--out", dir, "--pkg", pkgDir], { log: join(dir, "build.log") });
  await new Promise((ok, fail) => build.child.on("exit", (code) => (code === 0 ? ok() : fail(new Error(`edge/build.mjs failed:\n${build.output()}`)))));
  const workerd = join(root, "edge", "node_modules", ".bin", "workerd");
  if (!existsSync(workerd)) throw new Error(`${workerd} is missing: run \`npm ci\` in edge/`);
  const p = start(workerd, ["serve", join(dir, "config.capnp"), "--socket-addr", `http=127.0.0.1:${port}`], {
    cwd: dir,
    log: join(dir, "workerd.log"),
    env: {
      ROLESCOPE_EDGE_UPSTREAM: upstream,
      ROLESCOPE_EDGE_JWKS: readFileSync(join(keysDir, "jwks.json"), "utf8"),
      ROLESCOPE_EDGE_JWT_ISSUER: ISSUER,
      ROLESCOPE_EDGE_JWT_AUDIENCE: AUDIENCE,
      ...env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/`, 30000, "workerd");
  return { ...p, url, dir };
}
