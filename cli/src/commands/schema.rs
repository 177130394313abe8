//! `rolescope schema`: write the JSON Schemas of role files and suites.

use crate::args::SchemaArgs;
use crate::discover::display;
use crate::emit;
use crate::error::{CliError, Exit};

/// The files `rolescope schema` writes, with their contents (pretty JSON, newline-terminated).
pub(crate) fn files() -> Result<Vec<(&'static str, String)>, CliError> {
    Ok(vec![
        (
            "policy.schema.json",
            format!("{}\n", serde_json::to_string_pretty(&rolescope_engine::schema::policy_schema())?),
        ),
        ("test.schema.json", format!("{}\n", serde_json::to_string_pretty(&rolescope_engine::schema::suite_schema())?)),
    ])
}

pub(crate) fn run(args: &SchemaArgs) -> Result<Exit, CliError> {
    std::fs::create_dir_all(&args.output).map_err(|source| CliError::Write { path: args.output.clone(), source })?;
    let mut out = String::new();
    for (name, text) in files()? {
        let path = args.output.join(name);
        std::fs::write(&path, text).map_err(|source| CliError::Write { path: path.clone(), source })?;
        out.push_str(&format!("wrote {}\n", display(&path)));
    }
    emit(&out)?;
    Ok(Exit::Ok)
}
