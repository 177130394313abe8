#!/usr/bin/env node
// Serves the playground (node:http only, no server logic: any static file server rooted at the
// repository does the same, e.g. `python3 -m http.server` and /web/playground/). The page
// (web/playground/), the compiler module (/bindings/pkg/, built by `cargo xtask wasm`) and the
// seed policies (/policies/), nothing else. Prints the URL.
//
//   node web/playground/serve.mjs [--port 8001] [--host 127.0.0.1] [--pkg bindings/pkg]

import { existsSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

import { inside, sendFile } from "../static.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..", "..");

const { values: opt } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8001" },
    pkg: { type: "string", default: process.env.ROLESCOPE_PKG_DIR ?? join(root, "bindings", "pkg") },
  },
});

const pkg = resolve(opt.pkg);
if (!existsSync(join(pkg, "compiler", "web", "rolescope_wasm.js"))) {
  console.error(`web/playground/serve.mjs: ${pkg}/compiler/web/ is missing: run \`cargo xtask wasm\``);
  process.exit(1);
}

/** URL prefix -> folder. */
const MOUNTS = [
  ["/web/playground/", here],
  ["/bindings/pkg/", pkg],
  ["/policies/", join(root, "policies")],
];

const server = createServer((req, res) => {
  if (req.method !== "GET" && req.method !== "HEAD") return res.writeHead(405).end();
  let path;
  try {
    path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
  } catch {
    return res.writeHead(400).end();
  }
  if (path === "/" || path === "/web/playground") return res.writeHead(302, { location: "/web/playground/" }).end();
  if (path === "/favicon.ico") return res.writeHead(204).end();
  if (path === "/web/playground/") path = "/web/playground/index.html";
  const mount = MOUNTS.find(([prefix]) => path.startsWith(prefix));
  if (!mount || path.endsWith(".mjs")) return res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
  return sendFile(res, inside(mount[1], path.slice(mount[0].length)));
});

server.listen(Number(opt.port), opt.host, () => {
  const { port } = server.address();
  console.log(`rolescope playground: http://${opt.host}:${port}/web/playground/`);
});
