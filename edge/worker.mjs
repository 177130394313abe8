// rolescope edge enforcer: a module worker (Cloudflare Workers / workerd) in front of an API.
// It runs the npm package's WebAssembly module (the `web` build, byte for byte the module the
// gateway runs) on the same policy bundle, both imported as modules, and enforces exactly as
// the gateway does (gateway/src/server/{proxy,reject,identity}.rs):
//   1. refuse ambiguous requests (two Authorization headers, a token in the query string);
//   2. verify the bearer token with WebCrypto against a JWKS (edge/jwt.mjs);
//   3. map the request through the policy's route table and path normalization
//      (`policy.authorizeHttp`, `authorizeHttpAnonymous`) and decide;
//   4. forward the allowed ones to UPSTREAM with the gateway's header rules, or answer the
//      gateway's status and JSON body `{"error","reason","decision_id"}`.
// Every failure denies: no policy, an engine fault, a malformed token or request.
//
// Environment (wrangler.toml [vars] / workerd bindings):
//   UPSTREAM        base URL of the API, e.g. https://api.example.com (required)
//   JWT_ISSUER      expected `iss` (required)          JWT_AUDIENCE   expected `aud` (required)
//   JWKS            the key set, JSON text             JWKS_URL       or where to fetch it
//   JWT_ALGORITHMS  default "RS256,ES256"              JWT_LEEWAY     seconds, default 30
//   MAX_BODY_BYTES  default 10485760                   UPSTREAM_TIMEOUT_MS  default 30000
//   DECISION_LOG    "stdout" (default): one JSON line per decision, the gateway's record shape
//                   (`rolescope-decision/1`, gateway/README.md); "off": none
//   DECISION_LOG_INPUT  "on" (default): records carry `input` (the principal as decided, the
//                   request headers the route table reads) for `rolescope explain --log` and
//                   `rolescope replay`; "off": `input` is null
//   DECISION_LOG_PRINCIPAL_ATTRIBUTES  "true": `input.principal` has the attributes (default off)
//   DECISION_LOG_HEADERS  headers recorded besides the route table's, comma-separated
//   DECISION_LOG_MASK  a JSON list of masks, as the gateway's `decision_log.mask`: a pointer
//                   below /input/ (erased) or {"pointer", "value"} (replaced)
// Without UPSTREAM, JWT_ISSUER, JWT_AUDIENCE or a key set (JWKS / JWKS_URL) the worker is
// misconfigured: it answers every request 503 `misconfigured` and says what is missing on the
// first one (the Workers runtime gives a worker its settings with the first request).

import { Policy, initSync } from "./dist/rolescope_wasm.js";
import wasmModule from "./dist/rolescope_wasm_bg.wasm";
import bundle from "./dist/bundle.json";

import { JwtVerifier, TokenError } from "./jwt.mjs";

/** Hop-by-hop headers (RFC 9110 7.6.1, plus the legacy ones proxies drop). */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"];
const INTERNAL_PREFIX = "x-rolescope-";
/** Prepared principals kept (then all are released and the cache starts over). */
const PRINCIPAL_CACHE = 4096;
/** How long a key set fetched from JWKS_URL is kept (seconds). */
const JWKS_TTL = 300;

// ---------------------------------------------------------------------------------------------
// Refusals: the gateway's one table (gateway/src/server/reject.rs).

/** Reason codes of the engine that are not 403. */
const ENGINE_STATUS = { invalid_path: [400, "bad_request", "invalid_path"], unauthenticated: [401, "unauthenticated", "missing_token"] };

/** Status, error and reason of a refusal. */
export function refusal(kind, reason) {
  switch (kind) {
    case "denied":
      return ENGINE_STATUS[reason] ?? [403, "forbidden", reason];
    case "token":
      return [401, "unauthenticated", reason];
    case "bad_request":
      return [400, "bad_request", reason];
    case "too_large":
      return [413, "payload_too_large", "body_too_large"];
    case "unavailable":
      return [503, "unavailable", reason];
    case "misconfigured":
      return [503, "unavailable", "misconfigured"];
    case "upstream_unavailable":
      return [502, "bad_gateway", "upstream_unavailable"];
    case "upstream_timeout":
      return [504, "gateway_timeout", "upstream_timeout"];
    default:
      return [503, "unavailable", "engine_fault"];
  }
}

function reject(kind, reason, decisionId) {
  const [status, error, code] = refusal(kind, reason);
  const headers = new Headers({ "content-type": "application/json", "cache-control": "no-store" });
  if (status === 401) {
    headers.set("www-authenticate", kind === "denied" || code === "missing_token" ? "Bearer" : 'Bearer error="invalid_token"');
  }
  const body = JSON.stringify({ decision_id: decisionId, error, reason: code });
  return { response: new Response(body, { status, headers }), reason: code };
}

// ---------------------------------------------------------------------------------------------
// State kept across requests of one isolate.

let engine = null; // { policy } | { error }
let verifier = null; // { jwt, loadedAt, source } | { error }
const principals = new Map(); // token -> { prepared, exp, id }

function loadEngine() {
  if (engine) return engine;
  try {
    initSync({ module: wasmModule });
    const text = typeof bundle === "string" ? bundle : JSON.stringify(bundle);
    const policy = Policy.fromBundle(text);
    // the rule table, by rule id (what a decision's `rule` names), read once per bundle
    engine = { policy, rules: policy.rules() };
  } catch (e) {
    engine = { error: e };
    console.error("rolescope: no policy:", typeof e === "string" ? e : JSON.stringify(e?.diagnostics ?? String(e)));
  }
  return engine;
}

async function loadVerifier(env, now) {
  if (verifier && !verifier.error && !(verifier.source === "url" && now - verifier.loadedAt > JWKS_TTL)) return verifier;
  try {
    const jwt = new JwtVerifier({
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      algorithms: (env.JWT_ALGORITHMS ?? "RS256,ES256").split(",").map((s) => s.trim()).filter(Boolean),
      leeway: env.JWT_LEEWAY === undefined ? 30 : Number(env.JWT_LEEWAY),
    });
    let source = "inline";
    let jwks = env.JWKS;
    if (jwks === undefined && env.JWKS_URL) {
      source = "url";
      const res = await fetch(env.JWKS_URL, { headers: { accept: "application/json" } });
      if (!res.ok) throw new Error(`JWKS_URL answered ${res.status}`);
      jwks = await res.text();
    }
    if (jwks === undefined) throw new Error("no key set: set JWKS or JWKS_URL");
    await jwt.setKeys(jwks);
    if (verifier?.jwt) releasePrincipals();
    verifier = { jwt, loadedAt: now, source };
  } catch (e) {
    // Keep a previous key set when a refresh fails; without any, every token is refused.
    if (verifier?.jwt) return verifier;
    verifier = { error: e };
    console.error("rolescope: identity:", String(e));
  }
  return verifier;
}

function releasePrincipals() {
  for (const { prepared } of principals.values()) prepared?.free();
  principals.clear();
}

/** 16 random bytes as 32 lowercase hex digits. */
function newId() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

function validTraceparent(s) {
  const p = s.split("-");
  const hex = (v, n) => v.length === n && /^[0-9a-f]+$/.test(v);
  return (
    p.length === 4 && hex(p[0], 2) && p[0] !== "ff" && hex(p[1], 32) && /[^0]/.test(p[1]) && hex(p[2], 16) && /[^0]/.test(p[2]) && hex(p[3], 2)
  );
}

/** Remove hop-by-hop headers, those `Connection` names, and (from a client) `x-rolescope-*`. */
export function stripHeaders(headers, internalToo) {
  const named = (headers.get("connection") ?? "").split(",").map((n) => n.trim().toLowerCase()).filter(Boolean);
  for (const n of [...named, ...HOP_BY_HOP]) headers.delete(n);
  if (internalToo) {
    for (const n of [...headers.keys()]) if (n.startsWith(INTERNAL_PREFIX)) headers.delete(n);
  }
}

/** The origin-form target (`path?query`) of the request as received, undecoded. */
export function targetOf(url) {
  const afterScheme = url.indexOf("//");
  const pathStart = url.indexOf("/", afterScheme + 2);
  if (afterScheme < 0 || pathStart < 0) return "/";
  // Kept whole: a fragment in a request target is refused by the route table (invalid_path).
  return url.slice(pathStart);
}

/** What is missing from the settings (empty when the worker can enforce). */
export function misconfiguration(env) {
  const missing = [];
  for (const name of ["UPSTREAM", "JWT_ISSUER", "JWT_AUDIENCE"]) if (!env[name]) missing.push(name);
  if (!env.JWKS && !env.JWKS_URL) missing.push("JWKS or JWKS_URL");
  return missing;
}

let misconfigReported = false;

/** Header names a route table reads: its `header.NAME` value sources (the bundle's sources). */
export function routeHeaders(bundleJson) {
  const names = new Set();
  for (const f of bundleJson?.files ?? []) {
    for (const m of String(f.text ?? "").matchAll(/(?:^|[^A-Za-z0-9_.-])header\.([A-Za-z0-9-]+)/g)) names.add(m[1].toLowerCase());
  }
  for (const n of ["authorization", "proxy-authorization", "cookie"]) names.delete(n); // credentials: never recorded
  return [...names];
}

/** Checked `input` settings, as the gateway's `decision_log.input` / `decision_log.mask`. */
export function inputSettings(env, bundleJson) {
  const headers = new Set(routeHeaders(bundleJson));
  for (const h of String(env.DECISION_LOG_HEADERS ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (h === "authorization" || h === "cookie") throw new Error(`DECISION_LOG_HEADERS: \`${h}\` carries credentials and is never recorded`);
    headers.add(h);
  }
  const masks = [];
  const raw = env.DECISION_LOG_MASK ? JSON.parse(env.DECISION_LOG_MASK) : [];
  if (!Array.isArray(raw)) throw new Error("DECISION_LOG_MASK: not a JSON list");
  raw.forEach((m, i) => {
    const pointer = typeof m === "string" ? m : m?.pointer;
    if (typeof pointer !== "string" || !pointer.startsWith("/input/") || pointer.length === 7) {
      throw new Error(`DECISION_LOG_MASK[${i}]: not a JSON pointer into the record's input`);
    }
    if (/~[^01]|~$/.test(pointer)) throw new Error(`DECISION_LOG_MASK[${i}]: \`~\` must be followed by 0 or 1`);
    masks.push(typeof m === "string" ? { pointer } : { pointer, value: m.value });
  });
  return { record: env.DECISION_LOG_INPUT !== "off", attributes: env.DECISION_LOG_PRINCIPAL_ATTRIBUTES === "true", headers: [...headers], masks };
}

/** A record's `input`: the principal as decided and the recorded headers (gateway/README.md). */
export function inputRecord(settings, principal, request) {
  if (!settings.record) return null;
  const p = principal
    ? { id: principal.id ?? "", status: principal.status ?? "active", assignments: principal.assignments ?? [], ...(settings.attributes ? { attributes: principal.attributes ?? {} } : {}) }
    : null;
  const headers = {};
  for (const name of settings.headers) {
    const v = request.headers.get(name);
    if (v !== null) headers[name] = v;
  }
  return { principal: p, headers, erased: [], masked: [] };
}

/** Apply masks to a record (its `input`), listing them in `input.erased` / `input.masked`. */
export function maskRecord(record, masks) {
  if (!record.input || masks.length === 0) return record;
  const token = (t) => t.replaceAll("~1", "/").replaceAll("~0", "~");
  for (const { pointer, value } of masks) {
    const parts = pointer.slice(1).split("/").map(token);
    const last = parts.pop();
    let at = record;
    for (const k of parts) at = at !== null && typeof at === "object" ? at[k] : undefined;
    if (at === null || typeof at !== "object" || !Object.hasOwn(at, last)) continue;
    if (value === undefined) {
      if (Array.isArray(at)) at.splice(Number(last), 1);
      else delete at[last];
      record.input.erased.push(pointer);
    } else {
      at[last] = structuredClone(value);
      record.input.masked.push(pointer);
    }
  }
  return record;
}

/**
 * The decision record (`rolescope-decision/1`, the gateway's shape). `latency_us` is null: the
 * Workers runtime stops its clock while a worker computes (it moves only across I/O), so the
 * time to decide cannot be measured here.
 */
/** Reasons of a default deny (no grant applied): the record names the nearest assignments. */
const DEFAULT_DENY = ["no_matching_grant", "out_of_scope", "condition_false"];

export function decisionRecord({ decisionId, method, target, principal, d, allowed, reason, cause, revision, rules, input = null }) {
  const route = d?.route ?? null;
  const named = typeof d?.rule === "number" ? rules?.[d.rule] : undefined;
  const rule = named ? { assignment: d.assignment ?? null, effect: named.effect, role: named.role ?? null, source: named.source } : null;
  const question = d && typeof d.action === "string" && typeof d.kind === "string"
    ? { action: d.action, id: d.resourceId ?? "", kind: d.kind, scope: d.scope ?? "", tenant: d.tenant ?? null }
    : null;
  return {
    allowed,
    cause: cause ?? null,
    decision_id: decisionId,
    detail: d?.detail ?? null,
    input,
    latency_us: null,
    nearest: d && DEFAULT_DENY.includes(d.reason) ? (d.nearest ?? []) : null,
    principal: principal ?? null,
    question,
    reason,
    request: { method, target },
    revision,
    route,
    rule,
    route_miss: route !== null ? null : d ? (d.reason === "invalid_path" ? "invalid_path" : "no_route") : "not_reached",
    schema: "rolescope-decision/1",
    time: new Date().toISOString(),
  };
}

// ---------------------------------------------------------------------------------------------
// One request.

async function identify(request, env, now) {
  const value = request.headers.get("authorization");
  if (value === null) return null;
  // Headers joins repeated fields with ", "; a JWT never contains a comma.
  if (value.includes(",")) throw { badRequest: "duplicate_authorization" };
  const space = value.indexOf(" ");
  const scheme = space < 0 ? "" : value.slice(0, space);
  const token = space < 0 ? "" : value.slice(space + 1).trim();
  if (space < 0 || scheme.toLowerCase() !== "bearer" || token === "") throw new TokenError("invalid_token", "not_bearer");
  const v = await loadVerifier(env, now);
  if (v.error) throw new TokenError("unknown_key");
  const cached = principals.get(token);
  if (cached && now < cached.exp) return { token, ...cached };
  const { principal, exp } = await v.jwt.verify(token, now);
  return { token, principal, exp };
}

/** The route table's decision for a prepared principal, or an anonymous caller (`null`). */
function authorizeHttp(policy, prepared, query) {
  return prepared === null ? policy.authorizeHttpAnonymous(query) : policy.authorizeHttp(prepared, query);
}

/** The engine's decision for the request; `prepared` is cached per token. */
function decide(policy, who, query) {
  if (who === null) return authorizeHttp(policy, null, query);
  let entry = principals.get(who.token);
  if (!entry) {
    let prepared = null;
    try {
      prepared = policy.preparePrincipal(who.principal);
    } catch {
      prepared = null; // refused by the engine: denied everything (as the gateway's host does)
    }
    if (principals.size >= PRINCIPAL_CACHE) releasePrincipals();
    entry = { prepared, exp: who.exp, principal: who.principal };
    principals.set(who.token, entry);
  }
  if (entry.prepared !== null) return authorizeHttp(policy, entry.prepared, query);
  // A principal the engine refuses: routed anonymously (a path or route problem keeps its
  // reason, a public route stays public); anything else is denied with the engine's reason
  // for the principal.
  const routed = authorizeHttp(policy, null, query);
  if (routed.allowed || routed.reason !== "unauthenticated") return routed;
  const probe = policy.check({ principal: who.principal, action: "", resource: { kind: "", scope: "" } });
  return { ...routed, reason: probe.reason };
}

async function forward(request, env, target, decisionId, revision, principal) {
  const base = new URL(env.UPSTREAM);
  const url = `${base.origin}${base.pathname.replace(/\/+$/, "")}${target}`;
  const headers = new Headers(request.headers);
  const trace = headers.get("traceparent");
  stripHeaders(headers, true);
  headers.delete("host");
  if (principal !== null) headers.set("x-rolescope-principal", principal);
  headers.set("x-rolescope-decision-id", decisionId);
  headers.set("x-rolescope-revision", revision);
  headers.set("traceparent", trace !== null && validTraceparent(trace) ? trace : `00-${newId()}-${newId().slice(0, 16)}-01`);
  const client = request.headers.get("cf-connecting-ip");
  if (client !== null) {
    const prev = request.headers.get("x-forwarded-for");
    headers.set("x-forwarded-for", prev === null ? client : `${prev}, ${client}`);
  }
  const timeout = Number(env.UPSTREAM_TIMEOUT_MS ?? 30000);
  const hasBody = request.method !== "GET" && request.method !== "HEAD";
  let res;
  try {
    res = await fetch(url, {
      method: request.method,
      headers,
      body: hasBody ? request.body : undefined,
      redirect: "manual",
      signal: AbortSignal.timeout(timeout),
    });
  } catch (e) {
    return reject(e?.name === "TimeoutError" ? "upstream_timeout" : "upstream_unavailable", null, decisionId);
  }
  const out = new Headers(res.headers);
  stripHeaders(out, false);
  return { response: new Response(res.body, { status: res.status, statusText: res.statusText, headers: out }), reason: "allowed" };
}

let inputCache = null; // { env, settings }
let inputMisconfigReported = false;

function loadInputSettings(env) {
  if (inputCache?.env !== env) {
    const text = typeof bundle === "string" ? bundle : JSON.stringify(bundle);
    inputCache = { env, settings: inputSettings(env, JSON.parse(text)) };
  }
  return inputCache.settings;
}

async function handle(request, env) {
  const now = Math.floor(Date.now() / 1000);
  const decisionId = newId();
  const { policy, rules } = loadEngine();
  const revision = policy ? policy.revision : "none";
  const target = targetOf(request.url);
  const method = request.method;
  const log = { principal: null, d: null, cause: null, decided: null };
  let result;
  const missing = misconfiguration(env);
  if (missing.length > 0) {
    if (!misconfigReported) {
      misconfigReported = true;
      console.error(`rolescope: misconfigured: ${missing.join(", ")} not set (workerd: ROLESCOPE_EDGE_*; wrangler: [vars]); every request answers 503 misconfigured`);
    }
    result = reject("misconfigured", null, decisionId);
  } else {
    try {
      result = await enforce(request, env, { now, decisionId, policy, revision, target, method, log });
    } catch (e) {
      console.error("rolescope: engine fault:", String(e));
      result = reject("unavailable", "engine_fault", decisionId);
    }
  }
  const headers = new Headers(result.response.headers);
  headers.set("x-rolescope-decision-id", decisionId);
  headers.set("x-rolescope-revision", revision);
  if (env.DECISION_LOG !== "off") {
    const allowed = log.d?.allowed === true;
    const reason = allowed ? "allowed" : result.reason;
    let settings;
    try {
      settings = loadInputSettings(env);
    } catch (e) {
      settings = { record: false, masks: [] };
      if (!inputMisconfigReported) console.error(`rolescope: decision log input: ${e.message}; records carry no input`);
      inputMisconfigReported = true;
    }
    const input = inputRecord(settings, log.decided, request);
    const record = decisionRecord({ decisionId, method, target, principal: log.principal, d: log.d, allowed, reason, cause: log.cause, revision: policy ? revision : null, input, rules });
    console.log(JSON.stringify(maskRecord(record, settings.masks)));
  }
  const { status, statusText, body } = result.response;
  return new Response(status === 101 || status === 204 || status === 304 || method === "HEAD" ? null : body, { status, statusText, headers });
}

async function enforce(request, env, { now, decisionId, policy, revision, target, method, log }) {
  // Framing: a token in the query string.
  const q = target.indexOf("?");
  if (q >= 0) {
    const names = target.slice(q + 1).split("&").map((kv) => kv.split("=")[0].toLowerCase());
    if (names.includes("access_token") || names.includes("id_token")) return reject("bad_request", "token_in_query", decisionId);
  }
  const max = Number(env.MAX_BODY_BYTES ?? 10485760);
  const length = request.headers.get("content-length");
  if (length !== null && /^\d+$/.test(length) && Number(length) > max) return reject("too_large", null, decisionId);
  let who;
  try {
    who = await identify(request, env, now);
  } catch (e) {
    if (e instanceof TokenError) {
      log.cause = e.cause ?? e.reason;
      return reject("token", e.reason, decisionId);
    }
    if (e?.badRequest) return reject("bad_request", e.badRequest, decisionId);
    throw e;
  }
  if (!policy) return reject("unavailable", "no_policy", decisionId);
  const headers = [...request.headers.entries()];
  const d = decide(policy, who, { method, target, headers });
  if (d === null || typeof d !== "object" || typeof d.allowed !== "boolean" || typeof d.reason !== "string") {
    return reject("unavailable", "engine_fault", decisionId);
  }
  log.principal = who?.principal.id ?? null;
  log.decided = who?.principal ?? null;
  log.d = d;
  if (!d.allowed) return reject("denied", d.reason, decisionId);
  return forward(request, env, target, decisionId, revision, who?.principal.id ?? null);
}

export default {
  async fetch(request, env) {
    return handle(request, env);
  },
};
