//! Signed bundles through the public API: valid, unsigned, tampered, wrong key, truncated,
//! malformed, rotation, and PEM keys (including ones written by OpenSSL).

#![expect(clippy::expect_used, reason = "test helpers fail loudly")]

use rolescope_engine::{Policy, Source};
use rolescope_sign::{Error, SigningKey, VerifyingKey, sign, verify};

const POLICY: &str = "policy: p\nscopes: { msp: {}, org: { parent: msp } }\nresources:\n  device: { actions: [view] }\nroles:\n  r: { grants: [{ resources: [device], actions: [view] }] }\n";

fn bundle() -> String {
    Policy::bundle(&[Source::new("roles.yaml", POLICY)]).expect("bundle").1
}

/// A fixed key (tests stay reproducible).
fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn public(k: &SigningKey) -> VerifyingKey {
    k.verifying_key()
}

fn envelope_json(envelope: &str) -> serde_json::Value {
    serde_json::from_str(envelope).expect("envelope JSON")
}

#[test]
fn a_valid_envelope_returns_the_bundle_byte_for_byte() {
    let b = bundle();
    let env = sign(&b, &[&key(1)]).expect("sign");
    assert_eq!(verify(&env, &[public(&key(1))]), Ok(b.clone()));
    // among other trusted keys too
    assert_eq!(verify(&env, &[public(&key(7)), public(&key(1))]), Ok(b.clone()));
    let v = envelope_json(&env);
    assert_eq!(v["format"], "rolescope-signed-bundle/1");
    assert_eq!(v["signatures"][0]["alg"], "ed25519");
    assert_eq!(v["signatures"][0]["key_id"], rolescope_sign::key_id(&public(&key(1))));
    assert!(rolescope_sign::is_envelope(&env));
    assert!(!rolescope_sign::is_envelope(&b));
    let loaded = Policy::from_bundle(&verify(&env, &[public(&key(1))]).expect("verified")).expect("loads");
    assert_eq!(loaded.name(), "p");
}

#[test]
fn unsigned_bundles_and_envelopes_without_signatures_are_refused() {
    let b = bundle();
    assert_eq!(verify(&b, &[public(&key(1))]), Err(Error::Unsigned), "a plain bundle");
    let mut v = envelope_json(&sign(&b, &[&key(1)]).expect("sign"));
    v["signatures"] = serde_json::json!([]);
    assert_eq!(verify(&v.to_string(), &[public(&key(1))]), Err(Error::Unsigned));
    assert_eq!(sign(&b, &[]), Err(Error::Unsigned), "signing with no key");
}

#[test]
fn every_single_byte_change_in_the_bundle_is_refused_as_tampered() {
    let b = bundle();
    let env = sign(&b, &[&key(1)]).expect("sign");
    let trusted = [public(&key(1))];
    let mut v = envelope_json(&env);
    // change every fifth byte of the bundle in turn (to another printable byte), re-wrap, verify
    for i in (0..b.len()).step_by(5) {
        let mut bytes = b.clone().into_bytes();
        bytes[i] = if bytes[i] == b'x' { b'y' } else { b'x' };
        let Ok(changed) = String::from_utf8(bytes) else { continue };
        v["bundle"] = serde_json::Value::String(changed);
        let out = verify(&v.to_string(), &trusted);
        assert_eq!(out, Err(Error::Tampered(rolescope_sign::key_id(&trusted[0]))), "byte {i}");
    }
    // a changed signature, too
    let mut v = envelope_json(&env);
    let sig = v["signatures"][0]["sig"].as_str().expect("sig").to_owned();
    let flipped = format!("{}{}", if sig.starts_with('A') { "B" } else { "A" }, &sig[1..]);
    v["signatures"][0]["sig"] = flipped.into();
    assert!(matches!(verify(&v.to_string(), &trusted), Err(Error::Tampered(_))));
}

#[test]
fn a_signature_by_an_untrusted_key_is_refused() {
    let b = bundle();
    let env = sign(&b, &[&key(2)]).expect("sign");
    let out = verify(&env, &[public(&key(1))]);
    assert_eq!(out, Err(Error::UnknownKey(vec![rolescope_sign::key_id(&public(&key(2)))])));
    assert!(matches!(verify(&env, &[]), Err(Error::UnknownKey(_))), "no trusted keys at all");
    // an untrusted signer claiming a trusted key's id is caught by the signature itself
    let mut v = envelope_json(&env);
    v["signatures"][0]["key_id"] = rolescope_sign::key_id(&public(&key(1))).into();
    assert!(matches!(verify(&v.to_string(), &[public(&key(1))]), Err(Error::Tampered(_))));
}

#[test]
fn truncated_and_malformed_envelopes_are_refused() {
    let env = sign(&bundle(), &[&key(1)]).expect("sign");
    let trusted = [public(&key(1))];
    for cut in (0..env.len()).step_by(7) {
        let out = verify(&env[..cut], &trusted);
        assert!(matches!(out, Err(Error::BadFormat(_))), "cut at {cut}: {out:?}");
    }
    let v = envelope_json(&env);
    let cases: Vec<(&str, serde_json::Value)> = vec![
        ("format", serde_json::json!("rolescope-signed-bundle/2")),
        ("signatures", serde_json::json!([{ "key_id": "x", "alg": "rsa", "sig": "AA==" }])),
        ("signatures", serde_json::json!([{ "key_id": "x", "alg": "ed25519", "sig": "not base64!" }])),
        ("signatures", serde_json::json!([{ "key_id": "x", "alg": "ed25519", "sig": "AAAA" }])),
        ("bundle", serde_json::json!(42)),
        ("extra", serde_json::json!(true)),
    ];
    for (field, value) in cases {
        let mut w = v.clone();
        w[field] = value.clone();
        let out = verify(&w.to_string(), &trusted);
        assert!(matches!(out, Err(Error::BadFormat(_))), "{field} = {value}: {out:?}");
    }
    assert!(matches!(verify("", &trusted), Err(Error::BadFormat(_))));
}

#[test]
fn a_rotation_envelope_verifies_under_either_key() {
    let b = bundle();
    let env = sign(&b, &[&key(1), &key(2)]).expect("sign");
    assert_eq!(verify(&env, &[public(&key(1))]), Ok(b.clone()));
    assert_eq!(verify(&env, &[public(&key(2))]), Ok(b.clone()));
    assert!(matches!(verify(&env, &[public(&key(3))]), Err(Error::UnknownKey(ids)) if ids.len() == 2));
}

#[test]
fn keys_round_trip_through_pem() {
    let k = rolescope_sign::generate().expect("random key");
    assert_ne!(k.to_bytes(), rolescope_sign::generate().expect("random key").to_bytes());
    let private = rolescope_sign::private_key_to_pem(&k).expect("pem");
    let public_pem = rolescope_sign::public_key_to_pem(&k.verifying_key()).expect("pem");
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{private}");
    assert!(public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"), "{public_pem}");
    let back = rolescope_sign::private_key_from_pem(&private).expect("private back");
    assert_eq!(back.to_bytes(), k.to_bytes());
    assert_eq!(rolescope_sign::public_key_from_pem(&public_pem).expect("public back"), k.verifying_key());
    assert!(matches!(rolescope_sign::private_key_from_pem(&public_pem), Err(Error::Key(_))));
    assert!(matches!(rolescope_sign::public_key_from_pem(&private), Err(Error::Key(_))));
    assert!(matches!(rolescope_sign::public_key_from_pem("-----BEGIN PUBLIC KEY-----\n"), Err(Error::Key(_))));
}

/// Keys as `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout` write them (the
/// RFC 8410 example key).
#[test]
fn openssl_pem_keys_are_read() {
    let private = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
    let public_pem = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";
    let k = rolescope_sign::private_key_from_pem(private).expect("openssl private key");
    let p = rolescope_sign::public_key_from_pem(public_pem).expect("openssl public key");
    assert_eq!(k.verifying_key(), p);
    let b = bundle();
    assert_eq!(verify(&sign(&b, &[&k]).expect("sign"), &[p]), Ok(b));
}
