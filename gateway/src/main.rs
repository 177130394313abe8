//! `rolescope-gateway`: the enforcing HTTP gateway (`serve`), its configuration check
//! (`check-config`) and a demo-token minter (`mint`, development only).

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
    /// Mint a demo token for a principal a policy suite files (development only).
    Mint {
        /// The suite (`*_test.yaml`); the policy is the role files in its folder.
        #[arg(long)]
        suite: PathBuf,
        /// The principal: the key it is filed under in the suite, or its id.
        #[arg(long)]
        principal: String,
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
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROLESCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
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
        Command::Mint { suite, principal, key, ttl, kid, issuer, audience, alg } => {
            let Some(ttl) = parse_ttl(&ttl) else {
                eprintln!("error: --ttl: invalid duration {ttl:?} (expected e.g. 15m, 1h)");
                return ExitCode::from(2);
            };
            let mut opts = MintOptions::new(suite, principal, key).ttl(ttl).issuer(issuer).audience(audience);
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
