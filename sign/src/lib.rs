#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The envelope format identifier.
pub const ENVELOPE_FORMAT: &str = "rolescope-signed-bundle/1";

/// The only signature algorithm.
pub const ALG: &str = "ed25519";

/// What is signed: this prefix, then the bundle's bytes (so that a signature over a bundle
/// can never be replayed as a signature over anything else).
const DOMAIN: &[u8] = b"rolescope-signed-bundle/1\n";

/// Why an envelope, or a key, was refused. Every variant means: do not load the bundle.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The text is not an envelope (not JSON, truncated, unknown format or fields, bad base64,
    /// a signature of the wrong length): a plain bundle is [`Error::Unsigned`].
    #[error("not a signed bundle: {0}")]
    BadFormat(String),
    /// A plain bundle, or an envelope without signatures.
    #[error("the bundle is not signed")]
    Unsigned,
    /// No signature is by a trusted key (the key ids found are listed).
    #[error("no signature by a trusted key (signed by: {})", if .0.is_empty() { "-".to_owned() } else { .0.join(", ") })]
    UnknownKey(Vec<String>),
    /// A signature by a trusted key does not match the bundle: it was changed after signing.
    #[error("the signature by key `{0}` does not match the bundle (tampered)")]
    Tampered(String),
    /// A key file could not be read as PEM (PKCS#8 private key or SPKI public key, ed25519).
    #[error("invalid key: {0}")]
    Key(String),
    /// The system random source failed (key generation).
    #[error("no randomness for key generation: {0}")]
    Random(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    format: String,
    bundle: String,
    signatures: Vec<SignatureEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureEntry {
    key_id: String,
    alg: String,
    sig: String,
}

/// The id of a public key: the first 16 bytes of SHA-256 over its 32 raw bytes, in lowercase
/// hex. Envelopes name the key that signed them by this id.
pub fn key_id(key: &VerifyingKey) -> String {
    Sha256::digest(key.as_bytes()).iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn message(bundle: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + bundle.len());
    m.extend_from_slice(DOMAIN);
    m.extend_from_slice(bundle.as_bytes());
    m
}

/// Wrap a bundle (the JSON `rolescope build` writes) in an envelope signed by every key in
/// `keys` (one key, or several during a key rotation). Returns the envelope as JSON.
pub fn sign(bundle: &str, keys: &[&SigningKey]) -> Result<String, Error> {
    if keys.is_empty() {
        return Err(Error::Unsigned);
    }
    let msg = message(bundle);
    let signatures = keys
        .iter()
        .map(|k| SignatureEntry {
            key_id: key_id(&k.verifying_key()),
            alg: ALG.to_owned(),
            sig: BASE64.encode(k.sign(&msg).to_bytes()),
        })
        .collect();
    let env = Envelope { format: ENVELOPE_FORMAT.to_owned(), bundle: bundle.to_owned(), signatures };
    serde_json::to_string(&env).map_err(|e| Error::BadFormat(e.to_string()))
}

/// Whether `text` looks like an envelope (a JSON object whose `format` is
/// [`ENVELOPE_FORMAT`]); it says nothing about its signatures.
pub fn is_envelope(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        format: String,
    }
    serde_json::from_str::<Probe>(text).is_ok_and(|p| p.format == ENVELOPE_FORMAT)
}

/// Check an envelope against the trusted public keys and return the bundle it carries. The
/// bundle is accepted when at least one signature is by a trusted key and verifies (strict
/// ed25519); a signature by a trusted key that does not verify refuses the envelope outright.
pub fn verify(envelope: &str, trusted: &[VerifyingKey]) -> Result<String, Error> {
    let env: Envelope = match serde_json::from_str(envelope) {
        Ok(e) => e,
        // A plain bundle is refused as unsigned rather than as malformed.
        Err(_)
            if serde_json::from_str::<serde_json::Value>(envelope)
                .ok()
                .and_then(|v| v.get("format").and_then(|f| f.as_str().map(str::to_owned)))
                .is_some_and(|f| f.starts_with("rolescope-bundle/")) =>
        {
            return Err(Error::Unsigned);
        }
        Err(e) => return Err(Error::BadFormat(e.to_string())),
    };
    if env.format != ENVELOPE_FORMAT {
        return Err(Error::BadFormat(format!("format `{}` (expected `{ENVELOPE_FORMAT}`)", env.format)));
    }
    if env.signatures.is_empty() {
        return Err(Error::Unsigned);
    }
    let msg = message(&env.bundle);
    let mut verified = false;
    let mut unknown = Vec::new();
    for s in &env.signatures {
        if s.alg != ALG {
            return Err(Error::BadFormat(format!("signature algorithm `{}` (expected `{ALG}`)", s.alg)));
        }
        let bytes = BASE64.decode(&s.sig).map_err(|e| Error::BadFormat(format!("signature: {e}")))?;
        let sig = Signature::from_slice(&bytes).map_err(|_| Error::BadFormat("signature length".into()))?;
        match trusted.iter().find(|k| key_id(k) == s.key_id) {
            None => unknown.push(s.key_id.clone()),
            Some(k) => {
                if k.verify_strict(&msg, &sig).is_err() {
                    return Err(Error::Tampered(s.key_id.clone()));
                }
                verified = true;
            }
        }
    }
    if verified { Ok(env.bundle) } else { Err(Error::UnknownKey(unknown)) }
}

/// A new random key pair.
pub fn generate() -> Result<SigningKey, Error> {
    let mut seed = ed25519_dalek::SecretKey::default();
    rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut seed).map_err(|e| Error::Random(e.to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A private key as PEM (PKCS#8, `-----BEGIN PRIVATE KEY-----`).
pub fn private_key_to_pem(key: &SigningKey) -> Result<String, Error> {
    key.to_pkcs8_pem(LineEnding::LF).map(|p| p.as_str().to_owned()).map_err(|e| Error::Key(e.to_string()))
}

/// A public key as PEM (SPKI, `-----BEGIN PUBLIC KEY-----`).
pub fn public_key_to_pem(key: &VerifyingKey) -> Result<String, Error> {
    key.to_public_key_pem(LineEnding::LF).map_err(|e| Error::Key(e.to_string()))
}

/// Read a private key file's text (PKCS#8 PEM).
pub fn private_key_from_pem(pem: &str) -> Result<SigningKey, Error> {
    SigningKey::from_pkcs8_pem(pem).map_err(|e| Error::Key(format!("not an ed25519 PKCS#8 private key: {e}")))
}

/// Read a public key file's text (SPKI PEM).
pub fn public_key_from_pem(pem: &str) -> Result<VerifyingKey, Error> {
    VerifyingKey::from_public_key_pem(pem).map_err(|e| Error::Key(format!("not an ed25519 SPKI public key: {e}")))
}
