//! Terminal styling: colour only on a terminal and without `NO_COLOR`; a fixed layout
//! otherwise, so that output piped to a file or a test is byte-for-byte stable.

use std::fmt;
use std::io::IsTerminal as _;

use miette::{GraphicalReportHandler, GraphicalTheme, MietteHandler, MietteHandlerOpts, ReportHandler};

/// Width used for diagnostics when not writing to a terminal (and `COLUMNS` is unset).
const DEFAULT_WIDTH: usize = 100;

/// How to style output for this run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    /// Colour on stdout.
    out_color: bool,
    /// Colour on stderr (diagnostics).
    err_color: bool,
    /// stderr is a terminal: let miette detect its width and capabilities.
    err_tty: bool,
    /// `COLUMNS`, if set.
    columns: Option<usize>,
}

/// ANSI colours used by the CLI's own output.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Paint {
    Red,
    Green,
    Yellow,
    Bold,
    Dim,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Red => "31;1",
            Paint::Green => "32;1",
            Paint::Yellow => "33;1",
            Paint::Bold => "1",
            Paint::Dim => "2",
        }
    }
}

impl Style {
    /// Look at the environment: terminals, `NO_COLOR`, `COLUMNS`.
    pub(crate) fn detect() -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let out_tty = std::io::stdout().is_terminal();
        let err_tty = std::io::stderr().is_terminal();
        let columns = std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok()).filter(|&c| c >= 40);
        Self { out_color: out_tty && !no_color, err_color: err_tty && !no_color, err_tty, columns }
    }

    /// Colour `text` for stdout, when colour is on.
    pub(crate) fn out(&self, paint: Paint, text: &str) -> String {
        if self.out_color { format!("\x1b[{}m{text}\x1b[0m", paint.code()) } else { text.to_owned() }
    }

    fn handler(&self) -> Handler {
        if self.err_tty && self.columns.is_none() {
            let opts = MietteHandlerOpts::new()
                .color(self.err_color)
                .terminal_links(false)
                .force_graphical(true)
                .with_cause_chain();
            return Handler::Detected(Box::new(opts.build()));
        }
        let theme = if self.err_color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        Handler::Fixed(Box::new(
            GraphicalReportHandler::new_themed(theme)
                .with_width(self.columns.unwrap_or(DEFAULT_WIDTH))
                .with_links(false)
                .with_cause_chain(),
        ))
    }

    /// Render one diagnostic for stderr.
    pub(crate) fn render(&self, diag: &dyn miette::Diagnostic) -> String {
        let handler = self.handler();
        let mut out = Show(&handler, diag).to_string();
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out
    }

    /// Render an error that ends the command.
    pub(crate) fn render_error(&self, err: &crate::error::CliError) -> String {
        self.render(err)
    }
}

enum Handler {
    Fixed(Box<GraphicalReportHandler>),
    Detected(Box<MietteHandler>),
}

struct Show<'a>(&'a Handler, &'a dyn miette::Diagnostic);

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Handler::Fixed(h) => h.render_report(f, self.1),
            Handler::Detected(h) => h.debug(self.1, f),
        }
    }
}
