//! Engine diagnostics as miette reports: `file:line:col`, the source line with the span
//! underlined, the code and the hint.

use std::collections::HashMap;
use std::fmt;

use miette::{LabeledSpan, NamedSource, SourceSpan};
use rolescope_engine::{Diagnostic, Severity, Source};

/// The texts diagnostics point into, by source name.
#[derive(Debug, Default)]
pub(crate) struct SourceMap {
    texts: HashMap<String, String>,
}

impl SourceMap {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, sources: &[Source]) {
        for s in sources {
            self.texts.insert(s.name().to_owned(), s.text().to_owned());
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.texts.get(name).map(String::as_str)
    }
}

/// One engine diagnostic, ready for a miette handler.
#[derive(Debug)]
pub(crate) struct Report<'a> {
    diag: &'a Diagnostic,
    source: Option<NamedSource<String>>,
    span: Option<SourceSpan>,
}

impl<'a> Report<'a> {
    pub(crate) fn new(diag: &'a Diagnostic, sources: &SourceMap) -> Self {
        let loc = diag.location();
        let text = sources.get(loc.file());
        let span = text.and_then(|t| span_of(t, loc.offset(), loc.length(), loc.line(), loc.column()));
        let source = match (text, span) {
            (Some(t), Some(_)) => Some(NamedSource::new(loc.file(), t.to_owned()).with_language("yaml")),
            _ => None,
        };
        Self { diag, source, span }
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.span.is_some() {
            f.write_str(self.diag.message())
        } else {
            // No snippet to show: say where in the message itself.
            let loc = self.diag.location();
            match (loc.line(), loc.column()) {
                (0, _) => write!(f, "{}: {}", loc.file(), self.diag.message()),
                (l, 0) => write!(f, "{}:{l}: {}", loc.file(), self.diag.message()),
                _ => write!(f, "{loc}: {}", self.diag.message()),
            }
        }
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diag.code()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diag.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diag.help().map(|h| Box::new(h) as Box<dyn fmt::Display + 'b>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        let label = match self.diag.severity() {
            Severity::Error => "here",
            Severity::Warning => "this",
        };
        Some(Box::new(std::iter::once(LabeledSpan::new_primary_with_span(Some(label.to_owned()), span))))
    }
}

/// The byte span of a diagnostic in `text`: the engine's offset when it has one, else
/// computed from the 1-based line and column (counted in characters). A zero length widens
/// to the word at that position, so the underline covers the name the message is about.
pub(crate) fn span_of(text: &str, offset: Option<usize>, length: usize, line: u32, column: u32) -> Option<SourceSpan> {
    let start = match offset {
        Some(o) if o <= text.len() && text.is_char_boundary(o) => o,
        _ => offset_of(text, line, column)?,
    };
    let rest = text.get(start..)?;
    let len = if length > 0 && start + length <= text.len() {
        length
    } else {
        let word = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '-' | '.')))
            .map_or(rest.len(), |(i, _)| i);
        if word > 0 { word } else { rest.chars().next().map_or(0, char::len_utf8) }
    };
    Some(SourceSpan::new(start.into(), len))
}

/// Byte offset of a 1-based line and column (the column counts characters).
fn offset_of(text: &str, line: u32, column: u32) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut start = 0;
    for _ in 1..line {
        start += text.get(start..)?.find('\n')? + 1;
    }
    let line_text = text.get(start..)?.split('\n').next().unwrap_or("");
    let col = usize::try_from(column.max(1) - 1).ok()?;
    let within = line_text.char_indices().nth(col).map_or(line_text.len(), |(i, _)| i);
    Some(start + within)
}

/// Render every diagnostic (errors first as the engine orders them) into one string.
pub(crate) fn render_all(style: &crate::style::Style, diags: &[Diagnostic], sources: &SourceMap) -> String {
    diags.iter().map(|d| style.render(&Report::new(d, sources))).collect::<Vec<_>>().join("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_from_line_and_column() {
        let text = "a: 1\nbb: two\nc: 3\n";
        assert_eq!(offset_of(text, 1, 1), Some(0));
        assert_eq!(offset_of(text, 2, 5), Some(9));
        assert_eq!(offset_of(text, 3, 1), Some(13));
        assert_eq!(offset_of(text, 9, 1), None);
        assert_eq!(offset_of(text, 0, 1), None);
    }

    #[test]
    fn zero_length_spans_cover_the_word() {
        let text = "roles:\n  admin: { includes: [netwrk_admin] }\n";
        let span = span_of(text, None, 0, 2, 23);
        let (o, l) = span.map(|s| (s.offset(), s.len())).unwrap_or_default();
        assert_eq!(text.get(o..o + l), Some("netwrk_admin"));
    }

    #[test]
    fn engine_spans_win() {
        assert_eq!(span_of("abcdef", Some(2), 3, 1, 1), Some(SourceSpan::new(2.into(), 3)));
        // out of range: fall back to line/column
        assert_eq!(span_of("abc", Some(99), 1, 1, 2), Some(SourceSpan::new(1.into(), 1)));
    }
}
