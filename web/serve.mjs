#!/usr/bin/env node
// The demo console's dev server (node:http only): the page (web/console/), the npm package's
// `web` build (/pkg/), the UI gate (/gate/), the policy bundle the gateway enforces
// (/bundle.json), demo tokens for every principal the policy's suite files (/tokens.json,
// minted at start with `rolescope-gateway mint`), and a same-origin proxy of /api/ to the
// gateway. Prints the URL.
//
//   node web/serve.mjs --policy juniper-mist-msp --bundle FILE --gateway http://127.0.0.1:8080 [--port 8000]
//
// Without --bundle the bundle is built with `rolescope build` ($ROLESCOPE_CLI, else cargo).

import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

import { PAGES } from "./console/catalog.js";
import { sectionKeys } from "./playground/model.js";
import { inside, sendFile } from "./static.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, "target");

const { values: opt } = parseArgs({
  options: {
    policy: { type: "string", default: "juniper-mist-msp" },
    bundle: { type: "string" },
    gateway: { type: "string", default: "http://127.0.0.1:8080" },
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8000" },
    pkg: { type: "string", default: process.env.ROLESCOPE_PKG_DIR ?? join(root, "bindings", "pkg") },
    mint: { type: "string", default: join(process.env.ROLESCOPE_BIN_DIR ?? join(targetDir, "debug"), "rolescope-gateway") },
    key: { type: "string", default: join(root, "gateway", "demo", "keys", "demo-es256.pem") },
    ttl: { type: "string", default: "24h" },
  },
});

const page = PAGES[opt.policy];
if (!page) {
  console.error(`web/serve.mjs: no console page for \`${opt.policy}\` (have: ${Object.keys(PAGES).join(", ")})`);
  process.exit(2);
}

function bundlePath() {
  if (opt.bundle) return resolve(opt.bundle);
  const out = join(targetDir, "web", `${opt.policy}.bundle.json`);
  mkdirSync(dirname(out), { recursive: true });
  const [cmd, args] = process.env.ROLESCOPE_CLI ? [process.env.ROLESCOPE_CLI, []] : ["cargo", ["run", "-q", "-p", "rolescope-cli", "--"]];
  execFileSync(cmd, [...args, "build", join(root, "policies", opt.policy), "-o", out], { cwd: root, stdio: ["ignore", "ignore", "inherit"] });
  return out;
}

/** The keys of the suite's top-level `principals:` map, in order. */
export const suitePrincipals = (text) => sectionKeys(text, "principals");

async function mintTokens() {
  const suite = join(root, page.suite);
  const keys = suitePrincipals(readFileSync(suite, "utf8"));
  if (keys.length === 0) throw new Error(`${page.suite} files no principals`);
  if (!existsSync(opt.mint)) throw new Error(`${opt.mint} is missing: cargo build -p rolescope-gateway`);
  const run = promisify(execFile);
  return Promise.all(
    keys.map(async (key) => {
      const { stdout } = await run(opt.mint, ["mint", "--suite", suite, "--principal", key, "--key", opt.key, "--ttl", opt.ttl], { cwd: root });
      const token = stdout.trim();
      const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString("utf8"));
      return { key, id: claims.sub, token };
    }),
  );
}

function proxy(req, res, gateway) {
  const up = new URL(gateway);
  const headers = { ...req.headers, host: up.host };
  const out = httpRequest({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.statusMessage, r.headers);
    r.pipe(res);
  });
  out.on("error", (e) => {
    if (!res.headersSent) res.writeHead(502, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "bad_gateway", reason: "gateway_unreachable", detail: String(e.message) }));
  });
  req.pipe(out);
}

async function main() {
  const bundle = bundlePath();
  const tokens = await mintTokens();
  const web = join(resolve(opt.pkg), "web");
  const consoleDir = join(here, "console");
  const gateDir = join(root, "bindings", "npm", "gate");
  const config = JSON.stringify({ policy: opt.policy });
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (req.url.startsWith("/api/")) return proxy(req, res, opt.gateway);
    if (req.method !== "GET" && req.method !== "HEAD") return res.writeHead(405).end();
    if (path === "/" || path === "/index.html") return sendFile(res, join(consoleDir, "index.html"));
    if (path === "/config.json") return res.writeHead(200, { "content-type": "application/json" }).end(config);
    if (path === "/tokens.json") return res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(tokens));
    if (path === "/bundle.json") return sendFile(res, bundle);
    if (path === "/favicon.ico") return res.writeHead(204).end();
    if (path.startsWith("/console/")) return sendFile(res, inside(consoleDir, path.slice("/console/".length)));
    if (path.startsWith("/pkg/")) return sendFile(res, inside(web, path.slice("/pkg/".length)));
    if (path.startsWith("/gate/")) return sendFile(res, inside(gateDir, path.slice("/gate/".length)));
    return res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  });
  server.listen(Number(opt.port), opt.host, () => {
    const { port } = server.address();
    console.log(`rolescope console: http://${opt.host}:${port}/ (policy ${opt.policy}, ${tokens.length} demo users, API via ${opt.gateway})`);
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(`web/serve.mjs: ${e.message ?? e}`);
    process.exit(1);
  });
}
