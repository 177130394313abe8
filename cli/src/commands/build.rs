//! `rolescope build`: validate a policy and write it as a bundle.

use std::path::{Path, PathBuf};

use rolescope_engine::{Policy, Source};

use crate::args::BuildArgs;
use crate::commands::plural;
use crate::discover::{FileKind, display, folder, kind_of, read_sources, read_text};
use crate::error::{CliError, Exit};
use crate::render::{SourceMap, render_all};
use crate::style::Style;
use crate::{emit, emit_err};

/// The role files to bundle, and the folder their names in the bundle are relative to.
fn inputs(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, PathBuf), CliError> {
    if let [dir] = paths
        && dir.is_dir()
    {
        let input = folder(dir)?;
        if input.roles.is_empty() {
            return Err(CliError::usage_with(
                format!("`{}` holds no role files", display(dir)),
                "give the folder that directly holds the policy's .yaml files",
            ));
        }
        return Ok((input.roles, dir.clone()));
    }
    for p in paths {
        if !p.exists() {
            return Err(CliError::NotFound(p.clone()));
        }
        if kind_of(p) != FileKind::Role {
            return Err(CliError::usage_with(
                format!("`{}` is not a role file", display(p)),
                "give one policy folder, or the role files of one policy",
            ));
        }
    }
    let base = paths.first().and_then(|p| p.parent()).map(Path::to_path_buf).unwrap_or_default();
    let base = if paths.iter().all(|p| p.parent() == Some(base.as_path())) { base } else { PathBuf::new() };
    Ok((paths.to_vec(), base))
}

/// The signing keys of `--sign`, read before anything is built.
fn signing_keys(paths: &[PathBuf]) -> Result<Vec<rolescope_sign::SigningKey>, CliError> {
    paths
        .iter()
        .map(|p| {
            if !p.exists() {
                return Err(CliError::NotFound(p.clone()));
            }
            rolescope_sign::private_key_from_pem(&read_text(p)?).map_err(|e| {
                CliError::usage_with(
                    format!("`{}`: {e}", display(p)),
                    "give a PKCS#8 PEM ed25519 private key (`rolescope keygen`, or `openssl genpkey -algorithm ed25519`)",
                )
            })
        })
        .collect()
}

pub(crate) fn run(args: &BuildArgs, style: &Style) -> Result<Exit, CliError> {
    let keys = signing_keys(&args.sign)?;
    let (files, base) = inputs(&args.paths)?;
    // Inside the bundle, files are named relative to the policy folder, so the revision does
    // not depend on where the build ran.
    let bundled: Vec<Source> = files
        .iter()
        .map(|p| {
            let name =
                if base.as_os_str().is_empty() { display(p) } else { display(p.strip_prefix(&base).unwrap_or(p)) };
            Ok(Source::new(name, read_text(p)?))
        })
        .collect::<Result<_, CliError>>()?;
    let (policy, json) = match Policy::bundle(&bundled) {
        Ok(ok) => ok,
        Err(_) => {
            // Compile again under the names the user can open, for the diagnostics.
            let sources = read_sources(&files)?;
            let mut map = SourceMap::new();
            map.add(&sources);
            let diags = match Policy::compile(&sources) {
                Err(e) => e.diagnostics().to_vec(),
                Ok(_) => Vec::new(),
            };
            emit_err(&render_all(style, &diags, &map));
            return Ok(Exit::InvalidPolicy);
        }
    };
    if !policy.warnings().is_empty() {
        let sources = read_sources(&files)?;
        let mut map = SourceMap::new();
        map.add(&sources);
        if let Ok(p) = Policy::compile(&sources) {
            emit_err(&render_all(style, p.warnings(), &map));
        }
    }
    let (json, signed) = if keys.is_empty() {
        (json, String::new())
    } else {
        let refs: Vec<&rolescope_sign::SigningKey> = keys.iter().collect();
        let envelope = rolescope_sign::sign(&json, &refs).map_err(|e| CliError::usage(e.to_string()))?;
        let ids: Vec<String> = keys.iter().map(|k| rolescope_sign::key_id(&k.verifying_key())).collect();
        (envelope, format!("  signed by {}\n", ids.join(", ")))
    };
    let summary = format!(
        "built policy `{}` revision {}\n  {}, {}, {} -> {}\n{signed}",
        policy.name(),
        policy.revision(),
        plural(files.len(), "file"),
        plural(policy.role_names().count(), "role"),
        plural(policy.rule_count(), "rule"),
        if args.output.as_os_str() == "-" { "standard output".to_owned() } else { display(&args.output) },
    );
    if args.output.as_os_str() == "-" {
        emit(&format!("{json}\n"))?;
        emit_err(&summary);
    } else {
        std::fs::write(&args.output, format!("{json}\n"))
            .map_err(|source| CliError::Write { path: args.output.clone(), source })?;
        emit(&summary)?;
    }
    Ok(Exit::Ok)
}
