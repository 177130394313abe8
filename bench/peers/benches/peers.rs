//! rolescope against cedar-policy, casbin and regorus, and against its own wasmtime host, on
//! the scenarios of issue 8 (bench/scenarios/README.md):
//! Every scenario group times rolescope native (prepared resource, and from strings), the
//! gateway's wasmtime host, cedar-policy, casbin and regorus.
//! - `peers-a`: (a) MSP role on one of 100 orgs, a principal with 10 assignments;
//! - `peers-b`: (b) the Site24x7 Operator's ownership condition;
//! - `peers-c`: (c) allowed actions of one device;
//! - `peers-d`: (d) 100 devices x 10 actions;
//! - `peers-growth`: roles, tenants and assignments growing together 10 -> 10,000
//!   (rolescope native and the three peers).
//!
//! Before anything is timed, every engine answers every case and must give rolescope's
//! answers; a disagreement (or a failed set-up) ends the run with a message naming the
//! engine and the case. The wasmtime rows run `target/wasm/rolescope.wasm` (`cargo xtask
//! wasm`; or `ROLESCOPE_WASM`). Set-up times of the growth sizes go to
//! `<target>/criterion/peers-setup.json` for the report (`peers-report`).
//!
//! In `bench/peers` (a workspace of its own): `cargo bench --bench peers [-- --quick]`

#![expect(clippy::expect_used, reason = "benchmark set-up fails loudly")]
#![expect(missing_docs, reason = "criterion_group! generates an undocumented function")]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};
use rolescope_peers::scenario::{self, Scenario};
use rolescope_peers::{Casbin, Cedar, Error, Native, NativeStrings, Peer, Regorus, Wasmtime, agree, expected};

/// A set-up at one growth size that takes longer than this is the last one measured for that
/// engine (the next size, 10x larger, would take at least 10x as long).
const SETUP_BUDGET: Duration = Duration::from_secs(60);

fn fail(what: &str, e: &Error) -> ! {
    eprintln!("peers benchmark: {what}: {e}");
    std::process::exit(1)
}

fn workspace() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    dir.canonicalize().unwrap_or(dir)
}

fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"))
}

/// The engine module the gateway runs.
fn module() -> Vec<u8> {
    let path = std::env::var_os("ROLESCOPE_WASM")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| target().join("wasm/rolescope.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        eprintln!("peers benchmark: {}: {e} (build it with `cargo xtask wasm`)", path.display());
        std::process::exit(1)
    })
}

/// An engine set up and checked on every case of its scenario, ready to be timed.
struct Ready<P: Peer> {
    peer: P,
    cases: Vec<(BenchmarkId, usize, P::Prepared)>,
}

/// Something to time in a group (an engine of any type).
trait Timed {
    fn time(&mut self, g: &mut BenchmarkGroup<'_, WallTime>);
}

impl<P: Peer> Timed for Ready<P> {
    fn time(&mut self, g: &mut BenchmarkGroup<'_, WallTime>) {
        let peer = &mut self.peer;
        for (id, answers, p) in &self.cases {
            let mut out = Vec::with_capacity(*answers);
            g.bench_with_input(id.clone(), p, |b, p| {
                b.iter(|| peer.run(black_box(p), &mut out).expect("checked before timing"))
            });
        }
    }
}

/// Check `peer` against rolescope's answers on every case of `s` (the run ends on a
/// disagreement); `param` names the cases (the case id, or the growth size).
fn ready<P: Peer + 'static>(
    s: &Scenario,
    peer: Result<P, Error>,
    want: &[Vec<bool>],
    param: Option<usize>,
) -> Box<dyn Timed> {
    let mut peer = peer.unwrap_or_else(|e| fail(P::NAME, &e));
    let prepared = agree(&mut peer, s, want).unwrap_or_else(|e| fail(P::NAME, &e));
    let cases = s
        .cases
        .iter()
        .zip(prepared)
        .map(|(c, p)| {
            let id = match param {
                Some(n) => BenchmarkId::new(P::NAME, n),
                None => BenchmarkId::new(P::NAME, c.id),
            };
            (id, c.work.answers(), p)
        })
        .collect();
    Box::new(Ready { peer, cases })
}

fn scenarios(c: &mut Criterion) {
    let module = module();
    // every engine set up and checked on every scenario before the first one is timed
    let mut groups = Vec::new();
    for s in [scenario::scenario_a(), scenario::scenario_b(), scenario::scenario_c(), scenario::scenario_d()] {
        let want = expected(&s).unwrap_or_else(|e| fail("rolescope", &e));
        let engines = vec![
            ready(&s, Native::new(&s), &want, None),
            ready(&s, NativeStrings::new(&s), &want, None),
            ready(&s, Wasmtime::new(&s, &module), &want, None),
            ready(&s, Cedar::new(&s), &want, None),
            ready(&s, Casbin::new(&s), &want, None),
            ready(&s, Regorus::new(&s), &want, None),
        ];
        groups.push((s.id.clone(), engines));
    }
    for (id, mut engines) in groups {
        let mut g = c.benchmark_group(format!("peers-{id}"));
        if id == "d" {
            g.sample_size(20);
        }
        for e in &mut engines {
            e.time(&mut g);
        }
        g.finish();
    }
}

fn growth(c: &mut Criterion) {
    let mut setups = Vec::new();
    let mut over_budget: Vec<&'static str> = Vec::new();
    let mut sizes = Vec::new();
    for n in scenario::GROWTH {
        let s = scenario::scenario_growth(n);
        let want = expected(&s).unwrap_or_else(|e| fail("rolescope", &e));
        let mut engines: Vec<Box<dyn Timed>> = Vec::new();
        macro_rules! engine {
            ($ty:ty) => {{
                let name = <$ty as Peer>::NAME;
                let mut note = String::new();
                let mut setup_ms = None;
                if over_budget.contains(&name) {
                    note = "not run: the set-up of a smaller size was over the budget".into();
                } else {
                    let start = Instant::now();
                    let peer = <$ty>::new(&s);
                    let took = start.elapsed();
                    setup_ms = Some(took.as_secs_f64() * 1e3);
                    engines.push(ready(&s, peer, &want, Some(n)));
                    if took > SETUP_BUDGET {
                        over_budget.push(name);
                        note = format!(
                            "set-up took {:.1} s (budget {} s): larger sizes not run",
                            took.as_secs_f64(),
                            SETUP_BUDGET.as_secs()
                        );
                    }
                }
                setups.push(serde_json::json!({ "engine": name, "n": n, "setup_ms": setup_ms, "note": note }));
            }};
        }
        engine!(Native);
        engine!(Cedar);
        engine!(Casbin);
        engine!(Regorus);
        sizes.push(engines);
    }
    let path = target().join("criterion/peers-setup.json");
    let json = serde_json::json!({ "budget_s": SETUP_BUDGET.as_secs(), "growth": setups });
    if let Err(e) = std::fs::create_dir_all(target().join("criterion"))
        .and_then(|()| std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap_or_default()))
    {
        eprintln!("peers benchmark: {}: {e}", path.display());
        std::process::exit(1);
    }
    let mut g = c.benchmark_group("peers-growth");
    g.sample_size(20);
    for engines in &mut sizes {
        for e in engines {
            e.time(&mut g);
        }
    }
    g.finish();
}

criterion_group!(benches, scenarios, growth);
criterion_main!(benches);
