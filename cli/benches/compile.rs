//! Compile time at scale and batch evaluation, a part of `cargo xtask bench` (`--only compile`):
//! issue 19's figures. A generated policy of 10,000 roles and 100,000 grants (the engine's
//! `compile` benchmark's policy) compiled from YAML and from JSON, in process
//! (`Policy::compile`: parse, validate, compile, lints, revision) and as authors run it
//! (`rolescope check` on the folder, the release binary); and `rolescope eval --batch` deciding
//! 100,000 requests (JSON lines in, JSON lines out) against a shipped seed policy.
//!
//! `cargo bench -p rolescope-cli --profile release --bench compile -- --out target/bench [--quick]`
//! writes `compile.md` and `compile.json` there. Every figure is the minimum of several runs
//! (the machine may be shared; the minimum is the run least disturbed by others).
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "a benchmark program: a failure ends it"
)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rolescope_engine::{Policy, Source};
use serde_json::json;

#[path = "../../engine/benches/support/generated_policy.rs"]
mod generated_policy;

const BIN: &str = env!("CARGO_BIN_EXE_rolescope");
const GOAL_COMPILE: Duration = Duration::from_millis(100);
/// "100,000 requests in at most a few seconds" (issue 19): read as at most 3 s.
const GOAL_BATCH: Duration = Duration::from_secs(3);

/// The shortest of `runs` timings of `f`.
fn min_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// The shortest of `runs` runs of the release `rolescope` binary with `args`, which must exit 0;
/// the last run's standard output.
fn time_cli(runs: usize, dir: &Path, args: &[&str]) -> (Duration, Vec<u8>) {
    let mut best = Duration::MAX;
    let mut stdout = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(BIN).current_dir(dir).args(args).stdin(Stdio::null()).output().unwrap();
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "rolescope {} exited {:?}: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        best = best.min(took);
        stdout = out.stdout;
    }
    (best, stdout)
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 10.0 { format!("{ms:.1} ms") } else { format!("{ms:.0} ms") }
}

fn mib(n: usize) -> String {
    format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
}

/// 100,000 requests against `policies/juniper-mist-msp`: principals inline (each role held at
/// the MSP reaching all, some or no listed organizations, or at one organization), every kind,
/// its actions, organizations and sites spread over 200 organizations.
fn requests(n: usize) -> String {
    let roles = ["super_user", "network_admin", "helpdesk", "observer", "installer"];
    let kinds: [(&str, &[&str], bool); 6] = [
        ("device", &["view", "list", "claim", "install", "update", "reboot", "upgrade", "release"], true),
        ("wlan", &["view", "list", "create", "update", "delete"], true),
        ("monitoring", &["view", "troubleshoot"], true),
        ("organization", &["view", "update", "delete"], false),
        ("administrator", &["view", "list", "invite", "update", "delete"], false),
        ("msp_settings", &["view", "update"], false),
    ];
    let mut out = String::with_capacity(n * 300);
    for i in 0..n {
        let role = roles[i % roles.len()];
        let org = (i * 7919) % 200;
        let assignment = match (i / roles.len()) % 4 {
            0 => json!({ "role": role, "scope": "msp:mist", "tenants": "all" }),
            1 => json!({ "role": role, "scope": "msp:mist", "tenants": [format!("org:o{org}"), "org:o1"] }),
            2 => json!({ "role": role, "scope": "msp:mist", "tenants": ["org:o1"] }),
            _ => json!({ "role": role, "scope": format!("msp:mist/org:o{}", (org + i % 2) % 200) }),
        };
        let (kind, actions, at_site) = kinds[(i / 20) % kinds.len()];
        let action = actions[i % actions.len()];
        let scope = match (kind, at_site) {
            ("msp_settings", _) => "msp:mist".to_owned(),
            (_, true) => format!("msp:mist/org:o{org}/site:s{}", i % 5),
            (_, false) => format!("msp:mist/org:o{org}"),
        };
        let req = json!({
            "principal": { "id": format!("admin{}", i % 1000), "assignments": [assignment] },
            "action": action,
            "resource": { "kind": kind, "id": format!("r{i}"), "scope": scope },
        });
        out.push_str(&req.to_string());
        out.push('\n');
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| PathBuf::from("target/bench"), PathBuf::from);
    let runs = if quick { 1 } else { 7 };
    let cli_runs = if quick { 1 } else { 5 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let work = std::env::temp_dir().join(format!("rolescope-bench-compile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);

    // the policy, as YAML and as the same data in JSON
    let (roles, grants) = (10_000, 10);
    let yaml = generated_policy::generated_policy(roles, grants);
    let value: serde_json::Value = serde_saphyr::from_str_with_options(
        &yaml,
        serde_saphyr::options! { budget: serde_saphyr::budget! { max_events: 8_000_000, max_nodes: 4_000_000 } },
    )
    .unwrap();
    let json_text = serde_json::to_string_pretty(&value).unwrap();
    let yaml_src = [Source::new("gen/roles.yaml", yaml.clone())];
    let json_src = [Source::new("gen-json/roles.json", json_text.clone())];
    let p = Policy::compile(&yaml_src).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics()));
    assert_eq!(p.rule_count(), roles * grants + 1);
    let warnings = p.warnings().len();
    let pj = Policy::compile(&json_src).unwrap_or_else(|e| panic!("{:#?}", e.diagnostics()));
    assert_eq!(pj.rule_count(), roles * grants + 1);
    drop((p, pj));
    std::fs::create_dir_all(work.join("gen")).unwrap();
    std::fs::create_dir_all(work.join("gen-json")).unwrap();
    std::fs::write(work.join("gen/roles.yaml"), &yaml).unwrap();
    std::fs::write(work.join("gen-json/roles.json"), &json_text).unwrap();

    // in process: the whole compile, and the readers alone (where the time goes)
    let compile_yaml = min_of(runs, || drop(std::hint::black_box(Policy::compile(&yaml_src).unwrap())));
    let compile_json = min_of(runs, || drop(std::hint::black_box(Policy::compile(&json_src).unwrap())));
    let read_yaml = min_of(runs, || {
        let v: serde::de::IgnoredAny = serde_saphyr::from_str_with_options(
            &yaml,
            serde_saphyr::options! { budget: serde_saphyr::budget! { max_events: 8_000_000, max_nodes: 4_000_000 } },
        )
        .unwrap();
        std::hint::black_box(v);
    });
    let read_json = min_of(runs, || {
        std::hint::black_box(serde_json::from_str::<serde::de::IgnoredAny>(&json_text).unwrap());
    });

    // as authors run it: the release binary, reading the folder, compiling, linting, rendering
    let (check_yaml, _) = time_cli(cli_runs, &work, &["check", "gen"]);
    let (check_json, _) = time_cli(cli_runs, &work, &["check", "gen-json"]);

    // eval --batch: 100,000 requests, JSON lines in and out
    let n = 100_000;
    let reqs = requests(n);
    std::fs::write(work.join("requests.jsonl"), &reqs).unwrap();
    let policy_dir = root.join("policies/juniper-mist-msp");
    let policy_arg = policy_dir.to_str().unwrap();
    let batch_runs = if quick { 1 } else { 3 };
    let (batch, answers) = time_cli(batch_runs, &work, &["eval", "--policy", policy_arg, "--batch", "requests.jsonl"]);
    let answers = String::from_utf8(answers).unwrap();
    let mut allowed = 0usize;
    let mut lines = 0usize;
    for line in answers.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.get("error").is_none(), "an error line: {line}");
        allowed += usize::from(v["allowed"].as_bool().unwrap());
        lines += 1;
    }
    assert_eq!(lines, n, "one answer per request");
    assert!(allowed > n / 10 && allowed < n - n / 10, "a mix of allows and denies: {allowed} of {n} allowed");
    // the same binary doing nothing but start, compile the seed policy and answer one request
    std::fs::write(work.join("one.jsonl"), reqs.lines().next().unwrap()).unwrap();
    let (startup, _) = time_cli(cli_runs, &work, &["eval", "--policy", policy_arg, "--batch", "one.jsonl"]);
    let _ = std::fs::remove_dir_all(&work);

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let per_request = batch.saturating_sub(startup) / u32::try_from(n).unwrap();
    let mut md = String::new();
    let _ = writeln!(md, "## compile\n");
    let _ = writeln!(
        md,
        "`cargo bench -p rolescope-cli --profile release --bench compile` (the minimum of {runs} runs in \
         process and of {cli_runs} runs of the release binary; {batch_runs} for the batch: the machine is shared). \
         A generated policy of {roles} roles and {} grants (`engine/benches/support/generated_policy.rs`: 10 \
         kinds, permission levels, one grant in five with a condition, one policy-wide deny; {} of YAML, \
         {} as pretty JSON; {warnings} lint warning(s)). In process: `Policy::compile` (parse, validate, \
         compile, lints, revision). `rolescope check DIR`: the release binary reading the folder, compiling, \
         linting and reporting, as authors run it. The readers alone: the same text read into nothing \
         (`serde::de::IgnoredAny`), the floor each source format sets.\n",
        roles * grants,
        mib(yaml.len()),
        mib(json_text.len())
    );
    let _ = writeln!(md, "| 10,000 roles, 100,000 grants | from YAML | from JSON | goal |\n| --- | --- | --- | --- |");
    let _ =
        writeln!(md, "| `Policy::compile` (in process) | {} | {} | <= 100 ms |", ms(compile_yaml), ms(compile_json));
    let _ = writeln!(md, "| `rolescope check DIR` (process) | {} | {} | <= 100 ms |", ms(check_yaml), ms(check_json));
    let _ = writeln!(md, "| the reader alone (serde-saphyr / serde_json) | {} | {} | |", ms(read_yaml), ms(read_json));
    let _ = writeln!(
        md,
        "\n`rolescope eval --policy policies/juniper-mist-msp --batch requests.jsonl`: {n} requests \
         ({}; inline principals holding each role at the MSP or at an organization, every kind and action, \
         200 organizations), one decision report per line out ({}, {allowed} allowed, {} denied), checked \
         line by line.\n",
        mib(reqs.len()),
        mib(answers.len()),
        n - allowed
    );
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(md, "| 100,000 requests, whole process | {} (goal: at most 3 s) |", ms(batch));
    let _ = writeln!(md, "| the same process with one request (start, compile the seed policy) | {} |", ms(startup));
    let _ = writeln!(md, "| per request (the difference / 100,000) | {:.1} µs |", per_request.as_nanos() as f64 / 1e3);
    let _ = writeln!(md, "| load average after the run (1, 5, 15 min) | {} |", load.join(", "));

    let goal = |what: &str, target: &str, took: Duration, limit: Duration| json!({ "goal": what, "target": target, "result": ms(took), "met": took <= limit });
    let summary = json!({
        "versions": {},
        "goals": [
            goal("compile 10,000 roles / 100,000 grants from YAML (Policy::compile)", "<= 100 ms", compile_yaml, GOAL_COMPILE),
            goal("compile 10,000 roles / 100,000 grants from JSON (Policy::compile)", "<= 100 ms", compile_json, GOAL_COMPILE),
            goal("rolescope check on them, YAML (the process)", "<= 100 ms", check_yaml, GOAL_COMPILE),
            goal("rolescope check on them, JSON (the process)", "<= 100 ms", check_json, GOAL_COMPILE),
            goal("rolescope eval --batch, 100,000 requests in JSON lines (the process)", "<= 3 s (\"a few seconds\")", batch, GOAL_BATCH),
        ],
        "compile_yaml_ms": compile_yaml.as_secs_f64() * 1e3,
        "compile_json_ms": compile_json.as_secs_f64() * 1e3,
        "check_yaml_ms": check_yaml.as_secs_f64() * 1e3,
        "check_json_ms": check_json.as_secs_f64() * 1e3,
        "read_yaml_ms": read_yaml.as_secs_f64() * 1e3,
        "read_json_ms": read_json.as_secs_f64() * 1e3,
        "batch_ms": batch.as_secs_f64() * 1e3,
        "batch_startup_ms": startup.as_secs_f64() * 1e3,
    });
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("compile.md"), md).unwrap();
    std::fs::write(out.join("compile.json"), serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    println!(
        "compile: YAML {} (check {}), JSON {} (check {}); readers alone {} / {}; eval --batch {n}: {}",
        ms(compile_yaml),
        ms(check_yaml),
        ms(compile_json),
        ms(check_json),
        ms(read_yaml),
        ms(read_json),
        ms(batch)
    );
}
