//! Writes the parity corpus: `cargo run -p rolescope-parity [-- OUT_DIR [GENERATED_PER_SEED]]`
//! (defaults: `target/parity`, 2,500 per seed policy, i.e. 10,000 over the four seed policies,
//! plus one fifth as many generated HTTP requests per seed policy in `http.jsonl`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut args = std::env::args().skip(1);
    let out = args.next().map(PathBuf::from).unwrap_or_else(|| root.join("target/parity"));
    let per_seed = args.next().and_then(|n| n.parse().ok()).unwrap_or(2_500);
    match rolescope_parity::corpus(&root, per_seed).and_then(|(f, c)| {
        rolescope_parity::write(&out, &f, &c)?;
        let http = rolescope_parity::http_corpus(&f, per_seed / 5)?;
        rolescope_parity::write_http(&out, &http)?;
        Ok((f.len(), c.len() + http.len()))
    }) {
        Ok((folders, cases)) => {
            println!("parity corpus: {cases} cases over {folders} policy folders -> {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
