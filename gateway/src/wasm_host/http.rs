//! HTTP authorization through the guest (`rs_authorize`): the compact HTTP request in, the
//! HTTP decision out (`bindings/ABI.md`), and [`HttpVerdict`], what the host returns.

use std::sync::Arc;

use rolescope_engine::{HttpRequest, MatchedRule, Reason};

use super::Revision;
use super::error::{Error, ErrorKind};

/// Most headers one request may pass to the guest (the ABI's limit).
pub(super) const MAX_HEADERS: usize = 256;

/// An absent optional string in the guest's answer.
const ABSENT: u32 = u32::MAX;

/// The engine's decision on one HTTP request, as the guest made it: the fields of the
/// engine's `HttpDecision` plus the revision of the bundle it was decided on.
///
/// `allowed()` is the only field that lets a request through; everything else is for logs,
/// error bodies and upstream headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpVerdict {
    allowed: bool,
    reason: Reason,
    public: bool,
    route: Option<String>,
    action: Option<String>,
    kind: Option<String>,
    scope: Option<String>,
    tenant: Option<String>,
    resource_id: Option<String>,
    detail: Option<String>,
    rule: Option<Arc<MatchedRule>>,
    assignment: Option<String>,
    nearest: Vec<String>,
    revision: Revision,
}

/// Most assignments a default deny names (the ABI's bound).
const NEAREST: usize = 3;

/// A default deny: no grant applied (the reasons that name the nearest assignments).
pub(crate) fn default_deny(reason: Reason) -> bool {
    matches!(reason, Reason::NoMatchingGrant | Reason::OutOfScope | Reason::ConditionFalse)
}

impl HttpVerdict {
    /// Whether the request may pass.
    pub fn allowed(&self) -> bool {
        self.allowed
    }
    /// The reason code (`allowed` for an allowed request, public routes included).
    pub fn reason(&self) -> Reason {
        self.reason
    }
    /// Whether a public route matched (no principal needed).
    pub fn public(&self) -> bool {
        self.public
    }
    /// The matched route template, e.g. `GET /api/v1/orgs/{org}/devices/{device}`.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }
    /// The action asked (protected routes).
    pub fn action(&self) -> Option<&str> {
        self.action.as_deref()
    }
    /// The resource kind (protected routes).
    pub fn kind(&self) -> Option<&str> {
        self.kind.as_deref()
    }
    /// The resource's scope path (protected routes).
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }
    /// The tenant segment of the scope, e.g. `org:o1`, when the scope reaches the tenant level.
    pub fn tenant(&self) -> Option<&str> {
        self.tenant.as_deref()
    }
    /// The resource id (may be empty, e.g. for a collection).
    pub fn resource_id(&self) -> Option<&str> {
        self.resource_id.as_deref()
    }
    /// For refused or malformed requests (and principals denied everything): what was wrong.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
    /// The rule that decided, from the bundle's rule table: for an allow the grant, for an
    /// `explicit_deny` the deny (effect, role, condition, `file:line:col`; its `assignment`
    /// is [`HttpVerdict::assignment`]).
    pub fn rule(&self) -> Option<&MatchedRule> {
        self.rule.as_deref()
    }
    /// The assignment the deciding rule came through, `role@scope` (absent for a policy-wide
    /// deny).
    pub fn assignment(&self) -> Option<&str> {
        self.assignment.as_deref()
    }
    /// For a default deny (`no_matching_grant`, `out_of_scope`, `condition_false`): the
    /// principal's assignments nearest to the question's scope, the nearest first (at most 3).
    pub fn nearest(&self) -> &[String] {
        &self.nearest
    }
    /// The revision of the bundle the request was decided on.
    pub fn revision(&self) -> &Revision {
        &self.revision
    }

    /// The verdict for a principal the engine denies everything ([`super::Handle::denies_all`]),
    /// as the engine gives it. An inactive principal (`principal_inactive`) is asked about as
    /// an anonymous caller: routing refusals and public routes as for anyone, and where the
    /// guest said `unauthenticated` (a protected route), `principal_inactive`. A principal the
    /// engine refuses to prepare is refused whatever the request, with its reason and message.
    pub(super) fn for_denied_principal(self, reason: Reason, message: &str) -> Self {
        if reason != Reason::PrincipalInactive {
            return Self::refused(reason, message, self.revision);
        }
        if self.allowed || self.reason != Reason::Unauthenticated {
            return self;
        }
        Self { reason, detail: None, ..self }
    }

    /// A request refused before routing.
    pub(super) fn refused(reason: Reason, message: &str, revision: Revision) -> Self {
        Self {
            allowed: false,
            reason,
            public: false,
            route: None,
            action: None,
            kind: None,
            scope: None,
            tenant: None,
            resource_id: None,
            detail: Some(message.to_owned()),
            rule: None,
            assignment: None,
            nearest: Vec::new(),
            revision,
        }
    }
}

fn invalid(detail: String) -> Error {
    Error::new(ErrorKind::InvalidInput, detail)
}

/// Write the compact HTTP request (`bindings/ABI.md`) into `buf`.
pub(super) fn encode(buf: &mut Vec<u8>, req: &HttpRequest<'_>) -> Result<(), Error> {
    fn text16(buf: &mut Vec<u8>, what: &str, s: &str) -> Result<(), Error> {
        let n = u16::try_from(s.len()).map_err(|_| invalid(format!("{what} of {} bytes (at most 65535)", s.len())))?;
        buf.extend_from_slice(&n.to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
    fn text32(buf: &mut Vec<u8>, what: &str, s: &str) -> Result<(), Error> {
        let n = u32::try_from(s.len()).map_err(|_| invalid(format!("{what} larger than 4 GiB")))?;
        buf.extend_from_slice(&n.to_le_bytes());
        buf.extend_from_slice(s.as_bytes());
        Ok(())
    }
    buf.clear();
    text16(buf, "method", req.method)?;
    text32(buf, "target", req.target)?;
    let n = u16::try_from(req.headers.len())
        .ok()
        .filter(|n| usize::from(*n) <= MAX_HEADERS)
        .ok_or_else(|| invalid(format!("{} headers (at most {MAX_HEADERS})", req.headers.len())))?;
    buf.extend_from_slice(&n.to_le_bytes());
    for (name, value) in req.headers {
        text16(buf, "header name", name)?;
        text32(buf, "header value", value)?;
    }
    Ok(())
}

/// A little-endian reader of the guest's answer.
struct Answer<'a>(&'a [u8]);

impl Answer<'_> {
    fn u32(&mut self) -> Option<u32> {
        let (n, tail) = self.0.split_first_chunk::<4>()?;
        self.0 = tail;
        Some(u32::from_le_bytes(*n))
    }
    /// An optional string (`u32` length + UTF-8 bytes, or [`ABSENT`]).
    fn field(&mut self) -> Option<Option<String>> {
        let n = self.u32()?;
        if n == ABSENT {
            return Some(None);
        }
        let n = usize::try_from(n).ok()?;
        let (s, tail) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = tail;
        Some(Some(std::str::from_utf8(s).ok()?.to_owned()))
    }
}

/// Read the guest's HTTP decision; it must agree with the return code (`allowed`, `reason`),
/// and a rule id must name one of `rules` (the bundle's rule table). `None` when it is out of
/// contract.
pub(super) fn decode(
    out: &[u8],
    allowed: bool,
    reason: Reason,
    revision: Revision,
    rules: &[Arc<MatchedRule>],
) -> Option<HttpVerdict> {
    let (&[a, r, p], rest) = out.split_first_chunk::<3>()?;
    if a != u8::from(allowed) || r != reason.code() || p > 1 {
        return None;
    }
    let mut rest = Answer(rest);
    let (route, action, kind, scope, tenant, resource_id, detail) =
        (rest.field()?, rest.field()?, rest.field()?, rest.field()?, rest.field()?, rest.field()?, rest.field()?);
    let rule = match rest.u32()? {
        ABSENT => None,
        id => Some(Arc::clone(rules.get(usize::try_from(id).ok()?)?)),
    };
    let assignment = rest.field()?;
    let (&[n], tail) = rest.0.split_first_chunk::<1>()?;
    rest.0 = tail;
    let nearest = (0..n).map(|_| rest.field().flatten()).collect::<Option<Vec<String>>>()?;
    let v = HttpVerdict {
        allowed,
        reason,
        public: p == 1,
        route,
        action,
        kind,
        scope,
        tenant,
        resource_id,
        detail,
        rule,
        assignment,
        nearest,
        revision,
    };
    // A public route allows, and names nothing but its route.
    let public_ok =
        !v.public || (v.allowed && v.route.is_some() && v.action.is_none() && v.kind.is_none() && v.rule.is_none());
    // A rule decides an allow or an explicit deny; an assignment is the deciding rule's; the
    // nearest assignments are a default deny's.
    let rule_ok = v.rule.is_none() || v.allowed || v.reason == Reason::ExplicitDeny;
    let assignment_ok = v.assignment.is_none() || v.rule.is_some();
    let nearest_ok = v.nearest.is_empty() || (v.nearest.len() <= NEAREST && default_deny(v.reason));
    (rest.0.is_empty() && public_ok && rule_ok && assignment_ok && nearest_ok).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn put(out: &mut Vec<u8>, f: Option<&str>) {
        match f {
            Some(s) => {
                out.extend_from_slice(&u32::try_from(s.len()).expect("short").to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            None => out.extend_from_slice(&ABSENT.to_le_bytes()),
        }
    }

    /// An answer with the 7 strings, then the rule id, its assignment and the nearest ones.
    fn answer_with(
        allowed: bool,
        reason: Reason,
        public: bool,
        fields: [Option<&str>; 7],
        rule: Option<u32>,
        assignment: Option<&str>,
        nearest: &[&str],
    ) -> Vec<u8> {
        let mut out = vec![u8::from(allowed), reason.code(), u8::from(public)];
        for f in fields {
            put(&mut out, f);
        }
        out.extend_from_slice(&rule.unwrap_or(ABSENT).to_le_bytes());
        put(&mut out, assignment);
        out.push(u8::try_from(nearest.len()).expect("few"));
        for n in nearest {
            put(&mut out, Some(n));
        }
        out
    }

    fn answer(allowed: bool, reason: Reason, public: bool, fields: [Option<&str>; 7]) -> Vec<u8> {
        answer_with(allowed, reason, public, fields, None, None, &[])
    }

    fn rules() -> Vec<Arc<MatchedRule>> {
        let rule = |effect: &str, role: Option<&str>| {
            Arc::new(MatchedRule {
                effect: effect.into(),
                role: role.map(Into::into),
                assignment: None,
                condition: None,
                description: None,
                source: "roles/a.yaml:3:5".into(),
            })
        };
        vec![rule("grant", Some("admin")), rule("deny", None)]
    }

    fn rev() -> Revision {
        Revision(Arc::from("sha256:x"))
    }

    #[test]
    fn a_well_formed_answer_decodes() {
        let f =
            [Some("GET /a/{b}"), Some("view"), Some("device"), Some("msp:m/org:o1"), Some("org:o1"), Some(""), None];
        let out = answer(true, Reason::Allowed, false, f);
        let v = decode(&out, true, Reason::Allowed, rev(), &rules()).expect("in contract");
        assert!(v.allowed() && !v.public());
        assert_eq!(
            (v.route(), v.action(), v.kind(), v.scope(), v.tenant(), v.resource_id(), v.detail()),
            (Some("GET /a/{b}"), Some("view"), Some("device"), Some("msp:m/org:o1"), Some("org:o1"), Some(""), None)
        );
        assert_eq!(v.revision(), &rev());
    }

    #[test]
    fn answers_out_of_contract_are_refused() {
        let f = [Some("GET /a"), Some("view"), Some("device"), Some("msp:m"), None, Some("x"), None];
        let good = answer(false, Reason::OutOfScope, false, f);
        assert!(decode(&good, false, Reason::OutOfScope, rev(), &rules()).is_some());
        // every truncation, a trailing byte, a contradicting code, a bad flag
        for cut in 0..good.len() {
            assert!(
                decode(good.get(..cut).expect("prefix"), false, Reason::OutOfScope, rev(), &rules()).is_none(),
                "{cut}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert!(decode(&long, false, Reason::OutOfScope, rev(), &rules()).is_none());
        assert!(decode(&good, true, Reason::Allowed, rev(), &rules()).is_none());
        assert!(decode(&good, false, Reason::NoMatchingGrant, rev(), &rules()).is_none());
        let mut flag = good.clone();
        if let Some(b) = flag.get_mut(2) {
            *b = 2;
        }
        assert!(decode(&flag, false, Reason::OutOfScope, rev(), &rules()).is_none());
        // a "public" answer that denies, or names a question
        let public_deny = answer(false, Reason::OutOfScope, true, [Some("GET /h"), None, None, None, None, None, None]);
        assert!(decode(&public_deny, false, Reason::OutOfScope, rev(), &rules()).is_none());
        let public_question = answer(true, Reason::Allowed, true, f);
        assert!(decode(&public_question, true, Reason::Allowed, rev(), &rules()).is_none());
        // invalid UTF-8
        let mut bad = answer(true, Reason::Allowed, true, [Some("GET /h"), None, None, None, None, None, None]);
        assert!(decode(&bad, true, Reason::Allowed, rev(), &rules()).is_some());
        if let Some(b) = bad.get_mut(7) {
            *b = 0xff;
        }
        assert!(decode(&bad, true, Reason::Allowed, rev(), &rules()).is_none());
    }

    #[test]
    fn rules_and_nearest_assignments_decode_within_their_contract() {
        let f = [Some("GET /a"), Some("view"), Some("device"), Some("msp:m/org:o1"), None, Some(""), None];
        let allow = answer_with(true, Reason::Allowed, false, f, Some(0), Some("admin@msp:m"), &[]);
        let v = decode(&allow, true, Reason::Allowed, rev(), &rules()).expect("in contract");
        let rule = v.rule().expect("a rule");
        assert_eq!(
            (rule.effect.as_str(), rule.role.as_deref(), rule.source.as_str()),
            ("grant", Some("admin"), "roles/a.yaml:3:5")
        );
        assert_eq!((v.assignment(), v.nearest()), (Some("admin@msp:m"), &[][..]));
        // a policy-wide deny: no assignment
        let deny = answer_with(false, Reason::ExplicitDeny, false, f, Some(1), None, &[]);
        let v = decode(&deny, false, Reason::ExplicitDeny, rev(), &rules()).expect("in contract");
        assert_eq!((v.rule().map(|r| r.effect.as_str()), v.assignment()), (Some("deny"), None));
        // a default deny names the nearest assignments
        let near = ["a@msp:m/org:o2", "b@msp:m"];
        let out = answer_with(false, Reason::OutOfScope, false, f, None, None, &near);
        let v = decode(&out, false, Reason::OutOfScope, rev(), &rules()).expect("in contract");
        assert_eq!(v.nearest(), &near[..]);
        for cut in 0..out.len() {
            let prefix = out.get(..cut).expect("prefix");
            assert!(decode(prefix, false, Reason::OutOfScope, rev(), &rules()).is_none(), "{cut}");
        }
        // out of contract: a rule id the table lacks, a rule on a default deny, an assignment
        // without a rule, nearest assignments on an allow, more than three, an absent one
        for (allowed, reason, rule, assignment, nearest) in [
            (true, Reason::Allowed, Some(2), None, &[][..]),
            (false, Reason::NoMatchingGrant, Some(0), None, &[][..]),
            (true, Reason::Allowed, None, Some("admin@msp:m"), &[][..]),
            (true, Reason::Allowed, Some(0), None, &["a@msp:m"][..]),
            (false, Reason::OutOfScope, None, None, &["a@m", "b@m", "c@m", "d@m"][..]),
        ] {
            let out = answer_with(allowed, reason, false, f, rule, assignment, nearest);
            assert!(
                decode(&out, allowed, reason, rev(), &rules()).is_none(),
                "{reason} {rule:?} {assignment:?} {nearest:?}"
            );
        }
        let mut absent = answer(false, Reason::OutOfScope, false, f);
        if let Some(n) = absent.last_mut() {
            *n = 1;
        }
        absent.extend_from_slice(&ABSENT.to_le_bytes());
        assert!(decode(&absent, false, Reason::OutOfScope, rev(), &rules()).is_none());
    }

    #[test]
    fn requests_the_abi_cannot_carry_are_refused() {
        let mut buf = Vec::new();
        let many: Vec<(&str, &str)> = (0..=MAX_HEADERS).map(|_| ("x-a", "b")).collect();
        let req = HttpRequest { method: "GET", target: "/", headers: &many };
        assert!(encode(&mut buf, &req).expect_err("too many").is_invalid_input());
        let long = "x".repeat(70_000);
        let req = HttpRequest { method: &long, target: "/", headers: &[] };
        assert!(encode(&mut buf, &req).expect_err("long method").is_invalid_input());
        let req = HttpRequest { method: "GET", target: &long, headers: &[("a", &long)] };
        encode(&mut buf, &req).expect("a long target and header value fit");
    }
}
