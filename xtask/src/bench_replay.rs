//! The `replay` part of `cargo xtask bench`: `rolescope replay` over a large, realistic
//! decision log. The log is made from the one the gateway recorded for the CLI's tests
//! (`cli/tests/cli/fixtures/gateway-decisions.jsonl`: allows, each deny reason, token failures,
//! `no_route`, `invalid_path`; nine in ten records of requests that reached the engine, one in
//! ten token failures), each record repeated with its own decision id, one of 1,000
//! principals (ids varied; their assignments as recorded) and one of 5,000 device ids, and
//! replayed under the Mist seed policy it was recorded under (so no decision may change).
//! Goal (issue 17): at least 1,000,000 records per minute on this machine.

use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::{Context, Result, cargo, fail, run};

/// Records in the generated log (a tenth with `--quick`).
const RECORDS: usize = 2_000_000;

#[expect(
    clippy::indexing_slicing,
    reason = "serde_json indexes of records the gateway wrote (objects): a missing member reads as null"
)]
pub(crate) fn replay(root: &Path, out: &Path, quick: bool) -> Result<()> {
    run(cargo().current_dir(root).args(["build", "--release", "--locked", "-q", "-p", "rolescope-cli"]))?;
    let fixture = root.join("cli/tests/cli/fixtures/gateway-decisions.jsonl");
    let text = fs::read_to_string(&fixture).context(format!("reading {}", fixture.display()))?;
    let recorded: Vec<Value> = text
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("the fixture log is not JSON lines")?;
    // a real log is mostly requests that reached the engine: nine in ten of those, one in ten
    // refused before it (the token failures)
    let (reached, refused): (Vec<Value>, Vec<Value>) =
        recorded.into_iter().partition(|r| r["route_miss"].as_str() != Some("not_reached"));
    let n = if quick { RECORDS / 10 } else { RECORDS };
    let log = out.join("replay-log.jsonl");
    let mut w = std::io::BufWriter::new(fs::File::create(&log).context(format!("creating {}", log.display()))?);
    for i in 0..n {
        let pick = if i % 10 == 9 {
            refused.get((i / 10) % refused.len().max(1))
        } else {
            reached.get(i % reached.len().max(1))
        };
        let Some(mut r) = pick.cloned() else { break };
        r["decision_id"] = format!("{i:032x}").into();
        let who = i % 1000;
        if let Some(id) = r["principal"].as_str().map(str::to_owned) {
            r["principal"] = format!("{id}-{who}").into();
            if r["input"]["principal"].is_object() {
                r["input"]["principal"]["id"] = format!("{id}-{who}").into();
            }
        }
        if let Some(t) = r["request"]["target"].as_str() {
            r["request"]["target"] = t.replace("ap-11", &format!("ap-{}", i % 5000)).into();
        }
        serde_json::to_writer(&mut w, &r).context("writing the log")?;
        w.write_all(b"\n").context("writing the log")?;
    }
    w.flush().context("writing the log")?;
    drop(w);
    let size = fs::metadata(&log).map(|m| m.len()).unwrap_or(0);

    let bin = root.join("target/release/rolescope");
    let mut times = Vec::new();
    let mut report = Value::Null;
    for _ in 0..3 {
        let start = Instant::now();
        let o = Command::new(&bin)
            .current_dir(root)
            .args(["replay", "--log"])
            .arg(&log)
            .args(["--policy", "policies/juniper-mist-msp", "--format", "json"])
            .output()
            .context("running rolescope replay")?;
        times.push(start.elapsed().as_secs_f64());
        if !o.status.success() {
            return Err(fail(format!("rolescope replay failed: {}", String::from_utf8_lossy(&o.stderr))));
        }
        report = serde_json::from_slice(&o.stdout).context("rolescope replay's JSON")?;
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(1).copied().unwrap_or(f64::NAN);
    let per_minute = n as f64 / median * 60.0;
    let replayed = report["replayed"].as_u64().unwrap_or(0);
    let changes = ["allow_to_deny", "deny_to_allow", "reason_changed"]
        .iter()
        .map(|k| report[k].as_u64().unwrap_or(0))
        .sum::<u64>();
    if report["records"].as_u64() != Some(n as u64) || changes != 0 {
        return Err(fail(format!("replay read {} of {n} records with {changes} changes", report["records"])));
    }
    let not: u64 = report["not_replayable"].as_object().map_or(0, |o| o.values().filter_map(Value::as_u64).sum());
    let goal_met = per_minute >= 1_000_000.0;

    let mut md = String::new();
    let _ = writeln!(md, "## replay\n");
    let _ = writeln!(
        md,
        "`cargo xtask bench --only replay`{}: `target/release/rolescope replay --log target/bench/replay-log.jsonl --policy policies/juniper-mist-msp --format json`, 3 runs, the median (wall time of the process: reading, parsing, re-deciding and the report). \
         The log: {n} records ({:.0} MiB) made from the records the gateway wrote in `gateway/tests/server/records.rs` (`cli/tests/cli/fixtures/gateway-decisions.jsonl`), \
         nine in ten of requests that reached the engine, one in ten token failures, each with its own decision id, one of 1,000 principals and one of 5,000 device ids; {replayed} replayed, {not} not replayable (token failures, counted by cause), no decision changed.\n",
        if quick { " --quick" } else { "" },
        size as f64 / (1 << 20) as f64
    );
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(md, "| records | {n} |");
    let _ = writeln!(
        md,
        "| time (median of 3; all: {}) | {median:.2} s |",
        times.iter().map(|t| format!("{t:.2} s")).collect::<Vec<_>>().join(", ")
    );
    let _ = writeln!(md, "| records per minute | {:.1} million |", per_minute / 1e6);
    let _ = writeln!(md, "| records per second | {:.0} |", n as f64 / median);
    fs::write(out.join("replay.md"), md).context("writing replay.md")?;
    let summary = json!({
        "versions": {},
        "goals": [{
            "goal": "rolescope replay keeps up with real logs (issue 17)",
            "target": ">= 1,000,000 records per minute",
            "result": format!("{:.1} million records per minute", per_minute / 1e6),
            "met": goal_met,
        }],
    });
    fs::write(out.join("replay.json"), serde_json::to_string_pretty(&summary).unwrap_or_default())
        .context("writing replay.json")?;
    fs::remove_file(&log).ok();
    Ok(())
}
