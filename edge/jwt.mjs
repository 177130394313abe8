// Bearer-token verification with WebCrypto (Workers, workerd, Deno, Node >= 20), with the
// gateway's rules (gateway/src/server/identity.rs) and its reason codes:
// - algorithms pinned by configuration (RS256, ES256); `none` and anything else is invalid;
// - keys only from the configured JWKS, by `kid` (never the token's `jwk`/`jku`/`x5u`);
// - `exp` required, `nbf` checked when present (both with a leeway), `iss` and `aud` required;
// - claims mapped to an engine principal by configurable claim names.
// Reasons: invalid_token, expired_token, token_not_yet_valid, wrong_issuer, wrong_audience,
// unknown_key.

const ALGORITHMS = {
  RS256: { kty: "RSA", import: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, verify: { name: "RSASSA-PKCS1-v1_5" } },
  ES256: { kty: "EC", import: { name: "ECDSA", namedCurve: "P-256" }, verify: { name: "ECDSA", hash: "SHA-256" } },
};

/** The claim names the gateway reads by default. */
export const DEFAULT_CLAIMS = { subject: "sub", status: "status", assignments: "assignments", attributes: "attributes" };

/**
 * A token that is not accepted, with the gateway's reason code (the response body's) and its
 * precise cause (the decision record's `cause`, the gateway's codes: `malformed`,
 * `algorithm_not_allowed`, `key_mismatch`, `bad_signature`, `claims`, or the reason itself).
 */
export class TokenError extends Error {
  constructor(reason, cause = reason) {
    super(reason);
    this.reason = reason;
    this.cause = cause;
  }
}

const invalid = (cause = "malformed") => new TokenError("invalid_token", cause);

/** Strict base64url (no padding, no other alphabet) to bytes. */
function b64url(s) {
  if (typeof s !== "string" || !/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) throw invalid();
  const b64 = s.replaceAll("-", "+").replaceAll("_", "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out;
}

function json(bytes) {
  try {
    const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw invalid();
    return v;
  } catch {
    throw invalid();
  }
}

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const isUint = (v) => Number.isSafeInteger(v) && v >= 0;

/** Does `claim` (a string or a list of strings) name `want`? `undefined` when malformed. */
function names(claim, want) {
  if (typeof claim === "string") return claim === want;
  if (Array.isArray(claim) && claim.every((c) => typeof c === "string")) return claim.includes(want);
  return undefined;
}

/**
 * The principal the verified claims describe, or `null` when they do not fit (the gateway's
 * `principal_from_claims`: a non-empty subject, a string status, well-formed assignments and an
 * attribute object).
 */
export function principalFromClaims(claims, claimNames = DEFAULT_CLAIMS) {
  const id = claims[claimNames.subject];
  if (typeof id !== "string" || id === "") return null;
  const principal = { id };
  const status = claims[claimNames.status];
  if (status !== undefined && status !== null) {
    if (typeof status !== "string") return null;
    principal.status = status;
  }
  const assignments = claims[claimNames.assignments];
  if (assignments !== undefined && assignments !== null) {
    if (!Array.isArray(assignments)) return null;
    for (const a of assignments) {
      if (!isObject(a) || typeof a.role !== "string" || typeof a.scope !== "string") return null;
      if (Object.keys(a).some((k) => k !== "role" && k !== "scope" && k !== "tenants")) return null;
      const t = a.tenants;
      // `tenants`: every tenant (`"all"`) or a list of tenant ids, as the engine reads it
      if (t !== undefined && t !== null && t !== "all" && !(Array.isArray(t) && t.every((x) => typeof x === "string"))) return null;
    }
    principal.assignments = assignments.map((a) =>
      a.tenants === undefined || a.tenants === null ? { role: a.role, scope: a.scope } : { role: a.role, scope: a.scope, tenants: a.tenants },
    );
  }
  const attributes = claims[claimNames.attributes];
  if (attributes !== undefined && attributes !== null) {
    if (!isObject(attributes)) return null;
    principal.attributes = attributes;
  }
  return principal;
}

/** Verifies bearer tokens against a JWKS. */
export class JwtVerifier {
  /**
   * @param {{ issuer: string, audience: string, algorithms?: string[], leeway?: number,
   *   claims?: Partial<typeof DEFAULT_CLAIMS> }} options `leeway` in seconds (default 30)
   */
  constructor({ issuer, audience, algorithms = ["RS256", "ES256"], leeway = 30, claims = {} }) {
    if (typeof issuer !== "string" || issuer === "") throw new Error("jwt: `issuer` is required");
    if (typeof audience !== "string" || audience === "") throw new Error("jwt: `audience` is required");
    for (const a of algorithms) if (!ALGORITHMS[a]) throw new Error(`jwt: unsupported algorithm \`${a}\` (RS256, ES256)`);
    if (algorithms.length === 0) throw new Error("jwt: no algorithm");
    if (!isUint(leeway)) throw new Error("jwt: `leeway` must be a whole number of seconds");
    this.issuer = issuer;
    this.audience = audience;
    this.algorithms = [...algorithms];
    this.leeway = leeway;
    this.claims = { ...DEFAULT_CLAIMS, ...claims };
    /** @type {Map<string, { key: CryptoKey, kty: string, alg?: string }>} */
    this.keys = new Map();
  }

  /**
   * Replace the key set (JWKS JSON text or object). Keys without `kid`, or of a type no pinned
   * algorithm uses, are skipped; a set with no usable key is refused. Returns the key count.
   */
  async setKeys(jwks) {
    const set = typeof jwks === "string" ? JSON.parse(jwks) : jwks;
    if (!isObject(set) || !Array.isArray(set.keys)) throw new Error("jwks: not a JWK set");
    const keys = new Map();
    for (const jwk of set.keys) {
      if (!isObject(jwk) || typeof jwk.kid !== "string") continue;
      if (jwk.alg !== undefined && !ALGORITHMS[jwk.alg]) throw new Error(`jwks: key \`${jwk.kid}\`: unsupported alg \`${jwk.alg}\``);
      const alg = this.algorithms.find((a) => ALGORITHMS[a].kty === jwk.kty && (jwk.alg === undefined || jwk.alg === a));
      if (!alg) continue;
      const { kty, n, e, crv, x, y } = jwk;
      const material = kty === "RSA" ? { kty, n, e } : { kty, crv, x, y };
      let key;
      try {
        key = await crypto.subtle.importKey("jwk", material, ALGORITHMS[alg].import, false, ["verify"]);
      } catch (err) {
        throw new Error(`jwks: key \`${jwk.kid}\`: ${err.message}`);
      }
      keys.set(jwk.kid, { key, kty, alg: jwk.alg });
    }
    if (keys.size === 0) throw new Error("jwks: no usable key (every key needs a `kid` and a pinned algorithm's key type)");
    this.keys = keys;
    return keys.size;
  }

  /**
   * Verify `token` at `now` (seconds since the epoch).
   * @returns {Promise<{ principal: object, exp: number }>} @throws {TokenError}
   */
  async verify(token, now) {
    const parts = typeof token === "string" ? token.split(".") : [];
    if (parts.length !== 3) throw invalid();
    const header = json(b64url(parts[0]));
    const alg = header.alg;
    if (typeof alg !== "string" || !this.algorithms.includes(alg)) throw invalid(typeof alg === "string" ? "algorithm_not_allowed" : "malformed");
    const entry = typeof header.kid === "string" ? this.keys.get(header.kid) : undefined;
    if (!entry) throw new TokenError("unknown_key");
    if (entry.kty !== ALGORITHMS[alg].kty || (entry.alg !== undefined && entry.alg !== alg)) throw invalid("key_mismatch");
    const signature = b64url(parts[2]);
    const signed = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
    let ok = false;
    try {
      ok = await crypto.subtle.verify(ALGORITHMS[alg].verify, entry.key, signature, signed);
    } catch {
      ok = false;
    }
    if (!ok) throw invalid("bad_signature");
    const claims = json(b64url(parts[1]));
    this.validate(claims, now);
    const principal = principalFromClaims(claims, this.claims);
    if (principal === null) throw invalid("claims");
    return { principal, exp: claims.exp };
  }

  /** The registered claims, in the order the gateway's library checks them. */
  validate(claims, now) {
    // Required: exp (a whole number), iss, aud.
    if (!isUint(claims.exp)) throw invalid("claims");
    const iss = names(claims.iss, this.issuer);
    if (iss === undefined) throw new TokenError("wrong_issuer");
    const aud = names(claims.aud, this.audience);
    if (aud === undefined) throw new TokenError("wrong_audience");
    if (claims.nbf !== undefined && !isUint(claims.nbf)) throw invalid("claims");
    if (claims.exp < now - this.leeway) throw new TokenError("expired_token");
    if (claims.nbf !== undefined && claims.nbf > now + this.leeway) throw new TokenError("token_not_yet_valid");
    if (!iss) throw new TokenError("wrong_issuer");
    if (!aud) throw new TokenError("wrong_audience");
  }
}
