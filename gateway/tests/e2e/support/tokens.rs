//! Real signed tokens: RS256 with the test key in `keys/` (its public half is `keys/jwks.json`,
//! the gateway's `jwks_file`), plus the forged tokens the attack suite needs.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rolescope_engine::Principal;
use serde_json::{Value, json};

/// The issuer and audience every gateway in these tests expects.
pub(crate) const ISSUER: &str = "https://idp.e2e.rolescope.test";
/// See [`ISSUER`].
pub(crate) const AUDIENCE: &str = "rolescope-e2e";
/// The `kid` of the signing key in `keys/jwks.json`.
pub(crate) const KID: &str = "e2e-signer";

/// The folder with the test keys.
pub(crate) fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/keys")
}

/// The JWKS file the gateway verifies with.
pub(crate) fn jwks_file() -> PathBuf {
    keys_dir().join("jwks.json")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(keys_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The claims of a valid token for `p` (valid for an hour).
pub(crate) fn claims(p: &Principal) -> Value {
    let now = now();
    let mut c = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": p.id,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 3600,
        "assignments": p.assignments,
        "attributes": p.attributes,
    });
    if let Some(s) = &p.status {
        c["status"] = json!(s);
    }
    c
}

/// Sign `claims` with RS256 and the test key (or `other.pem`, a key the gateway does not know,
/// when `other_key`), with `kid`.
pub(crate) fn sign_rs256(claims: &Value, kid: Option<&str>, other_key: bool) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let pem = read(if other_key { "other.pem" } else { "signer.pem" });
    let key = EncodingKey::from_rsa_pem(&pem).expect("test key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

/// Sign `claims` with RS256 and the test key under a JOSE header given as JSON (extra
/// parameters such as `crit` or `b64` that jsonwebtoken's `Header` cannot carry).
pub(crate) fn sign_with_header(header: &Value, claims: &Value) -> String {
    let key = EncodingKey::from_rsa_pem(&read("signer.pem")).expect("test key");
    let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::RS256).expect("sign");
    format!("{input}.{signature}")
}

/// The `kid` of the Ed25519 key in `keys/ed25519-jwks.json` (signing is cheap in a debug
/// build: the tests that need thousands of tokens use it).
pub(crate) const ED_KID: &str = "e2e-ed25519";

/// Sign `claims` with EdDSA (Ed25519) and `keys/ed25519.pem`.
pub(crate) fn sign_eddsa(claims: &Value, key: &EncodingKey) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(ED_KID.into());
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

/// The Ed25519 signing key.
pub(crate) fn ed_key() -> EncodingKey {
    EncodingKey::from_ed_pem(&read("ed25519.pem")).expect("test key")
}

/// A valid token for `p`.
pub(crate) fn token(p: &Principal) -> String {
    sign_rs256(&claims(p), Some(KID), false)
}

/// `Bearer <token for p>`.
pub(crate) fn bearer(p: &Principal) -> String {
    format!("Bearer {}", token(p))
}

/// base64url without padding.
pub(crate) fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// An unsigned token (`alg: none`).
pub(crate) fn alg_none(claims: &Value) -> String {
    let header = json!({ "alg": "none", "typ": "JWT", "kid": KID });
    format!("{}.{}.", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()))
}

/// HS256 with the RSA public key (PEM bytes) as the HMAC secret: the key-confusion attack.
pub(crate) fn hs256_with_public_key(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(KID.into());
    let key = EncodingKey::from_secret(&read("signer.pub.pem"));
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

#[test]
fn b64url_matches_known_vectors() {
    assert_eq!(b64url(b""), "");
    assert_eq!(b64url(b"f"), "Zg");
    assert_eq!(b64url(b"fo"), "Zm8");
    assert_eq!(b64url(b"foo"), "Zm9v");
    assert_eq!(b64url(&[0xfb, 0xff]), "-_8");
}
