// The playground's pure helpers (no DOM, no module): the state carried in a share URL, the
// question asked as a one-case suite, fixture names read from a suite, diagnostic spans mapped
// to text positions. Used by the page (app.js), its worker (worker.js), web/serve.mjs and the
// Node tests.

/** The keys of a top-level YAML map written one key per line at two spaces (`  name: ...`). */
export function sectionKeys(text, section) {
  const out = [];
  let inside = false;
  for (const line of text.split("\n")) {
    if (new RegExp(`^${section}:\\s*(#.*)?$`).test(line)) {
      inside = true;
      continue;
    }
    if (!inside) continue;
    if (/^\S/.test(line) && !line.startsWith("#")) break;
    const m = /^ {2}([A-Za-z0-9_.-]+):/.exec(line);
    if (m) out.push(m[1]);
  }
  return out;
}

/** Every action named in `actions: [...]` lists of role files (suggestions for the question form). */
export function actionNames(texts) {
  const out = new Set();
  for (const text of texts) {
    for (const m of text.matchAll(/^\s*actions:\s*\[([^\]]*)\]/gm)) {
      for (const a of m[1].split(",")) {
        const name = a.trim().replace(/^["']|["']$/g, "");
        if (/^[A-Za-z0-9_.-]+$/.test(name)) out.add(name);
      }
    }
  }
  return [...out].sort();
}

/** A question as a YAML flow value: a fixture name as is, anything else (a `{...}` map) verbatim. */
function flowValue(v) {
  const s = v.trim();
  if (/^[A-Za-z0-9_.-]+$/.test(s)) return s;
  if (/^[{[]/.test(s)) return s.replace(/\s*\n\s*/g, " ");
  return JSON.stringify(s);
}

/**
 * The suite with its `cases:` replaced by one check case asking `q` ({principal, action,
 * resource, context?}): the suite's fixtures, `now` and default context apply, as when a case
 * is written. Returns the text and the 1-based line where the question's case starts.
 */
export function questionSuite(suiteText, q) {
  const lines = suiteText.replace(/\r\n/g, "\n").split("\n");
  const kept = [];
  let inCases = false;
  for (const line of lines) {
    if (/^cases:/.test(line)) {
      inCases = true;
      continue;
    }
    if (inCases && /^[A-Za-z_"']/.test(line)) inCases = false;
    if (!inCases) kept.push(line);
  }
  while (kept.length && kept[kept.length - 1].trim() === "") kept.pop();
  const startLine = kept.length + 2;
  const caseLines = [
    "cases:",
    "  - name: question",
    `    principal: ${flowValue(q.principal)}`,
    `    action: ${flowValue(q.action)}`,
    `    resource: ${flowValue(q.resource)}`,
  ];
  if (q.context && q.context.trim()) caseLines.push(`    context: ${flowValue(q.context)}`);
  caseLines.push("    expect: allow");
  return { text: [...kept, ...caseLines, ""].join("\n"), startLine };
}

/** The JS string index of a UTF-8 byte offset into `text`. */
export function byteToIndex(text, byteOffset) {
  let bytes = 0;
  let i = 0;
  while (i < text.length && bytes < byteOffset) {
    const cp = text.codePointAt(i);
    bytes += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    i += cp >= 0x10000 ? 2 : 1;
  }
  return i;
}

/** The start of each line (JS string indexes). */
export function lineStarts(text) {
  const out = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") out.push(i + 1);
  return out;
}

/**
 * Where a diagnostic's location falls in `text`: `{start, end, line, column}` (string indexes,
 * `end` > `start`; a location without a length spans the word at its start, or one character).
 */
export function span(location, text) {
  const starts = lineStarts(text);
  let start;
  if (typeof location.offset === "number") {
    start = byteToIndex(text, location.offset);
  } else {
    const line = Math.min(Math.max(location.line || 1, 1), starts.length);
    start = Math.min(starts[line - 1] + Math.max((location.column || 1) - 1, 0), text.length);
  }
  let end;
  if (location.length && typeof location.offset === "number") end = byteToIndex(text, location.offset + location.length);
  else if (location.length) end = start + location.length;
  else {
    const word = /^[^\s,:[\]{}]+/.exec(text.slice(start));
    end = start + (word ? word[0].length : 1);
  }
  const nl = text.indexOf("\n", start);
  if (nl !== -1 && end > nl) end = Math.max(nl, start + 1);
  let line = 1;
  while (line < starts.length && starts[line] <= start) line++;
  return { start, end: Math.max(end, start + 1), line, column: start - starts[line - 1] + 1 };
}

/** `file:line:col` references in a message, for links: `[{text, file, line, column}]`. */
export function sourceRefs(message) {
  return [...message.matchAll(/([A-Za-z0-9_./-]+\.(?:ya?ml|json)):(\d+):(\d+)/g)].map((m) => ({
    text: m[0],
    file: m[1],
    line: Number(m[2]),
    column: Number(m[3]),
    index: m.index,
  }));
}

const toBase64Url = (bytes) => {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
};

const fromBase64Url = (s) => {
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
};

async function pipe(bytes, stream) {
  const out = new Response(new Blob([bytes]).stream().pipeThrough(stream));
  return new Uint8Array(await out.arrayBuffer());
}

/** The version of the state format in share URLs. */
export const STATE_VERSION = 1;

/** The state as a URL fragment value: JSON, deflated (the platform's CompressionStream), base64url. */
export async function encodeState(state) {
  const json = new TextEncoder().encode(JSON.stringify({ v: STATE_VERSION, ...state }));
  return toBase64Url(await pipe(json, new CompressionStream("deflate-raw")));
}

/** The state from a fragment value; throws a clear error when it cannot be read. */
export async function decodeState(value) {
  let state;
  try {
    state = JSON.parse(new TextDecoder().decode(await pipe(fromBase64Url(value), new DecompressionStream("deflate-raw"))));
  } catch {
    throw new Error("the shared link is damaged (cannot be decompressed); loaded the seed policy instead");
  }
  if (state?.v !== STATE_VERSION || !Array.isArray(state.files) || typeof state.suite?.text !== "string") {
    throw new Error(`the shared link has an unknown format (v${state?.v}); loaded the seed policy instead`);
  }
  for (const f of state.files) {
    if (typeof f?.name !== "string" || typeof f?.text !== "string") throw new Error("the shared link has a malformed file; loaded the seed policy instead");
  }
  return state;
}
