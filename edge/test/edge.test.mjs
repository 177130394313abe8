// The edge worker in workerd (127.0.0.1) in front of the demo upstream, per seed policy:
// - every HTTP case of the parity corpus (each suite's `http:` cases plus generated requests,
//   with the native engine's decision): a denied one gets the gateway's status and JSON body,
//   an allowed one reaches the upstream (with the principal and decision id added);
// - token, framing and header rows written by hand (the gateway's rules);
// - when the gateway binary runs: every request also to the gateway, with identical status,
//   `error` and `reason` required (ROLESCOPE_WEB_SKIP_GATEWAY=1 skips that part).
// Needs: target/parity (cargo run -p rolescope-parity), bindings/pkg (cargo xtask wasm), the
// debug binaries (cargo build), edge/node_modules (npm ci). edge/test/run.sh does all that.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import { bundleOf, gatewayBin, httpCorpus, send, signer, startEdge, startGateway, startUpstream, token } from "./stack.mjs";

const corpus = httpCorpus();
if (corpus === null) throw new Error("no target/parity/http.jsonl: run `cargo run -p rolescope-parity`");
const SEEDS = [...corpus.keys()].filter((p) => p.startsWith("policies/")).sort();
const withGateway = process.env.ROLESCOPE_WEB_SKIP_GATEWAY !== "1" && existsSync(gatewayBin());

/** What a refusal must look like, from the spec (not from the worker's table). */
function refusalOf(reason) {
  if (reason === "invalid_path") return { status: 400, error: "bad_request", reason };
  if (reason === "unauthenticated") return { status: 401, error: "unauthenticated", reason: "missing_token" };
  return { status: 403, error: "forbidden", reason };
}

const tokens = new Map();
const tokenFor = (principal) => {
  const key = JSON.stringify(principal);
  if (!tokens.has(key)) tokens.set(key, token(principal));
  return tokens.get(key);
};

/** The request a case sends. */
function requestOf(c) {
  const headers = [...c.headers];
  if (c.principal) headers.push(["authorization", `Bearer ${tokenFor(c.principal)}`]);
  const body = c.method === "POST" || c.method === "PUT" || c.method === "PATCH" ? "{}" : undefined;
  if (body !== undefined) headers.push(["content-type", "application/json"]);
  return { method: c.method, target: c.target, headers, body };
}

/**
 * Requests the Workers runtime normalizes before a worker sees them (the Fetch standard): a
 * standard method in lower case is upper-cased, and a fragment in the request target is
 * dropped. The worker decides, and forwards, the normalized request; the gateway refuses the
 * raw one (`no_route`, `invalid_path`). Both are safe; they are checked by hand below.
 */
const FETCH_METHODS = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
const normalizedByRuntime = (c) =>
  (c.method !== c.method.toUpperCase() && FETCH_METHODS.includes(c.method.toUpperCase())) || c.target.includes("#");

/** Is this response a refusal by the enforcer (its JSON body with a decision id)? */
const refusalBody = (res) =>
  res.json && typeof res.json === "object" && typeof res.json.decision_id === "string" && "error" in res.json && "reason" in res.json
    ? res.json
    : null;

for (const folder of SEEDS) {
  describe(`edge worker: ${folder}`, () => {
    let edge;
    let upstream; // the edge's
    let gateway = null;
    let gatewayUpstream = null; // the gateway's: it gets the same requests in the same order
    let gatewayStarting = null; // started early: it compiles the module while the edge runs
    const cases = corpus.get(folder);
    const sent = []; // [{name, req, edge: {status, error, reason}}] for the gateway comparison

    before(async () => {
      upstream = await startUpstream();
      if (withGateway) {
        gatewayStarting = startUpstream().then(async (u) => {
          gatewayUpstream = u;
          gateway = await startGateway(bundleOf(folder), u.url);
          return gateway;
        });
        gatewayStarting.catch(() => {}); // reported by the comparison test
      }
      edge = await startEdge(bundleOf(folder), upstream.url);
    });
    after(async () => {
      for (const p of [edge, gateway, upstream, gatewayUpstream]) await p?.stop();
    });

    test(`every parity HTTP case (${cases.length}) is enforced as the native engine decided`, async (t) => {
      await upstream.clearLog();
      const wrong = [];
      const answers = [];
      for (const c of cases.filter((c) => !normalizedByRuntime(c))) {
        const req = requestOf(c);
        const res = await send(edge.url, req);
        const id = res.headers["x-rolescope-decision-id"];
        if (typeof id !== "string" || !/^[0-9a-f]{32}$/.test(id)) wrong.push(`${c.name}: no decision id header`);
        if (!/^sha256:[0-9a-f]{64}$/.test(res.headers["x-rolescope-revision"] ?? "")) wrong.push(`${c.name}: no revision header`);
        // HEAD answers carry no body: their status and the upstream's log say what happened.
        if (c.method === "HEAD" && res.body !== "") wrong.push(`${c.name}: a HEAD answer with a body`);
        const refused = refusalBody(res);
        if (refused && refused.decision_id !== id) wrong.push(`${c.name}: body and header decision ids differ`);
        answers.push({ c, res, id, refused });
        sent.push({ name: c.name, req, edge: { status: res.status, error: refused?.error ?? null, reason: refused?.reason ?? null } });
      }
      // The upstream saw exactly the allowed requests, in order, each with what the edge added.
      const log = await upstream.log();
      const seen = log.map((r) => {
        const h = Object.fromEntries(r.headers.map(([k, v]) => [k.toLowerCase(), v]));
        return { id: h["x-rolescope-decision-id"], method: r.method, target: r.target, principal: h["x-rolescope-principal"] ?? null };
      });
      const forwarded = new Set(seen.map((s) => s.id));
      const allowed = answers.filter((a) => a.c.expected.allowed);
      for (const { c, res, id, refused } of answers) {
        const what = `${c.name}: ${c.method} ${c.target}`;
        if (c.expected.allowed) {
          if (!forwarded.has(id)) wrong.push(`${what}: not forwarded (${res.status} ${refused?.reason}), native allows`);
          continue;
        }
        if (forwarded.has(id)) wrong.push(`${what}: forwarded, native denies (${c.expected.reason})`);
        const want = refusalOf(c.expected.reason);
        const got = c.method === "HEAD" ? { status: res.status } : { status: res.status, error: refused?.error, reason: refused?.reason };
        const expect = c.method === "HEAD" ? { status: want.status } : want;
        if (JSON.stringify(got) !== JSON.stringify(expect)) wrong.push(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(expect)}`);
        if (want.status === 401 && res.headers["www-authenticate"] !== "Bearer") wrong.push(`${what}: no WWW-Authenticate: Bearer`);
      }
      const expectedSeen = allowed.map(({ c, id }) => ({ id, method: c.method, target: c.target, principal: c.principal?.id ?? null }));
      if (JSON.stringify(seen) !== JSON.stringify(expectedSeen)) wrong.push("the upstream's log is not the allowed requests in order");
      t.diagnostic(
        `${answers.length} cases sent (${cases.length - answers.length} normalized by the runtime, checked by hand), ` +
          `${allowed.length} allowed and forwarded, ${answers.length - allowed.length} denied`,
      );
      assert.deepEqual(wrong.slice(0, 20), [], `${wrong.length} problems over ${answers.length} cases`);
      assert.ok(allowed.length > 0 && allowed.length < answers.length, "the corpus must allow and deny");
    });

    test("the gateway gives the same status, error and reason for every request", { skip: withGateway ? false : "no gateway binary (or ROLESCOPE_WEB_SKIP_GATEWAY=1)" }, async (t) => {
      assert.ok(sent.length > 0);
      await gatewayStarting;
      const differ = [];
      for (const s of sent) {
        const res = await send(gateway.url, s.req);
        const refused = refusalBody(res);
        const got = { status: res.status, error: refused?.error ?? null, reason: refused?.reason ?? null };
        if (got.status !== s.edge.status || got.error !== s.edge.error || got.reason !== s.edge.reason) {
          differ.push(`${s.name}: ${s.req.method} ${s.req.target}: edge ${JSON.stringify(s.edge)}, gateway ${JSON.stringify(got)}`);
        }
      }
      t.diagnostic(`${sent.length} requests to both, ${differ.length} differ`);
      assert.deepEqual(differ.slice(0, 20), [], `${differ.length} of ${sent.length} requests differ`);
    });
    test("what the runtime normalizes is decided and forwarded normalized", async () => {
      const normalized = cases.filter(normalizedByRuntime);
      const wrong = [];
      for (const c of normalized) {
        // The request the worker actually sees: upper-case method, no fragment.
        const seenAs = { ...c, method: FETCH_METHODS.includes(c.method.toUpperCase()) ? c.method.toUpperCase() : c.method, target: c.target.split("#")[0] };
        await upstream.clearLog();
        const raw = await send(edge.url, requestOf(c));
        const clean = await send(edge.url, requestOf(seenAs));
        const log = await upstream.log();
        const key = (r) => `${r.status} ${refusalBody(r)?.error ?? "-"} ${refusalBody(r)?.reason ?? "-"}`;
        if (key(raw) !== key(clean)) wrong.push(`${c.name}: raw ${key(raw)}, normalized ${key(clean)}`);
        const targets = log.map((r) => `${r.method} ${r.target}`);
        if (targets.some((x) => x.includes("#") || x.split(" ")[0] !== x.split(" ")[0].toUpperCase())) wrong.push(`${c.name}: forwarded raw: ${targets}`);
      }
      assert.deepEqual(wrong, []);
    });

    test("tokens, framing and headers as the gateway handles them (and as it does, when it runs)", async (t) => {
      // A protected request the corpus allows, and its principal.
      const ok = cases.find((c) => c.expected.allowed && !c.expected.public && c.principal && c.method === "GET" && c.headers.length === 0);
      assert.ok(ok, "no allowed GET with a principal in the corpus");
      const p = ok.principal;
      const now = Math.floor(Date.now() / 1000);
      const other = signer("demo-es256", new URL("../../gateway/tests/e2e/keys/other.pem", import.meta.url).pathname);
      const rs = signer("demo-rs256");
      const bearer = (tok) => [["authorization", `Bearer ${tok}`]];
      const alg = (name) => {
        const t = token(p).split(".");
        const head = Buffer.from(JSON.stringify({ typ: "JWT", alg: name, kid: "demo-es256" })).toString("base64url");
        return `${head}.${t[1]}.${name === "none" ? "" : t[2]}`;
      };
      const rows = [
        ["no token", [], refusalOf("unauthenticated")],
        ["ES256 token", bearer(token(p)), null],
        ["RS256 token", bearer(token(p, { by: rs })), null],
        ["scheme in lower case", [["authorization", `bearer ${token(p)}`]], null],
        ["untrusted key, same kid", bearer(token(p, { by: other })), { status: 401, error: "unauthenticated", reason: "invalid_token" }],
        ["unknown kid", bearer(token(p, { header: { kid: "nope" } })), { status: 401, error: "unauthenticated", reason: "unknown_key" }],
        ["no kid", bearer(token(p, { header: { kid: undefined } })), { status: 401, error: "unauthenticated", reason: "unknown_key" }],
        ["alg none", bearer(alg("none")), { status: 401, error: "unauthenticated", reason: "invalid_token" }],
        ["alg HS256", bearer(alg("HS256")), { status: 401, error: "unauthenticated", reason: "invalid_token" }],
        ["expired", bearer(token(p, { over: { exp: now - 120, nbf: now - 600, iat: now - 600 } })), { status: 401, error: "unauthenticated", reason: "expired_token" }],
        ["expired within the leeway", bearer(token(p, { over: { exp: now - 5 } })), null],
        ["not yet valid", bearer(token(p, { over: { nbf: now + 600 } })), { status: 401, error: "unauthenticated", reason: "token_not_yet_valid" }],
        ["wrong issuer", bearer(token(p, { over: { iss: "someone-else" } })), { status: 401, error: "unauthenticated", reason: "wrong_issuer" }],
        ["wrong audience", bearer(token(p, { over: { aud: "another-api" } })), { status: 401, error: "unauthenticated", reason: "wrong_audience" }],
        ["audience list naming us", bearer(token(p, { over: { aud: ["x", "rolescope-gateway"] } })), null],
        ["no exp", bearer(token(p, { over: { exp: undefined } })), { status: 401, error: "unauthenticated", reason: "invalid_token" }],
        ["no subject", bearer(token(p, { over: { sub: undefined } })), { status: 401, error: "unauthenticated", reason: "invalid_token" }],
        ["malformed assignments", bearer(token(p, { over: { assignments: [{ role: 1 }] } })), { status: 401, error: "unauthenticated", reason: "invalid_token" }],
        ["not a JWT", bearer("abc.def"), { status: 401, error: "unauthenticated", reason: "invalid_token" }],
        ["Basic scheme", [["authorization", "Basic dXNlcjpwYXNz"]], { status: 401, error: "unauthenticated", reason: "invalid_token" }],
        ["tampered claims", bearer(token(p).replace(/\.([^.]+)\./, (m, c) => `.${c.slice(0, -2)}${c.endsWith("A") ? "B" : "A"}${c.slice(-1)}.`)), { status: 401, error: "unauthenticated", reason: "invalid_token" }],
      ];
      const wrong = [];
      let compared = 0;
      const ask = async (what, headers, want, target = ok.target, gwToo = true) => {
        const req = { method: "GET", target, headers };
        const res = await send(edge.url, req);
        const refused = refusalBody(res);
        const got = refused ? { status: res.status, error: refused.error, reason: refused.reason } : null;
        if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`${what}: got ${JSON.stringify(got)} (${res.status}), want ${JSON.stringify(want)}`);
        if (gwToo && gateway !== null) {
          const g = await send(gateway.url, req);
          const gr = refusalBody(g);
          const gGot = gr ? { status: g.status, error: gr.error, reason: gr.reason } : null;
          if (JSON.stringify(gGot) !== JSON.stringify(got) || g.status !== res.status) {
            wrong.push(`${what}: edge ${res.status} ${JSON.stringify(got)}, gateway ${g.status} ${JSON.stringify(gGot)}`);
          }
          compared += 1;
        }
        return res;
      };
      for (const [what, headers, want] of rows) await ask(what, headers, want);
      const tok = token(p);
      const sep = ok.target.includes("?") ? "&" : "?";
      await ask("token in the query", [], { status: 400, error: "bad_request", reason: "token_in_query" }, `${ok.target}${sep}access_token=${tok}`);
      await ask(
        "two Authorization headers",
        [...bearer(tok), ...bearer(tok)],
        { status: 400, error: "bad_request", reason: "duplicate_authorization" },
      );
      t.diagnostic(`${rows.length + 2} rows; ${compared} also sent to the gateway`);
      assert.deepEqual(wrong, []);

      // What the upstream receives: internal headers from the client stripped, hop-by-hop
      // headers and those `Connection` names dropped, a valid traceparent kept.
      await upstream.clearLog();
      const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
      const res = await ask(
        "client-sent internal headers",
        [
          ...bearer(tok),
          ["x-rolescope-principal", "root"],
          ["x-rolescope-decision-id", "forged"],
          ["connection", "x-secret"],
          ["x-secret", "1"],
          ["traceparent", trace],
          ["x-kept", "yes"],
        ],
        null,
        ok.target,
        false,
      );
      await ask("an invalid traceparent is replaced", [...bearer(tok), ["traceparent", "garbage"]], null, ok.target, false);
      const [first, second] = await upstream.log();
      const h = Object.fromEntries(first.headers.map(([k, v]) => [k.toLowerCase(), v]));
      assert.equal(h["x-rolescope-principal"], p.id);
      assert.equal(h["x-rolescope-decision-id"], res.headers["x-rolescope-decision-id"]);
      assert.equal(h["x-rolescope-revision"], res.headers["x-rolescope-revision"]);
      assert.match(h["x-rolescope-revision"], /^sha256:[0-9a-f]{64}$/);
      assert.equal(h["x-secret"], undefined);
      assert.equal(h["x-kept"], "yes");
      assert.equal(h.traceparent, trace);
      const h2 = Object.fromEntries(second.headers.map(([k, v]) => [k.toLowerCase(), v]));
      assert.match(h2.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    });

  });
}
