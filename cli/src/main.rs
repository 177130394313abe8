//! The `rolescope` command line: check role files, run test suites, decide and explain
//! requests, build bundles and write the JSON Schemas.
//!
//! A thin shell over `rolescope-engine`: every decision is the engine's; this crate reads
//! files, walks folders and renders results (miette for diagnostics, JSON, JUnit, TAP).

mod args;
mod commands;
mod discover;
mod error;
mod input;
mod render;
mod style;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command};
use crate::error::CliError;
use crate::style::Style;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = Style::detect();
    let result = match cli.command {
        Command::Check(a) => commands::check::run(&a, &style),
        Command::Test(a) => commands::test::run(&a, &style),
        Command::Eval(a) => commands::eval::run_eval(&a, &style),
        Command::Route(a) => commands::eval::run_route(&a, &style),
        Command::Explain(a) => commands::eval::run_explain(&a, &style),
        Command::Replay(a) => commands::replay::run_replay(&a, &style),
        Command::Build(a) => commands::build::run(&a, &style),
        Command::Fmt(a) => commands::fmt::run(&a, &style),
        Command::Schema(a) => commands::schema::run(&a),
        Command::Keygen(a) => commands::keygen::run(&a),
    };
    let exit = match result {
        Ok(exit) => exit,
        Err(e) => {
            let text = style.render_error(&e);
            let mut err = std::io::stderr().lock();
            // Nothing sensible is left to do if stderr itself is gone.
            let _ = err.write_all(text.as_bytes());
            e.exit()
        }
    };
    ExitCode::from(exit as u8)
}

/// Print to stdout; a closed pipe (`rolescope test | head`) is not an error worth a panic.
pub(crate) fn emit(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Output(e)),
    }
}

/// Print to stderr, ignoring failures (diagnostics are best effort once stderr is closed).
pub(crate) fn emit_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn clap_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn exit_codes_are_documented_in_help() {
        let help = super::Cli::command().render_long_help().to_string();
        for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "5 "] {
            assert!(help.contains(&format!("  {code}")), "exit code {code} missing from --help:\n{help}");
        }
    }
}
