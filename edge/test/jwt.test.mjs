// edge/jwt.mjs on its own (Node's WebCrypto is the Workers one): keys, algorithms, claims,
// the gateway's reason codes and its claim-to-principal mapping.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { DEFAULT_CLAIMS, JwtVerifier, TokenError, principalFromClaims } from "../jwt.mjs";
import { AUDIENCE, ISSUER, keysDir, root, signer, token } from "./stack.mjs";

const jwks = readFileSync(join(keysDir, "jwks.json"), "utf8");
const ana = { id: "ana", assignments: [{ role: "admin", scope: "msp:acme", tenants: ["org:o1"] }], attributes: { tier: 2 } };
const now = () => Math.floor(Date.now() / 1000);

async function verifier(options = {}) {
  const v = new JwtVerifier({ issuer: ISSUER, audience: AUDIENCE, ...options });
  await v.setKeys(jwks);
  return v;
}

const reason = async (v, tok, at = now()) => {
  try {
    await v.verify(tok, at);
    return "ok";
  } catch (e) {
    assert.ok(e instanceof TokenError, `not a TokenError: ${e}`);
    return e.reason;
  }
};

test("ES256 and RS256 tokens verify and map to the principal", async () => {
  const v = await verifier();
  for (const by of [signer("demo-es256"), signer("demo-rs256")]) {
    const { principal, exp } = await v.verify(token(ana, { by }), now());
    assert.deepEqual(principal, ana);
    assert.ok(exp > now());
  }
});

test("each refusal has the gateway's reason", async () => {
  const v = await verifier();
  const other = signer("demo-es256", join(root, "gateway/tests/e2e/keys/other.pem"));
  const t = now();
  assert.equal(await reason(v, token(ana, { by: other })), "invalid_token");
  assert.equal(await reason(v, token(ana, { header: { kid: "nope" } })), "unknown_key");
  assert.equal(await reason(v, token(ana, { header: { kid: undefined } })), "unknown_key");
  assert.equal(await reason(v, token(ana, { over: { exp: t - 31 } })), "expired_token");
  assert.equal(await reason(v, token(ana, { over: { exp: t - 29 } })), "ok", "within the 30 s leeway");
  assert.equal(await reason(v, token(ana, { over: { nbf: t + 31 } })), "token_not_yet_valid");
  assert.equal(await reason(v, token(ana, { over: { iss: "x" } })), "wrong_issuer");
  assert.equal(await reason(v, token(ana, { over: { iss: undefined } })), "wrong_issuer");
  assert.equal(await reason(v, token(ana, { over: { aud: "x" } })), "wrong_audience");
  assert.equal(await reason(v, token(ana, { over: { aud: undefined } })), "wrong_audience");
  assert.equal(await reason(v, token(ana, { over: { aud: ["x", AUDIENCE] } })), "ok");
  assert.equal(await reason(v, token(ana, { over: { exp: undefined } })), "invalid_token");
  assert.equal(await reason(v, token(ana, { over: { exp: t + 60.5 } })), "invalid_token");
  assert.equal(await reason(v, token(ana, { over: { sub: "" } })), "invalid_token");
  assert.equal(await reason(v, token(ana, { over: { status: 3 } })), "invalid_token");
  assert.equal(await reason(v, token(ana, { over: { assignments: [{ role: "a", scope: "b", extra: 1 }] } })), "invalid_token");
  assert.equal(await reason(v, token(ana, { over: { attributes: [] } })), "invalid_token");
  // The header's algorithm must be pinned and fit the key.
  const [h, c, s] = token(ana).split(".");
  const head = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  assert.equal(await reason(v, `${head({ alg: "none", kid: "demo-es256" })}.${c}.`), "invalid_token");
  assert.equal(await reason(v, `${head({ alg: "HS256", kid: "demo-es256" })}.${c}.${s}`), "invalid_token");
  assert.equal(await reason(v, `${head({ alg: "RS256", kid: "demo-es256" })}.${c}.${s}`), "invalid_token");
  assert.equal(await reason(v, `${h}.${c}.${s}=`), "invalid_token");
  assert.equal(await reason(v, `${h}.${c}`), "invalid_token");
  assert.equal(await reason(v, "garbage"), "invalid_token");
  // Only ES256 pinned: an RS256 token is refused.
  const es = await verifier({ algorithms: ["ES256"] });
  assert.equal(await reason(es, token(ana, { by: signer("demo-rs256") })), "invalid_token");
  assert.equal(await reason(es, token(ana)), "ok");
});

test("a key set without a usable key is refused; bad options throw", async () => {
  const v = new JwtVerifier({ issuer: ISSUER, audience: AUDIENCE, algorithms: ["ES256"] });
  await assert.rejects(v.setKeys({ keys: [JSON.parse(jwks).keys[0]] }), /no usable key/);
  await assert.rejects(v.setKeys("{}"), /not a JWK set/);
  assert.equal(await v.setKeys(jwks), 1);
  assert.throws(() => new JwtVerifier({ issuer: "", audience: AUDIENCE }), /issuer/);
  assert.throws(() => new JwtVerifier({ issuer: ISSUER, audience: AUDIENCE, algorithms: ["HS256"] }), /unsupported/);
});

test("claims map to a principal as the gateway maps them", () => {
  assert.deepEqual(principalFromClaims({ sub: "a" }), { id: "a" });
  assert.deepEqual(principalFromClaims({ sub: "a", status: null, assignments: null, attributes: null }), { id: "a" });
  assert.deepEqual(principalFromClaims({ sub: "a", assignments: [{ role: "r", scope: "s", tenants: null }] }), {
    id: "a",
    assignments: [{ role: "r", scope: "s" }],
  });
  assert.equal(principalFromClaims({ sub: 1 }), null);
  assert.equal(principalFromClaims({ sub: "a", assignments: {} }), null);
  assert.equal(principalFromClaims({ sub: "a", assignments: [{ role: "r", scope: "s", tenants: "t" }] }), null);
  // every tenant, written as the role files write it (`tenants: all`)
  assert.deepEqual(principalFromClaims({ sub: "a", assignments: [{ role: "r", scope: "s", tenants: "all" }] }), {
    id: "a",
    assignments: [{ role: "r", scope: "s", tenants: "all" }],
  });
  const names = { ...DEFAULT_CLAIMS, subject: "uid", assignments: "roles" };
  assert.deepEqual(principalFromClaims({ uid: "u", roles: [{ role: "r", scope: "s" }] }, names), {
    id: "u",
    assignments: [{ role: "r", scope: "s" }],
  });
});
