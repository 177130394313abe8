//! `rolescope fmt`.

use crate::{POLICY, fixture, root, run};

#[test]
fn fmt_lays_files_out_keeps_comments_is_idempotent_and_check_fails_until_it_ran() {
    let messy = "policy: demo   \n\n\n# the levels\nscopes:\n    msp: {}\n    org: { parent: msp, tenant: true }\nresources:\n    device:\n        actions: [view]   # only one\nroles:\n    viewer:\n        grants:\n        - resources: [device]\n          actions: [view]\n          description: |\n              kept as\n                written\n";
    let dir = fixture(&[("p/roles.yaml", messy), ("q/roles.yaml", POLICY)]);
    let check = run(dir.path(), &["fmt", "--check", "p"]);
    assert_eq!(check.code, 3, "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("would reformat p/roles.yaml"), "{}", check.stdout);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("p/roles.yaml")).expect("reads"),
        messy,
        "--check writes nothing"
    );
    let done = run(dir.path(), &["fmt", "p"]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let out = std::fs::read_to_string(dir.path().join("p/roles.yaml")).expect("reads");
    assert_eq!(
        out,
        "policy: demo\n\n# the levels\nscopes:\n  msp: {}\n  org: { parent: msp, tenant: true }\nresources:\n  device:\n    actions: [view]   # only one\nroles:\n  viewer:\n    grants:\n      - resources: [device]\n        actions: [view]\n        description: |\n            kept as\n              written\n"
    );
    assert_eq!(run(dir.path(), &["fmt", "--check", "p", "q"]).code, 0, "formatted once, formatted for good");
    assert_eq!(run(dir.path(), &["check", "p"]).code, 0);
}

#[test]
fn the_shipped_policies_are_formatted() {
    let r = run(&root(), &["fmt", "--check", "policies"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(", 0 not formatted"), "{}", r.stdout);
}
