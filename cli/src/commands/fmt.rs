//! `rolescope fmt`: rewrite YAML role files and suites in the one layout (comments kept), or
//! with `--check` list the files that are not in it (exit 3).

use rolescope_engine::{Source, format_yaml};

use crate::args::FmtArgs;
use crate::discover::{discover, display, read_text};
use crate::error::{CliError, Exit};
use crate::render::{SourceMap, render_all};
use crate::style::Style;
use crate::{emit, emit_err};

pub(crate) fn run(args: &FmtArgs, style: &Style) -> Result<Exit, CliError> {
    let inputs = discover(&args.paths)?;
    let mut files: Vec<_> = inputs.iter().flat_map(|i| i.roles.iter().chain(&i.suites)).cloned().collect();
    files.retain(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| e == "yaml" || e == "yml"));
    files.sort();
    files.dedup();
    let (mut changed, mut failed) = (Vec::new(), 0usize);
    for path in &files {
        let text = read_text(path)?;
        let src = Source::new(display(path), text);
        match format_yaml(&src) {
            Ok(out) if out == src.text() => {}
            Ok(out) => {
                if !args.check {
                    std::fs::write(path, out).map_err(|source| CliError::Write { path: path.clone(), source })?;
                }
                changed.push(display(path));
            }
            Err(d) => {
                failed += 1;
                let mut map = SourceMap::new();
                map.add(std::slice::from_ref(&src));
                emit_err(&render_all(style, std::slice::from_ref(&*d), &map));
            }
        }
    }
    let mut out = String::new();
    for c in &changed {
        out.push_str(&format!("{} {c}\n", if args.check { "would reformat" } else { "formatted" }));
    }
    out.push_str(&format!(
        "{} file(s), {} {}\n",
        files.len(),
        changed.len(),
        if args.check { "not formatted" } else { "reformatted" }
    ));
    emit(&out)?;
    Ok(if failed > 0 || (args.check && !changed.is_empty()) { Exit::InvalidPolicy } else { Exit::Ok })
}
