//! Finding policies on disk: which files are role files, which are suites, and how folders
//! group them into policies.
//!
//! - a **role file** ends in `.yaml`, `.yml` or `.json`, and is neither a suite nor a JSON
//!   Schema (`*.schema.json`);
//! - a **suite** ends in `_test.yaml`, `_test.yml` or `_test.json`;
//! - a folder argument is searched recursively (hidden folders, `target` and `node_modules`
//!   are skipped); every folder that directly holds role files is one policy;
//! - file arguments compile together as one policy. Suites given without role files run
//!   against the role files of their own folder.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use rolescope_engine::Source;

use crate::error::CliError;

/// One policy to compile: its role files and the suites that go with it.
#[derive(Debug, Clone)]
pub(crate) struct PolicyInput {
    /// The folder (or, for file arguments, the first file's folder), for display.
    pub(crate) label: String,
    /// Role files, sorted.
    pub(crate) roles: Vec<PathBuf>,
    /// Suite files, sorted.
    pub(crate) suites: Vec<PathBuf>,
}

/// What a file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Role,
    Suite,
    Other,
}

pub(crate) fn kind_of(path: &Path) -> FileKind {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else { return FileKind::Other };
    if [".yaml", ".yml", ".json"].iter().any(|ext| name.ends_with(&format!("_test{ext}"))) {
        return FileKind::Suite;
    }
    if name.ends_with(".schema.json") {
        return FileKind::Other;
    }
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml" | "json") => FileKind::Role,
        _ => FileKind::Other,
    }
}

fn skip_dir(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| (n.starts_with('.') && n != "." && n != "..") || n == "target" || n == "node_modules")
}

/// The files of one folder (not recursive), sorted by name.
fn dir_files(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let rd = fs::read_dir(dir).map_err(|source| CliError::Read { path: dir.to_owned(), source })?;
    let mut out: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
    out.sort();
    Ok(out)
}

fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let rd = fs::read_dir(dir).map_err(|source| CliError::Read { path: dir.to_owned(), source })?;
    let mut out: Vec<PathBuf> = rd.flatten().map(|e| e.path()).filter(|p| p.is_dir() && !skip_dir(p)).collect();
    out.sort();
    Ok(out)
}

/// The role files and suites directly in `dir`.
pub(crate) fn folder(dir: &Path) -> Result<PolicyInput, CliError> {
    let files = dir_files(dir)?;
    Ok(PolicyInput {
        label: display(dir),
        roles: files.iter().filter(|p| kind_of(p) == FileKind::Role).cloned().collect(),
        suites: files.iter().filter(|p| kind_of(p) == FileKind::Suite).cloned().collect(),
    })
}

fn walk(dir: &Path, out: &mut Vec<PolicyInput>) -> Result<(), CliError> {
    let here = folder(dir)?;
    if !here.roles.is_empty() {
        out.push(here);
    }
    for sub in subdirs(dir)? {
        walk(&sub, out)?;
    }
    Ok(())
}

/// Group the command-line paths into policies.
pub(crate) fn discover(paths: &[PathBuf]) -> Result<Vec<PolicyInput>, CliError> {
    let mut out = Vec::new();
    let mut roles = Vec::new();
    let mut suites = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.is_file() {
            match kind_of(p) {
                FileKind::Role => roles.push(p.clone()),
                FileKind::Suite => suites.push(p.clone()),
                FileKind::Other => {
                    return Err(CliError::usage_with(
                        format!("`{}` is not a role file or a suite", p.display()),
                        "role files end in .yaml, .yml or .json; suites in _test.yaml",
                    ));
                }
            }
        } else {
            return Err(CliError::NotFound(p.clone()));
        }
    }
    if !roles.is_empty() {
        let label = roles.first().map(|p| display(p.parent().unwrap_or(Path::new(".")))).unwrap_or_default();
        roles.sort();
        roles.dedup();
        suites.sort();
        suites.dedup();
        out.push(PolicyInput { label, roles, suites });
    } else if !suites.is_empty() {
        // Suites alone: each runs against the role files of its folder.
        let mut by_dir: BTreeMap<PathBuf, Vec<PathBuf>> = BTreeMap::new();
        for s in suites {
            let dir = s.parent().map(Path::to_path_buf).unwrap_or_default();
            by_dir.entry(dir).or_default().push(s);
        }
        for (dir, mut suites) in by_dir {
            let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
            let mut input = folder(&dir)?;
            suites.sort();
            suites.dedup();
            input.suites = suites;
            out.push(input);
        }
    }
    // The same folder reached through two arguments (`policies policies/acme`) runs once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| {
        seen.insert(p.roles.iter().map(|r| fs::canonicalize(r).unwrap_or_else(|_| r.clone())).collect::<Vec<_>>())
    });
    Ok(out)
}

/// A path as shown to the user and given to the engine as a source name: relative to the
/// current folder when it lies inside it, without `./`, with `/` separators.
pub(crate) fn display(path: &Path) -> String {
    let rel = if path.is_absolute() {
        std::env::current_dir()
            .ok()
            .and_then(|cwd| path.strip_prefix(&cwd).ok().map(Path::to_path_buf))
            .unwrap_or_else(|| path.to_path_buf())
    } else {
        path.to_path_buf()
    };
    let parts: Vec<String> = rel
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .map(|c| match c {
            Component::RootDir => String::new(),
            other => other.as_os_str().to_string_lossy().into_owned(),
        })
        .collect();
    if parts.is_empty() {
        ".".to_owned()
    } else if parts.len() == 1 && parts.first().is_some_and(String::is_empty) {
        "/".to_owned()
    } else {
        parts.join("/")
    }
}

/// Read files as engine sources named by [`display`].
pub(crate) fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, CliError> {
    paths.iter().map(|p| Ok(Source::new(display(p), read_text(p)?))).collect()
}

/// Read a text file (UTF-8).
pub(crate) fn read_text(path: &Path) -> Result<String, CliError> {
    fs::read_to_string(path).map_err(|source| CliError::Read { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_by_name() {
        assert_eq!(kind_of(Path::new("a/roles.yaml")), FileKind::Role);
        assert_eq!(kind_of(Path::new("a/roles.json")), FileKind::Role);
        assert_eq!(kind_of(Path::new("a/basic_test.yaml")), FileKind::Suite);
        assert_eq!(kind_of(Path::new("a/basic_test.json")), FileKind::Suite);
        assert_eq!(kind_of(Path::new("schema/policy.schema.json")), FileKind::Other);
        assert_eq!(kind_of(Path::new("README.md")), FileKind::Other);
    }

    #[test]
    fn display_paths_are_relative_and_clean() {
        assert_eq!(display(Path::new("./policies/acme/roles.yaml")), "policies/acme/roles.yaml");
        assert_eq!(display(Path::new(".")), ".");
        assert_eq!(display(Path::new("./")), ".");
        assert_eq!(display(Path::new("/")), "/");
        let cwd = std::env::current_dir().unwrap_or_default();
        assert_eq!(display(&cwd.join("x/y.yaml")), "x/y.yaml");
    }
}
