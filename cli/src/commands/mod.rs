//! One module per subcommand.

pub(crate) mod ask;
pub(crate) mod build;
pub(crate) mod check;
pub(crate) mod eval;
pub(crate) mod fmt;
pub(crate) mod junit;
pub(crate) mod keygen;
pub(crate) mod replay;
pub(crate) mod schema;
pub(crate) mod tap;
pub(crate) mod test;

/// `1 thing` / `2 things`.
pub(crate) fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("{n} {word}") } else { format!("{n} {word}s") }
}
