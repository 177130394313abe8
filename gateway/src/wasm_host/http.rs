//! HTTP authorization through the guest (`rs_authorize`): the compact HTTP request in, the
//! HTTP decision out (`bindings/ABI.md`), and [`HttpVerdict`], what the host returns.

use rolescope_engine::{HttpRequest, Reason};

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
    revision: Revision,
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

/// Read the guest's HTTP decision; it must agree with the return code (`allowed`, `reason`).
/// `None` when it is out of contract.
pub(super) fn decode(out: &[u8], allowed: bool, reason: Reason, revision: Revision) -> Option<HttpVerdict> {
    let (&[a, r, p], mut rest) = out.split_first_chunk::<3>()?;
    if a != u8::from(allowed) || r != reason.code() || p > 1 {
        return None;
    }
    let mut field = || -> Option<Option<String>> {
        let (n, tail) = rest.split_first_chunk::<4>()?;
        let n = u32::from_le_bytes(*n);
        if n == ABSENT {
            rest = tail;
            return Some(None);
        }
        let n = usize::try_from(n).ok()?;
        let (s, tail) = (tail.get(..n)?, tail.get(n..)?);
        rest = tail;
        Some(Some(std::str::from_utf8(s).ok()?.to_owned()))
    };
    let v = HttpVerdict {
        allowed,
        reason,
        public: p == 1,
        route: field()?,
        action: field()?,
        kind: field()?,
        scope: field()?,
        tenant: field()?,
        resource_id: field()?,
        detail: field()?,
        revision,
    };
    // A public route allows, and names nothing but its route.
    let public_ok = !v.public || (v.allowed && v.route.is_some() && v.action.is_none() && v.kind.is_none());
    (rest.is_empty() && public_ok).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn answer(allowed: bool, reason: Reason, public: bool, fields: [Option<&str>; 7]) -> Vec<u8> {
        let mut out = vec![u8::from(allowed), reason.code(), u8::from(public)];
        for f in fields {
            match f {
                Some(s) => {
                    out.extend_from_slice(&u32::try_from(s.len()).expect("short").to_le_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                None => out.extend_from_slice(&ABSENT.to_le_bytes()),
            }
        }
        out
    }

    fn rev() -> Revision {
        Revision(Arc::from("sha256:x"))
    }

    #[test]
    fn a_well_formed_answer_decodes() {
        let f =
            [Some("GET /a/{b}"), Some("view"), Some("device"), Some("msp:m/org:o1"), Some("org:o1"), Some(""), None];
        let out = answer(true, Reason::Allowed, false, f);
        let v = decode(&out, true, Reason::Allowed, rev()).expect("in contract");
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
        assert!(decode(&good, false, Reason::OutOfScope, rev()).is_some());
        // every truncation, a trailing byte, a contradicting code, a bad flag
        for cut in 0..good.len() {
            assert!(decode(good.get(..cut).expect("prefix"), false, Reason::OutOfScope, rev()).is_none(), "{cut}");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(decode(&long, false, Reason::OutOfScope, rev()).is_none());
        assert!(decode(&good, true, Reason::Allowed, rev()).is_none());
        assert!(decode(&good, false, Reason::NoMatchingGrant, rev()).is_none());
        let mut flag = good.clone();
        if let Some(b) = flag.get_mut(2) {
            *b = 2;
        }
        assert!(decode(&flag, false, Reason::OutOfScope, rev()).is_none());
        // a "public" answer that denies, or names a question
        let public_deny = answer(false, Reason::OutOfScope, true, [Some("GET /h"), None, None, None, None, None, None]);
        assert!(decode(&public_deny, false, Reason::OutOfScope, rev()).is_none());
        let public_question = answer(true, Reason::Allowed, true, f);
        assert!(decode(&public_question, true, Reason::Allowed, rev()).is_none());
        // invalid UTF-8
        let mut bad = answer(true, Reason::Allowed, true, [Some("GET /h"), None, None, None, None, None, None]);
        assert!(decode(&bad, true, Reason::Allowed, rev()).is_some());
        if let Some(b) = bad.get_mut(7) {
            *b = 0xff;
        }
        assert!(decode(&bad, true, Reason::Allowed, rev()).is_none());
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
