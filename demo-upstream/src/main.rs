//! `rolescope-demo-upstream [--listen ADDR] [--log-limit N]`: the demo MSP API (see the crate docs).

use std::process::ExitCode;

use rolescope_demo_upstream::{Options, run};

const USAGE: &str = "usage: rolescope-demo-upstream [--listen 127.0.0.1:8081] [--log-limit 100000]";

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().cloned().ok_or_else(|| format!("`{name}` needs a value"));
        match arg.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                options.listen = v.parse().map_err(|e| format!("--listen: `{v}`: {e}"))?;
            }
            "--log-limit" => {
                let v = value("--log-limit")?;
                options.log_limit = v.parse().map_err(|e| format!("--log-limit: `{v}`: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rolescope-demo-upstream: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(&options, |addr| println!("rolescope-demo-upstream listening on http://{addr}")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rolescope-demo-upstream: {e}");
            ExitCode::FAILURE
        }
    }
}
