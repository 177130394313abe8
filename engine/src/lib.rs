#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic))]

mod bundle;
#[cfg(feature = "compiler")]
mod compile;
mod decision;
mod diag;
mod eval;
mod expr;
#[cfg(feature = "compiler")]
mod fixture;
#[cfg(feature = "compiler")]
mod fmt;
mod ids;
#[cfg(feature = "compiler")]
mod lint;
#[cfg(feature = "compiler")]
mod model;
mod policy;
mod request;
mod route;
#[cfg(feature = "schema")]
pub mod schema;
#[cfg(feature = "compiler")]
mod suite;
mod value;
mod wire;

pub use bundle::BUNDLE_FORMAT;
#[cfg(feature = "compiler")]
pub use compile::Source;
#[cfg(feature = "compiler")]
pub use compile::did_you_mean;
pub use decision::{
    AssignDecision, AssignReason, Decision, DecisionReport, ExplainStep, Explanation, InvariantViolation, MatchedRule,
    Reason,
};
pub use diag::{CompileError, Diagnostic, Severity, SourceLocation};
pub use eval::{AllowedActions, RequestError};
#[cfg(feature = "compiler")]
pub use fmt::format_yaml;
pub use ids::ResourceCache;
pub use policy::{Combine, Policy, PreparedContext, PreparedPrincipal, PreparedResource, RoleSummary, Status};
pub use request::{AssignRequest, Assignment, Principal, PrincipalRef, Request, Resource, Tenants};
pub use route::{HttpDecision, HttpRequest, RoutedRequest};
#[cfg(feature = "compiler")]
pub use suite::{CaseResult, Coverage, CoverageTracker, HttpCase, SuiteFixtures, SuiteReport, Uncovered};

#[cfg(feature = "compiler")]
impl Policy {
    /// Parse, validate and compile role files (YAML, or JSON for names ending in `.json`)
    /// into one policy. All errors in all files are reported at once.
    pub fn compile(sources: &[Source]) -> Result<Policy, CompileError> {
        compile::compile(sources)
    }
}
