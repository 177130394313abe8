//! `cargo xtask bench`: every benchmark against the peers in one run, assembled into
//! `BENCHMARKS.md`.
//!
//! Each part is its own program and writes a markdown fragment (`<part>.md`, starting with a
//! `## ` heading and the command that produced it) and a JSON summary (`<part>.json`: the
//! versions of what it measured and its goals, each met or missed) into `target/bench`:
//!
//! | part | program |
//! | --- | --- |
//! | native | in `bench/peers` (a workspace of its own): `cargo bench --bench peers`, then its `peers-report` binary (also `growth.svg`) |
//! | node, size | `node bench/js/peers.mjs` |
//! | gateway | `scripts/bench-gateway.sh` |
//! | directory | `cargo bench -p rolescope-gateway --profile release --bench directory` (the principal directory at 100,000 principals) |
//! | forward-auth | `scripts/bench-forward-auth.sh` |
//! | replay | `rolescope replay` over a generated 2,000,000-record decision log (`bench_replay.rs`) |
//! | compile | `cargo bench -p rolescope-cli --profile release --bench compile` (10,000 roles / 100,000 grants from YAML and JSON, `rolescope check` on them, `eval --batch` of 100,000 requests) |
//!
//! This task runs them in that order on one machine, then writes the report: the machine and
//! every version at the top, a table of every goal, then the fragments. A part that fails is
//! named in the report and makes the task fail after the report is written, so one broken peer
//! does not throw away an hour of measurements.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::{Context, Result, capture, cargo, done, fail, run, step, wasm};

/// What `cargo xtask bench` was asked for.
#[derive(Debug, Default)]
struct Options {
    /// Short runs of every part (a smoke test of the whole pipeline; its numbers are not results).
    quick: bool,
    /// Only these parts (all when empty).
    only: Vec<String>,
    /// Run nothing: assemble BENCHMARKS.md again from the fragments of the last run.
    report_only: bool,
}

const PARTS: [&str; 7] = ["native", "node", "gateway", "directory", "forward-auth", "replay", "compile"];

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--report-only" => o.report_only = true,
            "--only" => {
                let list = it.next().context("--only needs a list, e.g. --only native,node")?;
                for p in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    if !PARTS.contains(&p) {
                        return Err(fail(format!("unknown part `{p}` (parts: {})", PARTS.join(", "))));
                    }
                    o.only.push(p.to_owned());
                }
            }
            other => {
                return Err(fail(format!(
                    "unknown argument `{other}` (usage: cargo xtask bench [--quick] [--only native,node,gateway,directory,forward-auth,replay,compile] [--report-only])"
                )));
            }
        }
    }
    Ok(o)
}

/// `cargo xtask bench [--quick] [--only PARTS]`.
/// A part that is a `harness = false` bench of `package` in the release profile, writing its
/// report into `out` (`--quick` passed on).
fn release_bench(root: &Path, package: &str, bench: &str, out: &str, quick: &[&str]) -> Result<()> {
    run(cargo()
        .current_dir(root)
        .args(["bench", "--locked", "-p", package, "--profile", "release", "--bench", bench, "--", "--out", out])
        .args(quick))
}

pub(crate) fn bench(root: &Path, args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    let out = root.join("target/bench");
    if opts.report_only {
        return report_only(root, &out);
    }
    fs::create_dir_all(&out).context(format!("creating {}", out.display()))?;
    for entry in fs::read_dir(&out).context(format!("reading {}", out.display()))?.flatten() {
        let p = entry.path();
        let stale = matches!(p.extension().and_then(|e| e.to_str()), Some("md" | "json" | "svg"));
        if stale && opts.only.is_empty() {
            fs::remove_file(&p).context(format!("removing {}", p.display()))?;
        }
    }
    let wanted = |p: &str| opts.only.is_empty() || opts.only.iter().any(|o| o == p);
    let load_before = load_average();

    // the module every rolescope row measures (the npm package and the wasmtime host load it)
    wasm::build(root)?;

    let mut failures = Vec::new();
    let quick: &[&str] = if opts.quick { &["--quick"] } else { &[] };
    let out_s = out.to_string_lossy().into_owned();

    if wanted("native") {
        let t = step("native: rolescope vs cedar-policy, casbin, regorus; wasmtime vs native; growth (criterion)");
        // bench/peers is a workspace of its own (its peers' dependency features must not reach
        // the engine's builds); it shares this target directory
        let peers = root.join("bench/peers");
        let r = run(cargo().current_dir(&peers).args(["bench", "--locked", "--bench", "peers", "--"]).args(quick))
            .and_then(|()| {
                run(cargo()
                    .current_dir(&peers)
                    .args(["run", "--release", "--locked", "-q", "--bin", "peers-report", "--", "--out", &out_s])
                    .args(quick))
            });
        record(&mut failures, "native", r);
        done(t);
    }
    if wanted("node") {
        let t = step("node: the npm package vs cedar-wasm, CASL, casbin; module sizes");
        let r = npm_ci(root, "bench/js").and_then(|()| {
            run(Command::new("node").current_dir(root).args(["bench/js/peers.mjs", "--out", &out_s]).args(quick))
        });
        record(&mut failures, "node", r);
        done(t);
    }
    if wanted("gateway") {
        let t = step("gateway: enforcing vs passthrough vs nginx vs Cerbos (wrk)");
        let r =
            run(Command::new("bash").current_dir(root).args(["scripts/bench-gateway.sh", "--out", &out_s]).args(quick));
        record(&mut failures, "gateway", r);
        done(t);
    }
    if wanted("directory") {
        let t = step("directory: a 100,000-principal directory's load time and memory");
        // the release profile: shares its build with the gateway part's binary
        let r = release_bench(root, "rolescope-gateway", "directory", &out_s, quick);
        record(&mut failures, "directory", r);
        done(t);
    }
    if wanted("forward-auth") {
        let t = step(
            "forward-auth: nginx + auth_request -> rolescope vs nginx alone vs the gateway (wrk, fixed rate and saturation)",
        );
        let r = run(Command::new("bash")
            .current_dir(root)
            .args(["scripts/bench-forward-auth.sh", "--out", &out_s])
            .args(quick));
        record(&mut failures, "forward-auth", r);
        done(t);
    }

    if wanted("replay") {
        let t = step("replay: rolescope replay over a 2,000,000-record decision log");
        let r = crate::bench_replay::replay(root, &out, opts.quick);
        record(&mut failures, "replay", r);
        done(t);
    }
    if wanted("compile") {
        let t = step("compile: 10,000 roles / 100,000 grants from YAML and JSON; eval --batch of 100,000 requests");
        // the release profile: the binary authors install, timed as a process
        let r = release_bench(root, "rolescope-cli", "compile", &out_s, quick);
        record(&mut failures, "compile", r);
        done(t);
    }

    let t = step("writing BENCHMARKS.md");
    let run_info = RunInfo {
        date: capture("date", &["-u", "+%Y-%m-%d %H:%M"]).unwrap_or_default(),
        load_before,
        load_after: load_average(),
        quick: opts.quick,
    };
    // the fragments are one run's only when every part ran: `--report-only` reassembles that
    // run and nothing else (a run of some parts mixes runs, so it leaves no run.json behind)
    let run_json = out.join("run.json");
    if opts.only.is_empty() {
        run_info.write(&run_json)?;
    } else if run_json.is_file() {
        fs::remove_file(&run_json).context("removing target/bench/run.json")?;
    }
    let report = assemble(root, &out, &opts, &run_info, &failures)?;
    let target =
        if opts.quick || !opts.only.is_empty() { out.join("BENCHMARKS.md") } else { root.join("BENCHMARKS.md") };
    fs::write(&target, report).context(format!("writing {}", target.display()))?;
    if target.starts_with(root) && !target.starts_with(&out) {
        let svg = out.join("growth.svg");
        if svg.is_file() {
            fs::copy(&svg, root.join("bench/growth.svg")).context("copying growth.svg to bench/")?;
        }
    }
    println!("xtask: wrote {}", target.display());
    done(t);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(fail(format!(
            "{} part(s) failed: {}",
            failures.len(),
            failures.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>().join(", ")
        )))
    }
}

fn record(failures: &mut Vec<(String, String)>, part: &str, r: Result<()>) {
    if let Err(e) = r {
        eprintln!("xtask: part `{part}` failed: {e}");
        failures.push((part.to_owned(), e.to_string()));
    }
}

/// `npm ci` in `dir` unless its `node_modules` is newer than its lock file.
fn npm_ci(root: &Path, dir: &str) -> Result<()> {
    let lock = root.join(dir).join("package-lock.json");
    let marker = root.join(dir).join("node_modules/.package-lock.json");
    let fresh = match (fs::metadata(&lock).and_then(|m| m.modified()), fs::metadata(&marker).and_then(|m| m.modified()))
    {
        (Ok(l), Ok(m)) => m >= l,
        _ => false,
    };
    if fresh {
        println!("xtask: {dir}/node_modules: up to date");
        return Ok(());
    }
    run(Command::new("npm").current_dir(root).args(["ci", "--no-audit", "--no-fund", "--prefix", dir]))
}

/// `--report-only`: `BENCHMARKS.md` again from the fragments of the last full run (a quick run's
/// report goes to `target/bench`, as when it ran).
fn report_only(root: &Path, out: &Path) -> Result<()> {
    let t = step("writing BENCHMARKS.md from the fragments of the last full run (--report-only)");
    let run_json = out.join("run.json");
    let text = fs::read_to_string(&run_json).map_err(|_| {
        fail("target/bench holds no full run (no run.json; a run of some parts mixes runs): run `cargo xtask bench`")
    })?;
    let run = RunInfo::parse(&text).context(format!("{} is malformed", run_json.display()))?;
    let opts = Options { quick: run.quick, ..Options::default() };
    let report = assemble(root, out, &opts, &run, &[])?;
    if run.quick {
        fs::write(out.join("BENCHMARKS.md"), report).context("writing target/bench/BENCHMARKS.md")?;
    } else {
        fs::write(root.join("BENCHMARKS.md"), report).context("writing BENCHMARKS.md")?;
        let svg = out.join("growth.svg");
        if svg.is_file() {
            fs::copy(&svg, root.join("bench/growth.svg")).context("copying growth.svg to bench/")?;
        }
    }
    done(t);
    Ok(())
}

/// When a full run happened, how busy the machine was and whether it was `--quick` (kept in
/// `target/bench/run.json`, so `--report-only` can assemble the report of that run again).
#[derive(Debug)]
struct RunInfo {
    date: String,
    load_before: String,
    load_after: String,
    quick: bool,
}

impl RunInfo {
    fn write(&self, path: &Path) -> Result<()> {
        let v = serde_json::json!({
            "date": self.date, "load_before": self.load_before, "load_after": self.load_after, "quick": self.quick,
        });
        fs::write(path, v.to_string()).context(format!("writing {}", path.display()))
    }

    fn parse(text: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(text).ok()?;
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            date: field("date")?,
            load_before: field("load_before")?,
            load_after: field("load_after")?,
            quick: v.get("quick").and_then(Value::as_bool)?,
        })
    }
}

/// `/proc/loadavg`'s first three fields, or "unknown".
fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPU model, the logical core count and the memory of this machine.
fn machine() -> (String, usize, String) {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, m)| m.trim().to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mem = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().find_map(|l| {
                let kb: u64 = l.strip_prefix("MemTotal:")?.trim().trim_end_matches("kB").trim().parse().ok()?;
                Some(format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0))
            })
        })
        .unwrap_or_else(|| "unknown".to_owned());
    (model, cores, mem)
}

/// A part's JSON summary, or `None` when the part did not write one.
fn summary(out: &Path, part: &str) -> Result<Option<Value>> {
    let path = out.join(format!("{part}.json"));
    if !path.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(&path).context(format!("reading {}", path.display()))?;
    serde_json::from_str(&text).map(Some).context(format!("{} is not JSON", path.display()))
}

fn str_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Table cells must not break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn assemble(root: &Path, out: &Path, opts: &Options, run: &RunInfo, failures: &[(String, String)]) -> Result<String> {
    // fragment files in report order: each part, then the size part the node program writes
    let order = ["native", "node", "size", "gateway", "directory", "forward-auth", "replay", "compile"];
    let mut summaries: Vec<(&str, Value)> = Vec::new();
    for part in order {
        if let Some(v) = summary(out, part)? {
            summaries.push((part, v));
        }
    }

    let mut r = String::new();
    let cmd = if opts.quick { "cargo xtask bench --quick" } else { "cargo xtask bench" };
    let _ = writeln!(r, "# Benchmarks\n");
    let _ = writeln!(
        r,
        "Written by `{cmd}` (not by hand): every number below comes from one run on one machine, \
         with every peer measured in the same run and shown as a ratio. Rerun the command to \
         reproduce it; `cargo xtask bench --quick` is a short smoke run whose numbers are not results.\n"
    );
    if opts.quick {
        let _ = writeln!(r, "**This is a `--quick` run: its numbers only show that the pipeline works.**\n");
    }

    let (model, cores, mem) = machine();
    let _ = writeln!(r, "## Machine and versions\n");
    let _ = writeln!(r, "| | |\n| --- | --- |");
    let _ = writeln!(r, "| date (UTC) | {} |", run.date);
    let _ = writeln!(r, "| CPU | {} ({cores} logical cores) |", cell(&model));
    let _ = writeln!(r, "| memory | {mem} |");
    let _ = writeln!(r, "| OS | {} |", cell(&capture("uname", &["-sr"]).unwrap_or_default()));
    let _ = writeln!(r, "| load average before / after (1, 5, 15 min) | {} / {} |", run.load_before, run.load_after);
    let _ = writeln!(r, "| rustc | {} |", cell(&capture("rustc", &["--version"]).unwrap_or_default()));
    let _ = writeln!(r, "| node | {} |", cell(&capture("node", &["--version"]).unwrap_or_default()));
    // one row per name and version (the npm `casbin` and the Rust `casbin` are different peers)
    let mut versions: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
    for (part, v) in &summaries {
        if let Some(obj) = v.get("versions").and_then(Value::as_object) {
            for (name, ver) in obj.iter().filter(|(name, _)| name.as_str() != "node") {
                let parts = versions.entry((name.clone(), str_of(ver))).or_default();
                if !parts.contains(part) {
                    parts.push(part);
                }
            }
        }
    }
    for ((name, ver), parts) in &versions {
        let _ = writeln!(r, "| {} | {} ({}) |", cell(name), cell(ver), parts.join(", "));
    }
    r.push('\n');

    let _ = writeln!(r, "## Goals\n");
    let _ = writeln!(r, "| part | goal | target | result | |\n| --- | --- | --- | --- | --- |");
    let (mut met, mut missed) = (0usize, 0usize);
    for (part, v) in &summaries {
        for g in v.get("goals").and_then(Value::as_array).into_iter().flatten() {
            let ok = g.get("met").and_then(Value::as_bool).unwrap_or(false);
            if ok {
                met += 1;
            } else {
                missed += 1;
            }
            let _ = writeln!(
                r,
                "| {part} | {} | {} | {} | {} |",
                cell(&str_of(g.get("goal").unwrap_or(&Value::Null))),
                cell(&str_of(g.get("target").unwrap_or(&Value::Null))),
                cell(&str_of(g.get("result").unwrap_or(&Value::Null))),
                if ok { "met" } else { "**missed**" }
            );
        }
    }
    let _ = writeln!(r, "\n{met} goals met, {missed} missed.\n");
    for (part, why) in failures {
        let _ = writeln!(r, "**Part `{part}` failed in this run**: {}\n", cell(why));
    }

    for part in order {
        let path = out.join(format!("{part}.md"));
        let Ok(text) = fs::read_to_string(&path) else {
            if opts.only.is_empty() || opts.only.iter().any(|o| o == part || (part == "size" && o == "node")) {
                let _ = writeln!(r, "## {part}\n\nNo results: the part wrote no `{}`.\n", rel(root, &path).display());
            }
            continue;
        };
        r.push_str(text.trim_end());
        r.push_str("\n\n");
        if part == "native" && out.join("growth.svg").is_file() {
            let src = if opts.quick || !opts.only.is_empty() { "growth.svg" } else { "bench/growth.svg" };
            let _ = writeln!(r, "![decision time as roles, tenants and assignments grow]({src})\n");
        }
    }
    Ok(r)
}

fn rel(root: &Path, p: &Path) -> PathBuf {
    p.strip_prefix(root).map_or_else(|_| p.to_path_buf(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::RunInfo;

    #[test]
    fn run_info_round_trips_and_refuses_an_incomplete_record() {
        let dir = std::env::temp_dir().join(format!("xtask-run-info-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("run.json");
        let run = RunInfo {
            date: "2026-11-25 03:34".into(),
            load_before: "0.5".into(),
            load_after: "2.8".into(),
            quick: true,
        };
        run.write(&path).expect("write");
        let back = RunInfo::parse(&std::fs::read_to_string(&path).expect("read")).expect("parse");
        assert_eq!(
            (back.date.as_str(), back.load_before.as_str(), back.load_after.as_str(), back.quick),
            ("2026-11-25 03:34", "0.5", "2.8", true)
        );
        // a record from before `quick` was kept, or any other gap, is no run to report
        assert!(RunInfo::parse(r#"{"date":"d","load_before":"1","load_after":"2"}"#).is_none());
        assert!(RunInfo::parse("not json").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
