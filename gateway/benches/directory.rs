//! The principal directory at scale, a part of `cargo xtask bench` (`--only directory`): how
//! long a 100,000-principal `rolescope-directory/1` document takes to load (read, check and
//! index, as the gateway does before swapping it in; signed and unsigned) and how much memory
//! the loaded directory holds (heap bytes counted by this program's allocator).
//!
//! `cargo bench -p rolescope-gateway --profile release --bench directory -- --out target/bench [--quick]`
//! writes `directory.md` and `directory.json` there.
#![expect(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark program: a failure ends it")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rolescope_gateway::PrincipalDirectory;
use serde_json::json;

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
#[expect(unsafe_code, reason = "a global allocator is an unsafe trait; it only forwards and counts")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A directory shaped like an MSP's: each principal with a status, two or three assignments
/// (an MSP-level role reaching some tenants, a tenant role) and two attributes.
fn document(n: usize) -> String {
    let principals: Vec<_> = (0..n)
        .map(|i| {
            let mut assignments = vec![
                json!({ "role": "helpdesk", "scope": "msp:mist", "tenants": [format!("org:o{}", i % 500), format!("org:o{}", (i + 7) % 500)] }),
                json!({ "role": "observer", "scope": format!("msp:mist/org:o{}", i % 500) }),
            ];
            if i % 10 == 0 {
                assignments.push(json!({ "role": "network_admin", "scope": "msp:mist", "tenants": "all" }));
            }
            json!({
                "id": format!("user{i:06}@msp{}.example", i % 50),
                "status": if i % 97 == 0 { "suspended" } else { "active" },
                "assignments": assignments,
                "attributes": { "department": format!("dept-{}", i % 40), "mfa": i % 3 != 0 },
            })
        })
        .collect();
    json!({ "format": "rolescope-directory/1", "principals": principals }).to_string()
}

/// The median of `runs` loads, and the heap the last loaded directory holds and peaked at.
fn measure(
    bytes: &[u8],
    keys: Option<&[rolescope_sign::VerifyingKey]>,
    runs: usize,
    n: usize,
) -> (Duration, usize, usize) {
    let mut times = Vec::new();
    let (mut held, mut peak) = (0, 0);
    for _ in 0..runs {
        let before = IN_USE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let start = Instant::now();
        let d = PrincipalDirectory::from_json(bytes, keys).expect("the directory loads");
        times.push(start.elapsed());
        assert_eq!(d.len(), n);
        held = IN_USE.load(Ordering::Relaxed).saturating_sub(before);
        peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
        drop(d);
    }
    times.sort();
    (times.get(times.len() / 2).copied().unwrap_or_default(), held, peak)
}

fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| PathBuf::from("target/bench"), PathBuf::from);
    let n = 100_000;
    let runs = if quick { 1 } else { 7 };
    let text = document(n);
    let key = rolescope_sign::generate().unwrap();
    let signed = rolescope_sign::sign(&text, &[&key]).unwrap();
    let keys = [key.verifying_key()];

    let (unsigned_t, held, peak) = measure(text.as_bytes(), None, runs, n);
    let (signed_t, _, signed_peak) = measure(signed.as_bytes(), Some(&keys), runs, n);
    // one lookup, as each request with a new token (or after a swap) does
    let d = PrincipalDirectory::from_json(text.as_bytes(), None).unwrap();
    let lookups = 1_000_000usize;
    let start = Instant::now();
    let mut found = 0usize;
    for i in 0..lookups {
        let subject = format!("user{:06}@msp{}.example", i % n, (i % n) % 50);
        found += usize::from(d.get(std::hint::black_box(&subject)).is_some());
    }
    let lookup = start.elapsed() / u32::try_from(lookups).unwrap();
    assert_eq!(found, lookups);

    let poll = Duration::from_secs(2);
    let met = signed_t < poll;
    let mut md = String::new();
    let _ = writeln!(md, "## directory\n");
    let _ = writeln!(
        md,
        "`cargo bench -p rolescope-gateway --profile release --bench directory` ({runs} run(s) of each, the median). \
         A `rolescope-directory/1` document of {n} principals (each a status, two or three assignments, two \
         attributes; {}), read, checked whole and indexed by subject exactly as the gateway does before \
         swapping it in (`PrincipalDirectory::from_json`, the code the poller runs). Memory is heap bytes \
         counted by the program's allocator: what the loaded directory holds, and the peak while loading \
         (the document's parse tree included; the document's own bytes excluded).\n",
        mib(text.len())
    );
    let _ = writeln!(md, "| | |\n| --- | --- |");
    let _ = writeln!(md, "| load, unsigned | {:.0} ms |", unsigned_t.as_secs_f64() * 1e3);
    let _ = writeln!(md, "| load, signed (ed25519 verified first) | {:.0} ms |", signed_t.as_secs_f64() * 1e3);
    let _ = writeln!(md, "| memory held by the loaded directory | {} ({} bytes per principal) |", mib(held), held / n);
    let _ = writeln!(md, "| peak memory while loading (unsigned / signed) | {} / {} |", mib(peak), mib(signed_peak));
    let _ = writeln!(md, "| one lookup by subject (building the subject string included) | {} ns |", lookup.as_nanos());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let _ = writeln!(md, "| load average during the run (1, 5, 15 min) | {} |", load.join(", "));
    let _ = writeln!(
        md,
        "\nWhile a new directory loads, the previous one keeps serving: for the swap, both are in \
         memory at once (about twice the held figure)."
    );
    let summary = json!({
        "versions": {},
        "goals": [{
            "goal": "a 100,000-principal signed directory loads within the default poll interval (ours: the issue names no figure)",
            "target": "< 2 s",
            "result": format!("{:.0} ms", signed_t.as_secs_f64() * 1e3),
            "met": met,
        }],
        "load_ms": unsigned_t.as_secs_f64() * 1e3,
        "signed_load_ms": signed_t.as_secs_f64() * 1e3,
        "held_bytes": held,
        "peak_bytes": peak,
        "lookup_ns": lookup.as_nanos(),
    });
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("directory.md"), md).unwrap();
    std::fs::write(out.join("directory.json"), serde_json::to_string_pretty(&summary).unwrap()).unwrap();
    println!(
        "directory: {n} principals, load {:.0} ms (signed {:.0} ms), held {}, peak {}, lookup {} ns",
        unsigned_t.as_secs_f64() * 1e3,
        signed_t.as_secs_f64() * 1e3,
        mib(held),
        mib(peak),
        lookup.as_nanos()
    );
}
