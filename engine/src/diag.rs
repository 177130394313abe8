//! Diagnostics: validation errors and warnings as data.
//!
//! Every problem found in a role file carries the file name, a 1-based line and column, a
//! stable code (`RS0xx`), a lowercase message with user input in backticks, and an optional
//! hint. The CLI renders them with miette; the wasm bindings return them as plain objects.

use std::fmt;

use serde::Serialize;

/// How serious a [`Diagnostic`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The policy cannot be compiled.
    Error,
    /// The policy compiles, but something is probably a mistake.
    Warning,
}

/// A position in a source file: file name, 1-based line and column, byte offset and length.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, Serialize)]
pub struct SourceLocation {
    file: String,
    line: u32,
    column: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<usize>,
    #[serde(skip_serializing_if = "is_zero")]
    length: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl SourceLocation {
    /// A location in `file` at `line`:`column` (1-based; 0 means unknown).
    pub fn new(file: impl Into<String>, line: u32, column: u32) -> Self {
        Self { file: file.into(), line, column, offset: None, length: 0 }
    }

    #[cfg(feature = "compiler")]
    pub(crate) fn from_saphyr(file: &str, loc: &serde_saphyr::Location) -> Self {
        let span = loc.span();
        Self {
            file: file.to_owned(),
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
            column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
            offset: span.byte_offset().and_then(|o| usize::try_from(o).ok()),
            length: span.byte_len().and_then(|l| usize::try_from(l).ok()).unwrap_or(0),
        }
    }

    /// The file name as given to the compiler.
    pub fn file(&self) -> &str {
        &self.file
    }
    /// 1-based line (0 when unknown).
    pub fn line(&self) -> u32 {
        self.line
    }
    /// 1-based column (0 when unknown).
    pub fn column(&self) -> u32 {
        self.column
    }
    /// Byte offset into the source text, when known.
    pub fn offset(&self) -> Option<usize> {
        self.offset
    }
    /// Length in bytes of the spanned text (0 when unknown).
    pub fn length(&self) -> usize {
        self.length
    }

    #[cfg(feature = "compiler")]
    /// A copy pointing `delta` bytes further on the same line (for spans inside a scalar).
    pub(crate) fn shifted(&self, delta: usize, length: usize) -> Self {
        let mut out = self.clone();
        out.column = out.column.saturating_add(u32::try_from(delta).unwrap_or(0));
        out.offset = self.offset.map(|o| o.saturating_add(delta));
        out.length = length;
        out
    }
}

/// A [`SourceLocation`] in the compiled form of a bundle: every field, in order (the
/// `Serialize` above, for people and JS, leaves out unknown parts).
pub(crate) mod wire_location {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::SourceLocation;

    pub(crate) fn serialize<S: Serializer>(l: &SourceLocation, s: S) -> Result<S::Ok, S::Error> {
        (&l.file, l.line, l.column, l.offset.map(|o| o as u64), l.length as u64).serialize(s)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SourceLocation, D::Error> {
        let (file, line, column, offset, length) = <(String, u32, u32, Option<u64>, u64)>::deserialize(d)?;
        Ok(SourceLocation {
            file,
            line,
            column,
            offset: offset.and_then(|o| usize::try_from(o).ok()),
            length: usize::try_from(length).unwrap_or(0),
        })
    }

    /// Read from a bundle's compiled form (`wire.rs`), as `deserialize` does.
    pub(crate) fn read(r: &mut crate::wire::Reader<'_>) -> Option<SourceLocation> {
        let (file, line, column) = (r.string()?, r.u32()?, r.u32()?);
        let offset = r.opt(crate::wire::Reader::u64)?;
        let length = r.u64()?;
        Some(SourceLocation {
            file,
            line,
            column,
            offset: offset.and_then(|o| usize::try_from(o).ok()),
            length: usize::try_from(length).unwrap_or(0),
        })
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// One validation error or warning.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    severity: Severity,
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    hint: Option<String>,
    location: SourceLocation,
}

impl Diagnostic {
    pub(crate) fn error(code: &'static str, location: SourceLocation, message: String) -> Self {
        Self { severity: Severity::Error, code, message, hint: None, location }
    }

    #[cfg(feature = "compiler")]
    pub(crate) fn warning(code: &'static str, location: SourceLocation, message: String) -> Self {
        Self { severity: Severity::Warning, code, message, hint: None, location }
    }

    #[cfg(feature = "compiler")]
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Error or warning.
    pub fn severity(&self) -> Severity {
        self.severity
    }
    /// Stable code such as `RS011`; see `policies/README.md` for the list.
    pub fn code(&self) -> &'static str {
        self.code
    }
    /// Lowercase message; user input appears in backticks.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// A suggestion for fixing the problem.
    pub fn help(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// Where the problem is.
    pub fn location(&self) -> &SourceLocation {
        &self.location
    }
    /// True for errors (as opposed to warnings).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{}: {sev}[{}]: {}", self.location, self.code, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

/// The diagnostics of a policy that failed to compile: every error found, plus warnings.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "compiler", derive(miette::Diagnostic), diagnostic(code(rolescope::invalid_policy)))]
#[error("policy is invalid: {} error(s)", self.error_count())]
pub struct CompileError {
    diagnostics: Vec<Diagnostic>,
}

impl CompileError {
    pub(crate) fn new(diagnostics: Vec<Diagnostic>) -> Self {
        Self { diagnostics }
    }
    /// All diagnostics, errors first, each group in source order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
    /// The number of errors (not warnings).
    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// Stable diagnostic codes. Documented in `policies/README.md`.
#[cfg_attr(not(feature = "compiler"), expect(dead_code, reason = "the compiler uses all but `SYNTAX`"))]
pub(crate) mod codes {
    pub(crate) const SYNTAX: &str = "RS001";
    pub(crate) const SHAPE: &str = "RS002";
    pub(crate) const NO_POLICY_NAME: &str = "RS003";
    pub(crate) const DUPLICATE: &str = "RS010";
    pub(crate) const UNKNOWN_LEVEL: &str = "RS011";
    pub(crate) const UNKNOWN_RESOURCE: &str = "RS012";
    pub(crate) const UNKNOWN_ACTION: &str = "RS013";
    pub(crate) const UNKNOWN_ROLE: &str = "RS014";
    pub(crate) const BAD_TYPE: &str = "RS016";
    pub(crate) const CYCLE: &str = "RS020";
    pub(crate) const SCOPE_TREE: &str = "RS021";
    pub(crate) const NO_LEVELS: &str = "RS022";
    pub(crate) const BAD_NAME: &str = "RS023";
    pub(crate) const TOO_MANY_ACTIONS: &str = "RS024";
    pub(crate) const BAD_VALUE: &str = "RS025";
    pub(crate) const CONDITION_SYNTAX: &str = "RS030";
    pub(crate) const CONDITION_TYPE: &str = "RS031";
    pub(crate) const BAD_ASSIGNMENT: &str = "RS041";
    pub(crate) const BAD_FIXTURE: &str = "RS042";
    pub(crate) const IMPLICIT_TENANTS: &str = "RS043";
    pub(crate) const UNUSED_ROLE: &str = "RS050";
    pub(crate) const UNUSED_LEVEL: &str = "RS051";
    pub(crate) const EMPTY_GRANT: &str = "RS052";
    pub(crate) const LINT_INCLUDED_DENY: &str = "RS070";
    pub(crate) const LINT_UNGUARDED_DENY: &str = "RS071";
    pub(crate) const LINT_HEADER_GRANT: &str = "RS072";
    pub(crate) const LINT_UNREACHABLE_GRANT: &str = "RS073";
    pub(crate) const LINT_UNASSIGNABLE_ROLE: &str = "RS074";
    pub(crate) const ROUTE: &str = "RS060";
    pub(crate) const ROUTE_CONFLICT: &str = "RS061";
    pub(crate) const ROUTE_PARAM: &str = "RS062";
}
