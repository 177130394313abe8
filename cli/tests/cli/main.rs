//! Integration tests of the `rolescope` binary: one test binary, one module per subcommand.
//!
//! Every test runs the real binary with `NO_COLOR=1` and `COLUMNS=100` in a temporary folder
//! (or the workspace root, for the corpus), naming files by relative paths, so that output
//! (and the insta snapshots of it) is the same on every machine.

mod ask;
mod build;
mod check;
mod corpus;
mod eval;
mod fmt;
mod help;
mod mistakes;
mod replay;
mod route;
mod schema;
mod sign;
mod test_cmd;

use std::path::{Path, PathBuf};
use std::process::Output;

/// The workspace root.
#[expect(clippy::expect_used, reason = "a test helper: a failure here is a test failure")]
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_path_buf()
}

/// The binary, with a fixed environment: no colour, a fixed width.
pub(crate) fn rolescope(cwd: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_rolescope"));
    cmd.current_dir(cwd).env("NO_COLOR", "1").env("COLUMNS", "100");
    cmd
}

/// What a run printed and how it ended.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl From<Output> for Run {
    #[expect(clippy::expect_used, reason = "a test helper: a failure here is a test failure")]
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().expect("exited normally"),
            stdout: String::from_utf8(o.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(o.stderr).expect("utf-8 stderr"),
        }
    }
}

/// Run `rolescope ARGS` in `cwd`.
#[expect(clippy::expect_used, reason = "a test helper: a failure here is a test failure")]
pub(crate) fn run(cwd: &Path, args: &[&str]) -> Run {
    rolescope(cwd).args(args).output().expect("the binary runs").into()
}

/// A temporary folder holding `files` (paths relative to it).
#[expect(clippy::expect_used, reason = "a test helper: a failure here is a test failure")]
pub(crate) fn fixture(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("file in a folder")).expect("create folder");
        std::fs::write(&path, text).expect("write fixture");
    }
    dir
}

/// A small valid policy: two levels, one kind, three roles, a condition, a deny, an invariant.
pub(crate) const POLICY: &str = r#"policy: demo
scopes:
  msp: {}
  org: { parent: msp, tenant: true }
attributes:
  context:
    channel: string
resources:
  device:
    actions: [view, update, delete]
    attributes: { created_by: string }
    scopes: [org]
roles:
  admin:
    rank: 100
    held_at: [msp]
    grants:
      - { resources: [device], actions: ["*"] }
  technician:
    rank: 50
    grants:
      - { resources: [device], actions: [view] }
      - resources: [device]
        actions: [update]
        when: resource.created_by == principal.id
        description: technicians edit the devices they enrolled
    denies:
      - resources: [device]
        actions: [delete]
        when: not has context.channel or context.channel == "api"
  auditor:
    grants:
      - { resources: [device], actions: [view] }
invariants:
  - name: admin_remains
    roles: [admin]
    level: msp
    at_least: 1
principals:
  ana:
    assignments: [{ role: admin, scope: "msp:acme", tenants: all }]
"#;

/// A suite for [`POLICY`] whose cases all pass.
pub(crate) const SUITE: &str = r#"suite: demo basics
context: { channel: web }
principals:
  ana: { assignments: [{ role: admin, scope: "msp:acme", tenants: all }] }
  tom: { assignments: [{ role: technician, scope: "msp:acme/org:o1" }] }
resources:
  mine: { kind: device, id: d1, scope: "msp:acme/org:o1", attributes: { created_by: tom } }
  theirs: { kind: device, id: d2, scope: "msp:acme/org:o1", attributes: { created_by: zoe } }
  elsewhere: { kind: device, id: d3, scope: "msp:acme/org:o2" }
cases:
  - name: admin updates any device
    principal: ana
    action: update
    resource: theirs
    expect: allow
  - name: technician updates own device
    principal: tom
    action: update
    resource: mine
    expect: allow
    reason: allowed
  - name: technician matrix
    matrix:
      actions: [view, update]
      rows:
        - [tom, theirs, allow, deny]
        - [tom, elsewhere, deny, deny]
"#;

/// A suite for [`POLICY`] with two wrong expectations.
pub(crate) const FAILING_SUITE: &str = r#"suite: demo mistakes
principals:
  tom: { assignments: [{ role: technician, scope: "msp:acme/org:o1" }] }
resources:
  theirs: { kind: device, id: d2, scope: "msp:acme/org:o1", attributes: { created_by: zoe } }
cases:
  - name: technician views a device
    principal: tom
    action: view
    resource: theirs
    expect: allow
  - name: technician updates someone else's device
    principal: tom
    action: update
    resource: theirs
    expect: allow
  - name: technician deletes <over the "api"> & more
    principal: tom
    action: delete
    resource: theirs
    context: { channel: api }
    expect: deny
    reason: no_matching_grant
"#;
