//! Decisions as data.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::diag::SourceLocation;

/// Why a decision came out the way it did. Stable snake_case codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// A grant of a covering assignment allows the action.
    Allowed,
    /// Assignments cover the resource's scope, but none of their roles grants the action.
    NoMatchingGrant,
    /// A deny rule matched (deny overrides allow).
    ExplicitDeny,
    /// The principal is suspended or deleted.
    PrincipalInactive,
    /// No assignment of the principal covers the resource's scope.
    OutOfScope,
    /// A grant for the action exists, but its condition was false or could not be evaluated.
    ConditionFalse,
    /// The action is not declared for the resource kind.
    UnknownAction,
    /// The resource kind is not declared.
    UnknownResourceKind,
    /// The principal id is not filed with the policy.
    UnknownPrincipal,
    /// The resource scope is malformed or not allowed for the kind.
    InvalidScope,
    /// An attribute is undeclared or of the wrong type.
    InvalidAttribute,
    /// The request is malformed in another way (e.g. an unknown status).
    InvalidRequest,
    /// An HTTP request target that path normalization refuses (`..`, an encoded `/`, `//`, ...).
    InvalidPath,
    /// No route of the policy's route table matches the HTTP method and path.
    NoRoute,
    /// The route needs a principal and the request carries none.
    Unauthenticated,
}

impl Reason {
    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::NoMatchingGrant => "no_matching_grant",
            Reason::ExplicitDeny => "explicit_deny",
            Reason::PrincipalInactive => "principal_inactive",
            Reason::OutOfScope => "out_of_scope",
            Reason::ConditionFalse => "condition_false",
            Reason::UnknownAction => "unknown_action",
            Reason::UnknownResourceKind => "unknown_resource_kind",
            Reason::UnknownPrincipal => "unknown_principal",
            Reason::InvalidScope => "invalid_scope",
            Reason::InvalidAttribute => "invalid_attribute",
            Reason::InvalidRequest => "invalid_request",
            Reason::InvalidPath => "invalid_path",
            Reason::NoRoute => "no_route",
            Reason::Unauthenticated => "unauthenticated",
        }
    }

    /// Every reason code.
    pub const ALL: [Reason; 15] = [
        Reason::Allowed,
        Reason::NoMatchingGrant,
        Reason::ExplicitDeny,
        Reason::PrincipalInactive,
        Reason::OutOfScope,
        Reason::ConditionFalse,
        Reason::UnknownAction,
        Reason::UnknownResourceKind,
        Reason::UnknownPrincipal,
        Reason::InvalidScope,
        Reason::InvalidAttribute,
        Reason::InvalidRequest,
        Reason::InvalidPath,
        Reason::NoRoute,
        Reason::Unauthenticated,
    ];

    /// Parse a snake_case code.
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A stable small number for compact encodings (the position in [`Reason::ALL`]).
    pub fn code(self) -> u8 {
        Reason::ALL.iter().position(|r| *r == self).and_then(|p| u8::try_from(p).ok()).unwrap_or(u8::MAX)
    }

    /// The reason with the given [`Reason::code`].
    pub fn from_code(code: u8) -> Option<Reason> {
        Reason::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one authorization question. Small and allocation-free on the common path;
/// for names, locations and an explanation use [`crate::Policy::check_report`] or [`crate::Policy::explain`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub(crate) allowed: bool,
    pub(crate) reason: Reason,
    pub(crate) rule: Option<u32>,
    pub(crate) assignment: Option<u16>,
    pub(crate) detail: Option<Box<str>>,
}

impl Decision {
    pub(crate) fn deny(reason: Reason) -> Self {
        Self { allowed: false, reason, rule: None, assignment: None, detail: None }
    }
    pub(crate) fn deny_with(reason: Reason, detail: String) -> Self {
        Self { allowed: false, reason, rule: None, assignment: None, detail: Some(detail.into()) }
    }
    /// Whether the action is allowed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }
    /// The reason code.
    pub fn reason(&self) -> Reason {
        self.reason
    }
    /// For request errors: what exactly was wrong.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
}

/// A rule that decided (or contributed to) a decision, with its source location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchedRule {
    /// `grant` or `deny`.
    pub effect: String,
    /// The role that declares the rule (absent for policy-wide denies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The assignment through which the role applied: `role@scope`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment: Option<String>,
    /// The rule's condition, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// The rule's description, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `file:line:col` of the rule.
    pub source: String,
}

/// A decision with names, locations and a human explanation: what the CLI prints and the
/// bindings return.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionReport {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// The reason code.
    pub reason: Reason,
    /// The rules that decided it (empty when no rule did).
    pub matched: Vec<MatchedRule>,
    /// A short human explanation.
    pub explanation: String,
    /// The revision of the policy that decided.
    pub revision: String,
}

/// One step of an [`Explanation`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainStep {
    /// What was looked at: `status`, `request`, `assignment`, `rank`, `deny`, `grant`, `result`.
    pub step: String,
    /// What was found.
    pub message: String,
    /// Where the rule or role is defined, when the step is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The rule's index in the compiled policy (stable for one revision; used for coverage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<u32>,
    /// The role concerned, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Outcome of this step: `covers`, `skipped`, `matched`, `condition_true`,
    /// `condition_false`, `condition_error`, `not_applicable`...
    pub outcome: String,
}

/// A decision with the full trace of how it was reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The decision.
    pub decision: DecisionReport,
    /// The steps, in evaluation order.
    pub steps: Vec<ExplainStep>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.decision;
        writeln!(f, "{} ({})", if d.allowed { "ALLOW" } else { "DENY" }, d.reason)?;
        writeln!(f, "  {}", d.explanation)?;
        for s in &self.steps {
            write!(f, "  - [{}] {}", s.step, s.message)?;
            if let Some(src) = &s.source {
                write!(f, "  ({src})")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Why a delegation question was answered as it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignReason {
    /// Every condition for delegation holds.
    Allowed,
    /// The assigning principal is suspended or deleted.
    PrincipalInactive,
    /// The principal id is not filed with the policy.
    UnknownPrincipal,
    /// The principal's attributes are malformed.
    InvalidRequest,
    /// The role does not exist.
    UnknownRole,
    /// The role is marked `assignable: false`.
    NotAssignable,
    /// The scope path is malformed.
    InvalidScope,
    /// The role may not be held at the scope's level.
    LevelNotAllowed,
    /// The policy declares no delegation rule.
    NoDelegationRule,
    /// The principal lacks the managing permission at the scope.
    NotPermitted,
    /// The role ranks above what the principal may hand out.
    RankExceedsOwn,
}

impl AssignReason {
    /// The snake_case code.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignReason::Allowed => "allowed",
            AssignReason::PrincipalInactive => "principal_inactive",
            AssignReason::UnknownPrincipal => "unknown_principal",
            AssignReason::InvalidRequest => "invalid_request",
            AssignReason::UnknownRole => "unknown_role",
            AssignReason::NotAssignable => "not_assignable",
            AssignReason::InvalidScope => "invalid_scope",
            AssignReason::LevelNotAllowed => "level_not_allowed",
            AssignReason::NoDelegationRule => "no_delegation_rule",
            AssignReason::NotPermitted => "not_permitted",
            AssignReason::RankExceedsOwn => "rank_exceeds_own",
        }
    }
}

impl fmt::Display for AssignReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer to "may P assign role R at scope S?".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignDecision {
    /// Whether the assignment may be made.
    pub allowed: bool,
    /// The reason code.
    pub reason: AssignReason,
    /// A short human explanation.
    pub explanation: String,
}

/// An invariant that an assignment set breaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvariantViolation {
    /// The invariant's name.
    pub invariant: String,
    /// The scope node where it is broken (absent when no node of the level appears at all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// How many active principals hold one of the roles there.
    pub found: u32,
    /// How many are required.
    pub required: u32,
    /// A human message.
    pub message: String,
}

pub(crate) fn source_string(l: &SourceLocation) -> String {
    l.to_string()
}
