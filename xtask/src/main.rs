//! Build orchestration for rolescope: `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//!
//! - `wasm`: installs what it needs (the wasm32 target, wasm-bindgen-cli at the version
//!   `Cargo.lock` pins, binaryen's `wasm-opt` from `tools/package.json`), builds the module once
//!   with the `wasm` profile, generates the JS glue for `nodejs`, `web` and `bundler`, optimizes
//!   the module once (`wasm-opt -Oz`) and ships those bytes to all three, assembles the npm
//!   package in `bindings/pkg`, and writes `target/wasm/rolescope.wasm` (the same bytes, for the
//!   gateway), its sha256 and `target/wasm/size.json`.
//! - `parity`: writes the parity corpus (`rolescope-parity`: suite cases plus generated requests,
//!   each with the native decision) and checks that the Node package decides every one alike.
//! - `bench-node`: the Node benchmarks (`bindings/npm/bench/check.mjs`).
//! - `bench`: every benchmark against the peers (native, Node, module size, gateway) in one
//!   run, written to `BENCHMARKS.md` (see `bench.rs`).
//!
//! Every install is idempotent and uses only the package registries (crates.io, npm).

mod bench;
mod bench_replay;
mod tools;
mod wasm;

use std::ffi::OsStr;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Any error, with a message fit for the terminal.
type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from a message.
fn fail(msg: impl Display) -> Error {
    msg.to_string().into()
}

/// Adds what was being done to an error.
trait Context<T> {
    fn context(self, what: impl Display) -> Result<T>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| fail(format!("{what}: {e}")))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: impl Display) -> Result<T> {
        self.ok_or_else(|| fail(what))
    }
}

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  wasm        build the WebAssembly module and the npm package (bindings/pkg),
              target/wasm/rolescope.wasm, its sha256 and size.json
  parity      write the parity corpus (target/parity) and run it through the Node package
  bench-node  run the Node benchmarks (bindings/npm/bench/check.mjs)
  bench       every benchmark against the peers in one run, written to BENCHMARKS.md
              [--quick] [--only native,node,gateway,directory,forward-auth] [--report-only]
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root();
    let result = match args.first().map(String::as_str) {
        Some("wasm") => wasm::build(&root),
        Some("parity") => parity(&root),
        Some("bench-node") => bench_node(&root),
        Some("bench") => bench::bench(&root, args.get(1..).unwrap_or_default()),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(())
        }
        other => {
            eprint!("{}{USAGE}", other.map(|t| format!("unknown task `{t}`\n\n")).unwrap_or_default());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// The cargo that runs us (so nested builds use the same toolchain).
fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Prints a step header and returns when it started.
fn step(what: impl Display) -> Instant {
    println!("\nxtask: ==> {what}");
    Instant::now()
}

/// Prints how long a step took.
fn done(start: Instant) {
    println!("xtask:     done in {:.1} s", start.elapsed().as_secs_f64());
}

fn show(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        let a = a.to_string_lossy();
        s.push(' ');
        // an inline script is shown as such, not printed whole
        s.push_str(if a.contains('\n') { "<script>" } else { &a });
    }
    s
}

/// Runs a command with inherited output; fails unless it exits 0.
fn run(cmd: &mut Command) -> Result<()> {
    println!("xtask: $ {}", show(cmd));
    let status = cmd.status().context(format!("cannot run `{}`", show(cmd)))?;
    if status.success() { Ok(()) } else { Err(fail(format!("`{}` failed ({status})", show(cmd)))) }
}

/// Runs a command and returns its standard output, or `None` if it cannot run or fails.
fn capture(program: impl AsRef<OsStr>, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `cargo xtask parity`: write the corpus with the native engine, then decide it in Node.
fn parity(root: &Path) -> Result<()> {
    let corpus = root.join("target/parity/requests.jsonl");
    if root.join("tests/parity/Cargo.toml").is_file() {
        let t = step("parity corpus: native decisions (rolescope-parity)");
        run(cargo().current_dir(root).args(["run", "-q", "--locked", "-p", "rolescope-parity"]))?;
        done(t);
    }
    if !corpus.is_file() {
        println!(
            "\nxtask: SKIPPED parity: {} does not exist and no generator (tests/parity) is in the workspace",
            corpus.display()
        );
        return Ok(());
    }
    if !root.join("bindings/pkg/package.json").is_file() {
        wasm::build(root)?;
    }
    let t = step("parity: the Node package decides every case as the native engine");
    run(Command::new("node").current_dir(root).args(["--test", "bindings/npm/test/parity.test.mjs"]))?;
    done(t);
    Ok(())
}

/// `cargo xtask bench-node`: builds the package if needed, then runs the Node benchmarks.
fn bench_node(root: &Path) -> Result<()> {
    if !root.join("bindings/pkg/package.json").is_file() {
        wasm::build(root)?;
    }
    let t = step("Node benchmarks (bindings/npm/bench/check.mjs)");
    run(Command::new("node").current_dir(root).arg("bindings/npm/bench/check.mjs"))?;
    done(t);
    Ok(())
}
