//! `rolescope fmt`: one layout for YAML role files and suites, comments kept.
//!
//! The layout: block nesting indented by two spaces per level (a sequence's `- ` counts as one
//! level), no trailing whitespace, no tabs, at most one blank line in a row, none at the start,
//! exactly one newline at the end. Block scalars (`|`, `>`) keep their text, moved with their
//! key. Line-based, so every comment stays where it is. The result is read back and must mean
//! exactly what the input meant (the same data, every value); otherwise nothing is rewritten.
//! Formatting is idempotent: a formatted file formats to itself.

use crate::compile::{Source, parse_text};
use crate::diag::{Diagnostic, SourceLocation, codes};

/// Format a YAML role file or suite. Errors: the text is not valid YAML, or (never expected)
/// the layout would change its meaning.
pub fn format_yaml(src: &Source) -> Result<String, Box<Diagnostic>> {
    let before: serde_json::Value = parse_text::<Option<serde_json::Value>>(src)?.unwrap_or_default();
    let out = layout(src.text());
    let after: serde_json::Value =
        parse_text::<Option<serde_json::Value>>(&Source::new(src.name(), out.clone()))?.unwrap_or_default();
    if before != after {
        return Err(Box::new(Diagnostic::error(
            codes::SYNTAX,
            SourceLocation::new(src.name(), 1, 1),
            "cannot format this file without changing what it means; it is left as it is".into(),
        )));
    }
    Ok(out)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Does `line` (trimmed) end a key or item that opens a block scalar (`|`, `>-`, ...)?
fn opens_block_scalar(content: &str) -> bool {
    let code = content.split(" #").next().unwrap_or(content).trim_end();
    let last = code.rsplit(' ').next().unwrap_or("");
    !last.is_empty()
        && (last.starts_with('|') || last.starts_with('>'))
        && last.chars().skip(1).all(|c| c == '-' || c == '+' || c.is_ascii_digit())
        && (code.len() == last.len() || code.ends_with(&format!(": {last}")) || code.ends_with(&format!("- {last}")))
}

/// One open block level: its indent as written, as formatted, and whether it is a sequence
/// written at its key's own indent (`key:` then `- item` in the same column).
struct Level {
    old: usize,
    new: usize,
    compact_seq: bool,
}

fn layout(text: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut stack: Vec<Level> = Vec::new();
    // inside a block scalar: (the old indent of the line that opened it, the shift to apply)
    let mut scalar: Option<(usize, isize)> = None;
    // the last line opened a block (`key:` with nothing after it), at this old indent
    let mut opened: Option<usize> = None;
    let mut blank = 0usize;
    for raw in text.lines() {
        let line = raw.trim_end();
        if line.is_empty() {
            blank += 1;
            continue;
        }
        let old = indent_of(line);
        if let Some((opener, shift)) = scalar {
            if old > opener {
                // block scalar text: moved with its key, otherwise as written
                if blank > 0 {
                    out.push(String::new());
                }
                blank = 0;
                let new = usize::try_from(isize::try_from(old).unwrap_or(0) + shift).unwrap_or(0);
                out.push(format!("{}{}", " ".repeat(new), line.trim_start_matches(' ')));
                continue;
            }
            scalar = None;
        }
        if blank > 0 && !out.is_empty() {
            out.push(String::new());
        }
        blank = 0;
        let content = line.trim_start_matches(' ');
        let item = content.starts_with("- ") || content == "-";
        if content.starts_with('#') {
            // a comment: at the level of what it stands in, nothing opened or closed
            let new = stack.iter().rev().find(|l| l.old <= old).map(|l| l.new + if l.old < old { 2 } else { 0 });
            out.push(format!("{}{content}", " ".repeat(new.unwrap_or(0))));
            continue;
        }
        while stack.last().is_some_and(|l| l.old > old || (l.old == old && l.compact_seq && !item)) {
            stack.pop();
        }
        let new = match stack.last() {
            Some(l) if l.old == old && item && opened == Some(old) && !l.compact_seq => {
                let n = l.new + 2;
                stack.push(Level { old, new: n, compact_seq: true });
                n
            }
            Some(l) if l.old == old => l.new,
            Some(l) => {
                let n = l.new + 2;
                stack.push(Level { old, new: n, compact_seq: false });
                n
            }
            None => {
                stack.push(Level { old, new: 0, compact_seq: false });
                0
            }
        };
        let code = content.split(" #").next().unwrap_or(content).trim_end();
        opened = code.ends_with(':').then_some(old);
        // a sequence item's content sits one level in: `- key: v` then `  key2: v2`
        if let Some(rest) = content.strip_prefix("- ") {
            let inner_old = old + 2 + (rest.len() - rest.trim_start_matches(' ').len());
            let rest = rest.trim_start_matches(' ');
            stack.push(Level { old: inner_old, new: new + 2, compact_seq: false });
            if rest.split(" #").next().unwrap_or(rest).trim_end().ends_with(':') {
                opened = Some(inner_old);
            }
            out.push(format!("{}- {rest}", " ".repeat(new)));
        } else {
            out.push(format!("{}{content}", " ".repeat(new)));
        }
        if opens_block_scalar(content) {
            scalar = Some((old, isize::try_from(new).unwrap_or(0) - isize::try_from(old).unwrap_or(0)));
        }
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(text: &str) -> String {
        format_yaml(&Source::new("t.yaml", text)).unwrap()
    }

    #[test]
    fn indents_two_spaces_per_level_and_keeps_comments() {
        let src = "policy: p   \n\n\n# roles\nroles:\n    admin:   # the boss\n        held_at: [msp]\n        grants:\n        - { resources: [x], actions: [y] }\n";
        let want = "policy: p\n\n# roles\nroles:\n  admin:   # the boss\n    held_at: [msp]\n    grants:\n      - { resources: [x], actions: [y] }\n";
        assert_eq!(fmt(src), want);
        assert_eq!(fmt(want), want);
    }

    #[test]
    fn sequence_items_and_block_scalars_move_with_their_parents() {
        let src = "cases:\n- name: a\n  principal: p\n  when: |\n      line one\n        indented more\n- name: b\ndescription: >\n    folded\n    text\n";
        let out = fmt(src);
        assert_eq!(
            out,
            "cases:\n  - name: a\n    principal: p\n    when: |\n        line one\n          indented more\n  - name: b\ndescription: >\n    folded\n    text\n"
        );
        assert_eq!(fmt(&out), out);
    }

    #[test]
    fn invalid_yaml_is_an_error_and_nothing_is_formatted() {
        assert!(format_yaml(&Source::new("t.yaml", "a: [1, 2\n")).is_err());
    }
}
