// Decision records: the edge worker (log on by default) and the gateway, sent the same
// requests (an allow, denies, no_route, invalid_path, token failures), write records of one
// shape (`rolescope-decision/1`, gateway/README.md): the same members, the same request,
// route, question, principal, decision, reason, token cause, rule that decided and nearest
// assignments of a default deny. And a misconfigured worker
// (no issuer) answers 503 `misconfigured`, saying what is missing.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import { bundleOf, send, signer, sleep, startEdge, startGateway, startUpstream, token } from "./stack.mjs";

const bundle = bundleOf("policies/juniper-mist-msp");
const na = { id: "na_o1", assignments: [{ role: "network_admin", scope: "msp:mist", tenants: ["org:o1"] }] };

/** Records written in an output (JSON lines with the schema). */
function records(text) {
  const out = [];
  for (const line of text.split("\n")) {
    const at = line.indexOf("{");
    if (at < 0) continue;
    try {
      const r = JSON.parse(line.slice(at));
      if (r.schema === "rolescope-decision/1") out.push(r);
    } catch {
      // not a record
    }
  }
  return out;
}

const typeOf = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

describe("decision records: edge worker and gateway", () => {
  let upstream;
  let edge;
  let gateway;
  before(async () => {
    upstream = await startUpstream();
    [edge, gateway] = await Promise.all([startEdge(bundle, upstream.url), startGateway(bundle, upstream.url, { log: true })]);
  });
  after(async () => {
    for (const p of [edge, gateway, upstream]) await p?.stop();
  });

  test("one shape, the same answers", async (t) => {
    const good = token(na);
    const tampered = good.slice(0, -20) + (good.at(-20) === "A" ? "B" : "A") + good.slice(-19);
    const rs = signer("demo-rs256");
    const cases = [
      ["allow", "GET", "/api/v1/orgs/o1/devices", good],
      ["out_of_scope", "GET", "/api/v1/orgs/o2/devices", good],
      ["no_matching_grant", "DELETE", "/api/v1/orgs/o1/devices/ap-11", good],
      ["no_route", "GET", "/api/v1/nothing-here", good],
      ["invalid_path", "GET", "/api/v1/orgs/o1/%2e%2e/o2/devices", good],
      ["missing token", "GET", "/api/v1/orgs/o1/devices", null],
      ["bad signature", "GET", "/api/v1/orgs/o1/devices", tampered],
      ["expired", "GET", "/api/v1/orgs/o1/devices", token(na, { by: rs, over: { exp: Math.floor(Date.now() / 1000) - 3600 } })],
      ["unknown key", "GET", "/api/v1/orgs/o1/devices", token(na, { by: { ...rs, kid: "rotated" } })],
      ["key mismatch", "GET", "/api/v1/orgs/o1/devices", token(na, { by: { ...rs, kid: "demo-es256" } })],
    ];
    const ids = [];
    for (const [what, method, target, tok] of cases) {
      const headers = tok ? [["authorization", `Bearer ${tok}`]] : [];
      const e = await send(edge.url, { method, target, headers });
      const g = await send(gateway.url, { method, target, headers });
      assert.equal(e.status, g.status, `${what}: edge ${e.status} ${e.body}, gateway ${g.status} ${g.body}`);
      ids.push([what, e.headers["x-rolescope-decision-id"], g.headers["x-rolescope-decision-id"]]);
    }
    let edgeLog = [];
    let gwLog = [];
    for (let i = 0; i < 100; i += 1) {
      edgeLog = records(edge.output());
      gwLog = records(readFileSync(gateway.decisions, "utf8"));
      if (edgeLog.length >= cases.length && gwLog.length >= cases.length) break;
      await sleep(50);
    }
    for (const [what, eid, gid] of ids) {
      const e = edgeLog.find((r) => r.decision_id === eid);
      const g = gwLog.find((r) => r.decision_id === gid);
      assert.ok(e && g, `${what}: edge record ${!!e}, gateway record ${!!g}`);
      assert.deepEqual(Object.keys(e).sort(), Object.keys(g).sort(), `${what}: members`);
      for (const k of Object.keys(g)) {
        // the Workers runtime's clock stands still while a worker computes: no latency there
        if (k === "latency_us") continue;
        assert.equal(typeOf(e[k]), typeOf(g[k]), `${what}: ${k} is ${typeOf(e[k])} at the edge, ${typeOf(g[k])} at the gateway`);
      }
      assert.equal(e.latency_us, null);
      assert.equal(typeof g.latency_us, "number");
      for (const k of ["request", "route", "route_miss", "principal", "question", "allowed", "reason", "cause", "revision", "detail", "rule", "nearest", "input"]) {
        assert.deepEqual(e[k], g[k], `${what}: ${k}`);
      }
      // the rule that decided an allow; the nearest assignments of a default deny
      if (what === "allow") assert.deepEqual(g.rule?.assignment, "network_admin@msp:mist (tenants: org:o1)", JSON.stringify(g));
      if (what === "allow") assert.match(g.rule.source, /^roles\.yaml:\d+:\d+$/);
      if (what === "out_of_scope" || what === "no_matching_grant") assert.deepEqual(g.nearest, ["network_admin@msp:mist (tenants: org:o1)"], what);
      if (what !== "out_of_scope" && what !== "no_matching_grant") assert.equal(g.nearest, null, what);
    }
    t.diagnostic(`${ids.length} requests, records equal in shape and answers`);
  });

  test("a misconfigured worker (no issuer) answers 503 misconfigured and says why", async () => {
    const bad = await startEdge(bundle, upstream.url, { ROLESCOPE_EDGE_JWT_ISSUER: "" });
    try {
      for (const headers of [[], [["authorization", `Bearer ${token(na)}`]]]) {
        const r = await send(bad.url, { target: "/api/v1/orgs/o1/devices", headers });
        assert.deepEqual([r.status, r.json?.error, r.json?.reason], [503, "unavailable", "misconfigured"], r.body);
      }
      await sleep(200);
      assert.match(bad.output(), /rolescope: misconfigured: JWT_ISSUER not set/);
    } finally {
      await bad.stop();
    }
  });
});
