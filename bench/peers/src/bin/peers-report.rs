//! The native part of BENCHMARKS.md from the medians of the last `peers` benchmark run:
//! `native.md` (the fragment), `native.json` (rows, goals, peer versions) and `growth.svg`
//! (decision time against roles + tenants + assignments, log x axis, one line per engine).
//!
//! In `bench/peers`: `cargo run --release --bin peers-report -- --out ../../target/bench [--quick]`
//! (after `cargo bench --bench peers [-- --quick]`; `cargo xtask bench` runs both).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use plotters::prelude::*;
use rolescope_peers::names::{CASBIN, CEDAR, FROM_STRINGS, NATIVE, REGORUS, WASMTIME};
use rolescope_peers::scenario::{self, Scenario};
use serde_json::{Value, json};

const STRINGS: &str = FROM_STRINGS;
const WASM: &str = WASMTIME;
const PEERS: [&str; 3] = [CEDAR, CASBIN, REGORUS];
const ENGINES: [&str; 6] = [NATIVE, FROM_STRINGS, WASMTIME, CEDAR, CASBIN, REGORUS];

/// The goals on (a): at least this many times faster than each peer.
const A_RATIO_GOALS: [(&str, f64); 3] = [(CEDAR, 50.0), (CASBIN, 100.0), (REGORUS, 200.0)];
/// p50 of the (a) decision, ns.
const A_P50_GOAL_NS: f64 = 100.0;
/// wasmtime at most this many times native from strings (both are given the resource as
/// strings and prepare it per call; the gateway's own bench compares the same way).
const WASM_GOAL: f64 = 2.0;

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("{0}")]
    Usage(String),
    #[error("chart: {0}")]
    Chart(String),
}

fn workspace() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// (group, function, parameter) -> median ns, from `<target>/criterion/**/new/`.
type Medians = BTreeMap<(String, String, String), f64>;

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn medians(root: &Path) -> Medians {
    let mut out = Medians::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            let new = path.join("new");
            if let (Some(b), Some(e)) = (read_json(&new.join("benchmark.json")), read_json(&new.join("estimates.json")))
            {
                let s = |k: &str| b.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
                if let Some(m) = e.pointer("/median/point_estimate").and_then(Value::as_f64) {
                    out.insert((s("group_id"), s("function_id"), s("value_str")), m);
                }
            }
            dirs.push(path);
        }
    }
    out
}

/// Versions of the peers and tools, from this workspace's own Cargo.lock (`bench/peers`).
fn versions() -> Result<BTreeMap<String, String>, Error> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock");
    let lock = std::fs::read_to_string(&path).map_err(|e| Error::Io(path, e))?;
    let mut out = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            let wanted = ["cedar-policy", "casbin", "regorus", "wasmtime", "criterion", "rolescope-engine"];
            if wanted.contains(&n.as_str()) {
                out.entry(n).or_insert_with(|| v.trim_matches('"').to_owned());
            }
        }
    }
    Ok(out)
}

fn time(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

fn ratio(x: f64) -> String {
    if x >= 10.0 { format!("{x:.0}x") } else { format!("{x:.2}x") }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

struct Report {
    md: String,
    /// A wasmtime goal was missed (the fragment then says why).
    wasm_missed: bool,
    rows: Vec<Value>,
    goals: Vec<Value>,
}

impl Report {
    fn goal(&mut self, goal: String, target: String, result: String, ok: bool) -> String {
        self.goals.push(json!({ "goal": goal, "target": target, "result": result, "met": ok }));
        format!("{target}: {}", met(ok))
    }

    fn scenario(&mut self, m: &Medians, s: &Scenario, title: &str) {
        let group = format!("peers-{}", s.id);
        let _ = writeln!(self.md, "\n### {title}\n");
        let _ = writeln!(
            self.md,
            "| case | engine | median | per question | engine / rolescope native | goal |\n|---|---|---:|---:|---:|---|"
        );
        for case in &s.cases {
            let questions = case.work.answers();
            let native = m.get(&(group.clone(), NATIVE.to_owned(), case.id.to_owned())).copied();
            let strings = m.get(&(group.clone(), STRINGS.to_owned(), case.id.to_owned())).copied();
            for engine in ENGINES {
                let t = m.get(&(group.clone(), engine.to_owned(), case.id.to_owned())).copied();
                let r = t.zip(native).map(|(t, n)| t / n);
                let mut goal = String::new();
                let headline = s.id == "a" && case.id == "allowed";
                if engine == NATIVE && headline {
                    let ok = t.is_some_and(|t| t <= A_P50_GOAL_NS);
                    let result = t.map_or("not measured".into(), time);
                    goal = self.goal("(a) rolescope p50".into(), format!("<= {A_P50_GOAL_NS:.0} ns"), result, ok);
                } else if engine == WASM {
                    let rs = t.zip(strings).map(|(t, n)| t / n);
                    let ok = rs.is_some_and(|r| r <= WASM_GOAL);
                    let result = rs.map_or("not measured".into(), ratio);
                    let name = format!("({}) {} wasmtime / native from strings", s.id, case.id);
                    self.goal(name, format!("<= {WASM_GOAL:.0}x {STRINGS}"), result.clone(), ok);
                    goal = format!("<= {WASM_GOAL:.0}x from strings: {result}, {}", met(ok));
                    self.wasm_missed |= !ok;
                } else if headline && let Some((_, want)) = A_RATIO_GOALS.iter().find(|(p, _)| *p == engine) {
                    let ok = r.is_some_and(|r| r >= *want);
                    let result = r.map_or("not measured".into(), ratio);
                    goal = self.goal(format!("(a) {engine} / rolescope"), format!(">= {want:.0}x"), result, ok);
                }
                let first = if engine == NATIVE { format!("{}: {}", case.id, case.title) } else { String::new() };
                let per = match (t, questions) {
                    (Some(t), q) if q > 1 => time(t / q as f64),
                    _ => String::new(),
                };
                let _ = writeln!(
                    self.md,
                    "| {first} | {engine} | {} | {per} | {} | {goal} |",
                    t.map_or("not run".into(), time),
                    r.map_or("—".into(), ratio),
                );
                self.rows.push(json!({
                    "scenario": s.id, "case": case.id, "engine": engine, "questions": questions,
                    "median_ns": t, "ratio_to_native": r,
                }));
            }
        }
    }

    fn growth(&mut self, m: &Medians, setup: &Value) -> Vec<(&'static str, Vec<(f64, f64)>)> {
        let _ = writeln!(
            self.md,
            "\n### Growth: roles, tenants and assignments together\n\n\
             n roles (3 `device` actions each), n orgs, n assignments (the principal holds 10 of them, \
             n - 10 other users one each); one allowed decision. Set-up: building the engine's \
             policy and data (rolescope: compiling the role files). rolescope's decision reads only the \
             principal's own assignments; cedar-policy's authorizer evaluates every policy of the set \
             (n templates and about n links) and casbin's `enforce` tries its matcher on every `p` line \
             (3n), so both grow with n (slicing the policy set per tenant is not modelled); regorus \
             looks roles and assignments up by key.\n"
        );
        let mut head = String::from("| n |");
        let mut sep = String::from("|---:|");
        for e in [NATIVE].iter().chain(&PEERS) {
            let _ = write!(head, " {e} | ratio | set-up |");
            sep.push_str("---:|---:|---:|");
        }
        let _ = writeln!(self.md, "{head}\n{sep}");
        let setups = setup.get("growth").and_then(Value::as_array).cloned().unwrap_or_default();
        let setup_of = |e: &str, n: usize| {
            setups.iter().find(|v| {
                v.get("engine").and_then(Value::as_str) == Some(e)
                    && v.get("n").and_then(Value::as_u64) == Some(n as u64)
            })
        };
        let mut lines: Vec<(&'static str, Vec<(f64, f64)>)> = Vec::new();
        let mut notes = Vec::new();
        for n in scenario::GROWTH {
            let native = m.get(&("peers-growth".to_owned(), NATIVE.to_owned(), n.to_string())).copied();
            let mut row = format!("| {n} |");
            for e in [NATIVE].into_iter().chain(PEERS) {
                let t = m.get(&("peers-growth".to_owned(), e.to_owned(), n.to_string())).copied();
                let r = t.zip(native).map(|(t, n)| t / n);
                let s = setup_of(e, n);
                let ms = s.and_then(|v| v.get("setup_ms")).and_then(Value::as_f64);
                if let Some(note) = s.and_then(|v| v.get("note")).and_then(Value::as_str).filter(|s| !s.is_empty()) {
                    notes.push(format!("{e} at n = {n}: {note}"));
                }
                let _ = write!(
                    row,
                    " {} | {} | {} |",
                    t.map_or("not run".into(), time),
                    r.map_or("—".into(), ratio),
                    ms.map_or("—".into(), |ms| time(ms * 1e6))
                );
                if let Some(t) = t {
                    match lines.iter_mut().find(|(name, _)| *name == e) {
                        Some((_, pts)) => pts.push((n as f64, t)),
                        None => lines.push((e, vec![(n as f64, t)])),
                    }
                }
                self.rows.push(json!({
                    "scenario": "growth", "n": n, "engine": e, "median_ns": t, "ratio_to_native": r, "setup_ms": ms,
                }));
            }
            let _ = writeln!(self.md, "{row}");
        }
        for note in notes {
            let _ = writeln!(self.md, "\n- {note}");
        }
        // the chart itself (`growth.svg`) is embedded by `cargo xtask bench`, which places it
        lines
    }
}

fn chart(path: &Path, lines: &[(&'static str, Vec<(f64, f64)>)]) -> Result<(), Error> {
    let ch = |e: &dyn std::fmt::Display| Error::Chart(e.to_string());
    let (lo, hi) = lines
        .iter()
        .flat_map(|(_, pts)| pts.iter().map(|p| p.1))
        .fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (lo, hi) = if lo <= hi { (lo / 2.0, hi * 2.0) } else { (1.0, 1e6) };
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| ch(&e))?;
    let mut c = ChartBuilder::on(&root)
        .caption("Decision time as roles, tenants and assignments grow", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((5f64..20_000f64).log_scale(), (lo..hi).log_scale())
        .map_err(|e| ch(&e))?;
    c.configure_mesh()
        .x_desc("roles = tenants = assignments (log)")
        .y_desc("median decision time (log)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| time(*y))
        .draw()
        .map_err(|e| ch(&e))?;
    let colors = [RGBColor(0, 114, 178), RGBColor(213, 94, 0), RGBColor(0, 158, 115), RGBColor(204, 121, 167)];
    for (i, (name, pts)) in lines.iter().enumerate() {
        let color = colors.get(i % colors.len()).copied().unwrap_or(BLACK);
        c.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
            .map_err(|e| ch(&e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        c.draw_series(pts.iter().map(|p| Circle::new(*p, 3, color.filled()))).map_err(|e| ch(&e))?;
    }
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| ch(&e))?;
    root.present().map_err(|e| ch(&e))?;
    Ok(())
}

const MODELLING: &str = "\
How each engine is modelled (texts in `bench/scenarios/`, data generated from the scenario in \
`bench/peers/src/scenario.rs`); before anything is timed every engine answered every case and \
gave rolescope's answers:
- **rolescope-native**: `Policy::decide` on a prepared principal and resource; (c) \
`allowed_actions`, (d) `check_batch`.
- **rolescope-from-strings**: the same, the resource given as strings (kind, scope, id, \
attributes) and prepared per call (`prepare_resource`), as a host receiving requests does; \
the wasmtime goal (at most 2x) is measured against this row, since the host is also given \
strings and prepares the resource inside the module (as `gateway/benches/host.rs` compares).
- **rolescope-wasmtime**: the gateway's wasmtime host (`rolescope_gateway::Host::decide`, the \
npm package's engine module `target/wasm/rolescope.wasm`), one call per question: the host \
has no allowed-actions or batch call, so (c) and (d) are 10 and 1,000 calls.
- **cedar-policy**: entity hierarchy, `User in RoleInTenant` (one group per role held in one \
tenant), `Device in Site in Org in Msp`; one template per role, linked per role-in-tenant \
group (`?principal` = group, `?resource` = org); one `is_authorized` per question, requests \
built beforehand.
- **casbin**: RBAC with domains (`g, user, role, tenant`; `p, role, kind, action`; Site24x7 \
adds ownership and channel columns); one `enforce` per question.
- **regorus**: Rego over a `data` document indexed by role and by user and scope; one rule \
evaluation per case (`allow`, `allowed_actions`, `batch`), input built beforehand.
- `highest_rank` changes no answer here (one assignment per tenant), so the peers leave rank out.";

/// Why the wasmtime rows cost what they do (written when a wasmtime goal is missed).
const WASM_MISSED: &str = "\
**wasmtime goal missed** where marked: per question the host encodes the request, calls into \
the module (an empty call alone is ~16 ns, `bindings/ABI.md`), the guest decodes it and runs \
the engine as cranelift compiled it (slower code than the native build); (b) also sends the \
resource's attributes as JSON, parsed in the guest; (c) and (d) pay a call per question, \
since the host has no allowed-actions or batch entry (native answers them in one pass). What \
would close it: allowed-actions and batch entries in the plain ABI (one call per case), \
attributes in a binary encoding instead of JSON, and a faster guest build of the decision \
path. Not measured here: which of these dominates.";

fn run() -> Result<(), Error> {
    let mut out = None;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--out" => out = args.next().map(PathBuf::from),
            "--quick" => quick = true,
            other => return Err(Error::Usage(format!("unknown argument `{other}` (usage: --out DIR [--quick])"))),
        }
    }
    let out = out.ok_or_else(|| Error::Usage("usage: peers-report --out DIR [--quick]".into()))?;
    std::fs::create_dir_all(&out).map_err(|e| Error::Io(out.clone(), e))?;
    let criterion = target().join("criterion");
    let m = medians(&criterion);
    let setup = read_json(&criterion.join("peers-setup.json")).unwrap_or(Value::Null);
    let q = if quick { " --quick" } else { "" };
    let mut r = Report { md: String::new(), wasm_missed: false, rows: Vec::new(), goals: Vec::new() };
    let _ = writeln!(r.md, "## Native: rolescope vs cedar-policy, casbin, regorus and its wasmtime host\n");
    let _ = writeln!(
        r.md,
        "`cd bench/peers && cargo bench --locked --bench peers{} && cargo run --release --locked --bin peers-report -- --out {}{q}` (both run by `cargo xtask bench`)\n",
        if quick { " -- --quick" } else { "" },
        out.display()
    );
    if quick {
        let _ = writeln!(r.md, "(quick run: criterion `--quick`, short and noisy; not for comparison)\n");
    }
    let _ = writeln!(r.md, "{MODELLING}");
    r.scenario(&m, &scenario::scenario_a(), "(a) MSP role on one of 100 orgs, principal with 10 assignments");
    r.scenario(&m, &scenario::scenario_b(), "(b) ownership condition (Site24x7 Operator)");
    r.scenario(&m, &scenario::scenario_c(), "(c) allowed actions for one resource");
    r.scenario(&m, &scenario::scenario_d(), "(d) 100 resources x 10 actions");
    if r.wasm_missed {
        let _ = writeln!(r.md, "\n{WASM_MISSED}");
    }
    let lines = r.growth(&m, &setup);
    chart(&out.join("growth.svg"), &lines)?;
    let versions = versions()?;
    let _ = writeln!(
        r.md,
        "\nVersions: {}.",
        versions.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    );
    let json = json!({
        "part": "native", "quick": quick, "versions": versions, "rows": r.rows, "goals": r.goals,
        "growth_setup_budget_s": setup.get("budget_s"),
    });
    let write = |name: &str, text: String| {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| Error::Io(p, e))
    };
    write("native.md", r.md)?;
    write("native.json", serde_json::to_string_pretty(&json).unwrap_or_default())?;
    println!("wrote {}/native.md, native.json, growth.svg ({} medians read)", out.display(), m.len());
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peers-report: {e}");
            ExitCode::FAILURE
        }
    }
}
