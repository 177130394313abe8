//! `--help`, usage errors.

use crate::{root, run};

#[test]
fn help_documents_the_exit_codes() {
    let r = run(&root(), &["--help"]);
    assert_eq!(r.code, 0);
    for line in [
        "0  success",
        "1  internal error",
        "2  usage error",
        "3  invalid policy",
        "4  test failures",
        "5  denied",
        "NO_COLOR",
    ] {
        assert!(r.stdout.contains(line), "missing `{line}` in:\n{}", r.stdout);
    }
    let sub = run(&root(), &["eval", "--help"]);
    assert!(sub.stdout.contains("--exit-code") && sub.stdout.contains("5  denied"), "{}", sub.stdout);
}

#[test]
fn unknown_subcommands_and_flags_exit_2() {
    assert_eq!(run(&root(), &["frobnicate"]).code, 2);
    assert_eq!(run(&root(), &["test", "--no-such-flag"]).code, 2);
    assert_eq!(run(&root(), &[]).code, 2);
}
