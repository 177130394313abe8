//! `rolescope-gateway`: the enforcing HTTP gateway (`serve`), its configuration check
//! (`check-config`), a token minter (`mint`, development and testing) and the principal
//! directory's signer (`sign-directory`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rolescope_gateway::{Gateway, GatewayConfig, MintOptions};

#[derive(Parser)]
#[command(name = "rolescope-gateway", version, about = "rolescope's enforcing HTTP gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve: authorize every request through the engine module, forward the allowed ones.
    Serve {
        /// The configuration file (YAML); `ROLESCOPE_GATEWAY_*` variables override it.
        #[arg(long)]
        config: PathBuf,
    },
    /// Check a configuration (and the module, bundle and key set it names), then exit.
    CheckConfig {
        /// The configuration file (YAML).
        #[arg(long)]
        config: PathBuf,
    },
    /// Mint a token (development and testing): for a principal a policy suite files, a subject
    /// alone, or a principal given as JSON.
    Mint {
        /// The suite (`*_test.yaml`) filing `--principal`; the policy is the role files in its
        /// folder. Without it, `--principal` is a subject and the token carries only `sub`.
        #[arg(long, requires = "principal")]
        suite: Option<PathBuf>,
        /// With `--suite`: the key it is filed under there, or its id. Without: the subject.
        #[arg(long, conflicts_with = "principal_json", required_unless_present = "principal_json")]
        principal: Option<String>,
        /// The principal as JSON (`{"id", "status"?, "assignments"?, "attributes"?}`), or
        /// `@FILE` to read it from a file.
        #[arg(long)]
        principal_json: Option<String>,
        /// A `groups` claim (for claim rules); repeat or separate with commas.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
        /// The PEM private key (RSA: RS256, P-256: ES256).
        #[arg(long)]
        key: PathBuf,
        /// Lifetime, e.g. 15m, 1h, 24h.
        #[arg(long, default_value = "1h")]
        ttl: String,
        /// The `kid` header (default: demo-rs256 or demo-es256 by key type).
        #[arg(long)]
        kid: Option<String>,
        /// The `iss` claim.
        #[arg(long, default_value = "rolescope-demo")]
        issuer: String,
        /// The `aud` claim.
        #[arg(long, default_value = "rolescope-gateway")]
        audience: String,
        /// The algorithm (default by key type).
        #[arg(long)]
        alg: Option<String>,
    },
    /// Check a principal directory and sign it (ed25519, a key from `rolescope keygen`), for
    /// `identity.directory.require_signature`.
    SignDirectory {
        /// The PKCS#8 PEM private key.
        #[arg(long)]
        key: PathBuf,
        /// The directory (`rolescope-directory/1` JSON).
        #[arg(long)]
        input: PathBuf,
        /// Where the signed directory goes.
        #[arg(long)]
        output: PathBuf,
    },
}

/// Crates whose debug output (tens of thousands of lines while compiling the module) is
/// only shown when the filter names them.
const NOISY: &[&str] = &["wasmtime", "cranelift", "regalloc2", "wasmparser", "cranelift_codegen", "cranelift_frontend"];

/// The log filter for `ROLESCOPE_LOG` (default `info`): the given directives, with the
/// compiler's crates held at `warn` unless a directive names them.
fn log_filter(spec: Option<&str>) -> String {
    let spec = spec.map(str::trim).filter(|s| !s.is_empty()).unwrap_or("info");
    let mut out = spec.to_owned();
    for name in NOISY {
        let named = spec.split(',').any(|d| d.trim().split(['=', '[', ':']).next().is_some_and(|t| t.trim() == *name));
        if !named {
            out.push_str(&format!(",{name}=warn"));
        }
    }
    out
}

fn init_tracing() {
    let spec = log_filter(std::env::var("ROLESCOPE_LOG").ok().as_deref());
    let filter =
        tracing_subscriber::EnvFilter::try_new(&spec).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::io::stderr().is_terminal() {
        builder.init();
    } else {
        builder.json().init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => {
            init_tracing();
            let config = match GatewayConfig::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(r) => r,
                Err(e) => return fail(&e),
            };
            runtime.block_on(async move {
                let gateway = match Gateway::start(config).await {
                    Ok(g) => g,
                    Err(e) => return fail(&e),
                };
                wait_for_stop().await;
                tracing::info!("shutting down: draining requests in flight");
                gateway.shutdown().await;
                ExitCode::SUCCESS
            })
        }
        Command::SignDirectory { key, input, output } => sign_directory(&key, &input, &output),
        Command::CheckConfig { config } => {
            let config = match GatewayConfig::load(&config) {
                Ok(c) => c,
                Err(e) => return fail(&e),
            };
            match rolescope_gateway::check_config(&config) {
                Ok(summary) => {
                    println!("ok: {summary}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Mint { suite, principal, principal_json, groups, key, ttl, kid, issuer, audience, alg } => {
            let Some(ttl) = parse_ttl(&ttl) else {
                eprintln!("error: --ttl: invalid duration {ttl:?} (expected e.g. 15m, 1h)");
                return ExitCode::from(2);
            };
            let opts = match (suite, principal, principal_json) {
                (Some(suite), Some(principal), _) => MintOptions::new(suite, principal, key),
                (None, Some(subject), _) => MintOptions::subject(subject, key),
                (_, None, Some(json)) => {
                    let json = match json.strip_prefix('@') {
                        Some(path) => match std::fs::read_to_string(path) {
                            Ok(t) => t,
                            Err(e) => return fail(&format!("--principal-json: cannot read `{path}`: {e}")),
                        },
                        None => json,
                    };
                    match MintOptions::principal_json(&json, key) {
                        Ok(o) => o,
                        Err(e) => return fail(&e),
                    }
                }
                (_, None, None) => return fail(&"give --principal or --principal-json"),
            };
            let mut opts = opts.groups(groups).ttl(ttl).issuer(issuer).audience(audience);
            if let Some(kid) = kid {
                opts = opts.kid(kid);
            }
            if let Some(alg) = alg {
                opts = match opts.algorithm(&alg) {
                    Ok(o) => o,
                    Err(e) => return fail(&e),
                };
            }
            match rolescope_gateway::mint(&opts) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
    }
}

/// `sign-directory`: check, sign, write.
fn sign_directory(key: &std::path::Path, input: &std::path::Path, output: &std::path::Path) -> ExitCode {
    let read =
        |p: &std::path::Path| std::fs::read_to_string(p).map_err(|e| format!("cannot read `{}`: {e}", p.display()));
    let signed = read(key)
        .and_then(|pem| rolescope_gateway::sign_directory(&read(input)?, &pem).map_err(|e| e.to_string()))
        .and_then(|signed| {
            std::fs::write(output, signed).map_err(|e| format!("cannot write `{}`: {e}", output.display()))
        });
    match signed {
        Ok(()) => {
            println!("signed: {}", output.display());
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}

fn parse_ttl(v: &str) -> Option<std::time::Duration> {
    let split = v.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = v.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

/// Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn the_compiler_stays_quiet_unless_named() {
        assert_eq!(
            log_filter(None),
            "info,wasmtime=warn,cranelift=warn,regalloc2=warn,wasmparser=warn,cranelift_codegen=warn,cranelift_frontend=warn"
        );
        assert!(log_filter(Some("debug")).starts_with("debug,wasmtime=warn,cranelift=warn"));
        let named = log_filter(Some("debug,wasmtime=trace,cranelift_codegen=debug"));
        assert!(!named.contains("wasmtime=warn") && !named.contains("cranelift_codegen=warn"), "{named}");
        assert!(named.contains("cranelift=warn"), "{named}");
        assert!(tracing_subscriber::EnvFilter::try_new(log_filter(Some("rolescope_gateway=debug"))).is_ok());
    }
}
