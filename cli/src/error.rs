//! Exit codes and the errors that end a command early.

use std::path::PathBuf;

/// The process exit codes (documented in `--help` and `cli/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Exit {
    /// Success: the policies are valid, every case passed, the request was decided.
    Ok = 0,
    /// Something went wrong that is not the user's input (I/O, serialization).
    Internal = 1,
    /// Bad arguments or an unusable input file (clap's own errors exit 2 too).
    Usage = 2,
    /// A policy does not compile, or an assignment set breaks an invariant.
    InvalidPolicy = 3,
    /// Some test case failed, or a suite is malformed.
    TestFailures = 4,
    /// `--exit-code` only: the request was denied.
    Denied = 5,
}

/// An error that stops a command before it has a result to print.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub(crate) enum CliError {
    /// A path given on the command line does not exist.
    #[error("`{}` does not exist", .0.display())]
    NotFound(PathBuf),

    /// An input file or argument is unusable (wrong extension, malformed request...).
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },

    /// Reading an input failed.
    #[error("cannot read `{}`", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// Writing an output file failed.
    #[error("cannot write `{}`", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },

    /// Writing to standard output failed.
    #[error("cannot write to standard output")]
    Output(#[source] std::io::Error),

    /// Serializing a result failed (should not happen).
    #[error("cannot serialize the result")]
    Json(#[from] serde_json::Error),
}

impl CliError {
    /// A usage error with a message and no hint.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::Usage { message: message.into(), help: None }
    }

    /// A usage error with a hint.
    pub(crate) fn usage_with(message: impl Into<String>, help: impl Into<String>) -> Self {
        Self::Usage { message: message.into(), help: Some(help.into()) }
    }

    /// The exit code this error ends the process with.
    pub(crate) fn exit(&self) -> Exit {
        match self {
            Self::NotFound(_) | Self::Usage { .. } => Exit::Usage,
            Self::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound => Exit::Usage,
            Self::Read { .. } | Self::Write { .. } | Self::Output(_) | Self::Json(_) => Exit::Internal,
        }
    }
}
