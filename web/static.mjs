// Static files for the web dev servers (web/serve.mjs, web/playground/serve.mjs): content
// types, a path kept inside its folder, a file sent without caching.

import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, join, normalize, sep } from "node:path";

export const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".yaml": "text/yaml; charset=utf-8",
  ".yml": "text/yaml; charset=utf-8",
  ".wasm": "application/wasm",
};

/** `rel` inside `dir`, or null if it would leave it. */
export function inside(dir, rel) {
  const p = normalize(join(dir, rel));
  return p === dir || p.startsWith(dir + sep) ? p : null;
}

/** Send `file` (404 when it is null, missing or a folder). */
export function sendFile(res, file) {
  if (file === null || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    return;
  }
  res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" }).end(readFileSync(file));
}
