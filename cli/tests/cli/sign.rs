//! `rolescope keygen` and `rolescope build --sign`.

use crate::{POLICY, fixture, run};

/// The RFC 8410 example key, as `openssl genpkey -algorithm ed25519` writes keys.
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n";
const PUBLIC: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=\n-----END PUBLIC KEY-----\n";

#[expect(clippy::expect_used, reason = "a test helper: a failure here is a test failure")]
fn trusted(pem: &str) -> rolescope_sign::VerifyingKey {
    rolescope_sign::public_key_from_pem(pem).expect("a public key")
}

#[test]
fn keygen_writes_a_pair_that_signs_and_verifies() {
    let dir = fixture(&[("demo/roles.yaml", POLICY)]);
    let r = run(dir.path(), &["keygen", "--out", "keys"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("wrote key pair "), "{}", r.stdout);
    assert!(r.stdout.contains("private: keys/rolescope.key.pem"), "{}", r.stdout);
    let private = std::fs::read_to_string(dir.path().join("keys/rolescope.key.pem")).unwrap();
    let public = std::fs::read_to_string(dir.path().join("keys/rolescope.pub.pem")).unwrap();
    assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("keys/rolescope.key.pem")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the private key is readable by its owner only: {mode:o}");
    }
    let key_id = rolescope_sign::key_id(&trusted(&public));
    assert!(r.stdout.contains(&key_id), "the key id is printed: {}", r.stdout);

    let b = run(dir.path(), &["build", "demo", "-o", "signed.json", "--sign", "keys/rolescope.key.pem"]);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert!(b.stdout.contains(&format!("signed by {key_id}")), "{}", b.stdout);
    let envelope = std::fs::read_to_string(dir.path().join("signed.json")).unwrap();
    let bundle = rolescope_sign::verify(envelope.trim_end(), &[trusted(&public)]).expect("verifies");
    let plain = run(dir.path(), &["build", "demo", "-o", "-"]);
    assert_eq!(format!("{bundle}\n"), plain.stdout, "the envelope carries the very bundle `build` writes");

    // a second keygen into the same folder overwrites nothing
    let again = run(dir.path(), &["keygen", "--out", "keys"]);
    assert_eq!(again.code, 2, "{}", again.stderr);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    assert_eq!(std::fs::read_to_string(dir.path().join("keys/rolescope.key.pem")).unwrap(), private);
    assert_eq!(run(dir.path(), &["keygen", "--out", "keys", "--name", "next"]).code, 0);
}

#[test]
fn build_sign_output_is_stable() {
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("key.pem", KEY)]);
    let r = run(dir.path(), &["build", "demo", "-o", "signed.json", "--sign", "key.pem"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let revision = r.stdout.split_whitespace().nth(4).unwrap_or("").to_owned();
    insta::assert_snapshot!(r.stdout.replace(&revision, "[revision]"), @r"
    built policy `demo` revision [revision]
      1 file, 3 roles, 5 rules -> signed.json
      signed by e744c0791320c3285460eddb523f14c8
    ");
    let envelope = std::fs::read_to_string(dir.path().join("signed.json")).unwrap();
    assert!(rolescope_sign::verify(envelope.trim_end(), &[trusted(PUBLIC)]).is_ok());
    // ed25519 is deterministic: the same key and bundle give the same envelope
    let again = run(dir.path(), &["build", "demo", "-o", "-", "--sign", "key.pem"]);
    assert_eq!(again.stdout, envelope);
    // two keys: an envelope for a key rotation
    let other = run(dir.path(), &["keygen", "--out", "."]);
    assert_eq!(other.code, 0, "{}", other.stderr);
    let two = run(dir.path(), &["build", "demo", "-o", "-", "--sign", "key.pem", "--sign", "rolescope.key.pem"]);
    assert_eq!(two.code, 0, "{}", two.stderr);
    let v: serde_json::Value = serde_json::from_str(&two.stdout).unwrap();
    assert_eq!(v["signatures"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_bad_or_missing_key_builds_nothing() {
    let dir = fixture(&[("demo/roles.yaml", POLICY), ("pub.pem", PUBLIC), ("junk.pem", "not a key\n")]);
    for (key, needle) in
        [("pub.pem", "not an ed25519 PKCS#8 private key"), ("junk.pem", "PKCS#8"), ("nope.pem", "does not exist")]
    {
        let r = run(dir.path(), &["build", "demo", "-o", "signed.json", "--sign", key]);
        assert_eq!(r.code, 2, "{key}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{key}: {}", r.stderr);
        assert!(!dir.path().join("signed.json").exists());
    }
}
