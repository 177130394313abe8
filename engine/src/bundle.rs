//! Policy bundles: the validated sources of one policy in one JSON document, with a content
//! hash as revision. The wasm hosts and the gateway load bundles; `rolescope build` writes them.

use serde::{Deserialize, Serialize};

use crate::compile::Source;
use crate::diag::{CompileError, Diagnostic, SourceLocation, codes};
use crate::policy::Policy;

/// The bundle format identifier.
pub const BUNDLE_FORMAT: &str = "rolescope-bundle/1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleFile {
    name: String,
    text: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BundleDoc {
    format: String,
    policy: String,
    revision: String,
    files: Vec<BundleFile>,
}

impl Policy {
    /// Serialize the sources of a compiled policy as a bundle (JSON). `sources` must be the
    /// sources this policy was compiled from; the revision is recomputed from them.
    pub fn bundle(sources: &[Source]) -> Result<(Policy, String), CompileError> {
        let policy = Policy::compile(sources)?;
        let doc = BundleDoc {
            format: BUNDLE_FORMAT.into(),
            policy: policy.name().into(),
            revision: policy.revision().into(),
            files: sources.iter().map(|s| BundleFile { name: s.name().into(), text: s.text().into() }).collect(),
        };
        let json = serde_json::to_string(&doc).map_err(|e| {
            CompileError::new(vec![Diagnostic::error(
                codes::SYNTAX,
                SourceLocation::new("<bundle>", 0, 0),
                format!("cannot serialize bundle: {e}"),
            )])
        })?;
        Ok((policy, json))
    }

    /// Load a bundle written by [`Policy::bundle`]: parse, check its format and revision,
    /// and compile it. A tampered bundle (revision mismatch) is refused.
    pub fn from_bundle(json: &str) -> Result<Policy, CompileError> {
        let fail = |msg: String| {
            CompileError::new(vec![Diagnostic::error(codes::SYNTAX, SourceLocation::new("<bundle>", 0, 0), msg)])
        };
        let doc: BundleDoc = serde_json::from_str(json).map_err(|e| fail(format!("invalid bundle: {e}")))?;
        if doc.format != BUNDLE_FORMAT {
            return Err(fail(format!("unsupported bundle format `{}` (expected `{BUNDLE_FORMAT}`)", doc.format)));
        }
        let sources: Vec<Source> = doc.files.into_iter().map(|f| Source::new(f.name, f.text)).collect();
        let policy = Policy::compile(&sources)?;
        if policy.revision() != doc.revision {
            return Err(fail(format!(
                "bundle revision `{}` does not match its content (`{}`)",
                doc.revision,
                policy.revision()
            )));
        }
        Ok(policy)
    }
}
