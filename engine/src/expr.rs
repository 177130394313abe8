//! The condition language: a small, total, typed expression language over
//! `principal`, `resource` and `context`.
//!
//! ```text
//! expr    := or
//! or      := and (("or" | "||") and)*
//! and     := unary (("and" | "&&") unary)*
//! unary   := ("not" | "!") unary | "has" path | "has" "(" path ")" | cmp
//! cmp     := primary (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in") primary)?
//! primary := string | number | "true" | "false" | path | "(" expr ")"
//!          | "[" (expr ("," expr)*)? "]" | "time" "(" string ")"
//! path    := ("principal" | "resource" | "context") "." name
//! ```
//!
//! Conditions are parsed and type-checked when the policy is compiled. Evaluation never
//! panics: reading an attribute the request does not carry is an evaluation error, which the
//! evaluator treats as "the grant does not apply" and "the deny applies" (fail closed).

use std::fmt;

use crate::value::Value;

#[cfg(feature = "compiler")]
mod parse;
#[cfg(feature = "compiler")]
pub(crate) use parse::{Resolver, compile};

/// What an attribute path refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub(crate) enum Var {
    PrincipalId,
    PrincipalAttr(u16),
    ResourceId,
    ResourceKind,
    ResourceScope,
    ResourceAttr(u16),
    ContextAttr(u16),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        })
    }
}

/// A compiled, type-checked condition.
///
/// Serialized (in bundles) as a flat postfix list of [`Op`]s, so that a long `and` chain
/// (a deep left-nested tree) needs no deep nesting in the JSON.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    Lit(Value),
    Var(Var),
    Has(Var),
    List(Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    In(Box<Expr>, Box<Expr>),
}

/// One step of an [`Expr`] in postfix order: operands first, then the operator.
#[derive(serde::Serialize, serde::Deserialize)]
enum Op<'a> {
    Lit(std::borrow::Cow<'a, Value>),
    Var(Var),
    Has(Var),
    /// The last `n` values, as a list.
    List(u32),
    Not,
    And,
    Or,
    Cmp(CmpOp),
    In,
}

impl Expr {
    fn postfix<'a>(&'a self, out: &mut Vec<Op<'a>>) {
        match self {
            Expr::Lit(v) => out.push(Op::Lit(std::borrow::Cow::Borrowed(v))),
            Expr::Var(v) => out.push(Op::Var(*v)),
            Expr::Has(v) => out.push(Op::Has(*v)),
            Expr::List(items) => {
                items.iter().for_each(|i| i.postfix(out));
                out.push(Op::List(u32::try_from(items.len()).unwrap_or(u32::MAX)));
            }
            Expr::Not(a) => {
                a.postfix(out);
                out.push(Op::Not);
            }
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) | Expr::In(a, b) => {
                a.postfix(out);
                b.postfix(out);
                out.push(match self {
                    Expr::And(..) => Op::And,
                    Expr::Or(..) => Op::Or,
                    Expr::Cmp(op, ..) => Op::Cmp(*op),
                    _ => Op::In,
                });
            }
        }
    }

    /// Rebuild from postfix; `None` unless the list makes exactly one expression.
    fn from_postfix(ops: Vec<Op<'_>>) -> Option<Expr> {
        let mut stack: Vec<Expr> = Vec::new();
        for op in ops {
            let e = match op {
                Op::Lit(v) => Expr::Lit(v.into_owned()),
                Op::Var(v) => Expr::Var(v),
                Op::Has(v) => Expr::Has(v),
                Op::List(n) => {
                    let at = stack.len().checked_sub(usize::try_from(n).ok()?)?;
                    Expr::List(stack.split_off(at))
                }
                Op::Not => Expr::Not(Box::new(stack.pop()?)),
                binary => {
                    let b = Box::new(stack.pop()?);
                    let a = Box::new(stack.pop()?);
                    match binary {
                        Op::And => Expr::And(a, b),
                        Op::Or => Expr::Or(a, b),
                        Op::Cmp(op) => Expr::Cmp(op, a, b),
                        _ => Expr::In(a, b),
                    }
                }
            };
            stack.push(e);
        }
        let e = stack.pop()?;
        stack.is_empty().then_some(e)
    }

    /// Read from a bundle's compiled form (`wire.rs`): the postfix list of [`Op`]s.
    pub(crate) fn read(r: &mut crate::wire::Reader<'_>) -> Option<Expr> {
        let var = |r: &mut crate::wire::Reader<'_>| {
            Some(match r.tag(7)? {
                0 => Var::PrincipalId,
                1 => Var::PrincipalAttr(r.u16()?),
                2 => Var::ResourceId,
                3 => Var::ResourceKind,
                4 => Var::ResourceScope,
                5 => Var::ResourceAttr(r.u16()?),
                _ => Var::ContextAttr(r.u16()?),
            })
        };
        let ops = r.seq(|r| {
            Some(match r.tag(9)? {
                0 => Op::Lit(std::borrow::Cow::Owned(Value::read(r)?)),
                1 => Op::Var(var(r)?),
                2 => Op::Has(var(r)?),
                3 => Op::List(r.u32()?),
                4 => Op::Not,
                5 => Op::And,
                6 => Op::Or,
                7 => Op::Cmp(match r.tag(6)? {
                    0 => CmpOp::Eq,
                    1 => CmpOp::Ne,
                    2 => CmpOp::Lt,
                    3 => CmpOp::Le,
                    4 => CmpOp::Gt,
                    _ => CmpOp::Ge,
                }),
                _ => Op::In,
            })
        })?;
        Expr::from_postfix(ops)
    }

    /// Every sub-expression, depth first (iteratively: trees may be deep).
    pub(crate) fn walk(&self, mut f: impl FnMut(&Expr) -> bool) -> bool {
        let mut todo = vec![self];
        while let Some(e) = todo.pop() {
            if !f(e) {
                return false;
            }
            match e {
                Expr::Lit(_) | Expr::Var(_) | Expr::Has(_) => {}
                Expr::List(items) => todo.extend(items),
                Expr::Not(a) => todo.push(a),
                Expr::And(a, b) | Expr::Or(a, b) | Expr::Cmp(_, a, b) | Expr::In(a, b) => {
                    todo.push(a);
                    todo.push(b);
                }
            }
        }
        true
    }
}

impl serde::Serialize for Expr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut ops = Vec::new();
        self.postfix(&mut ops);
        serde::Serialize::serialize(&ops, s)
    }
}

impl<'de> serde::Deserialize<'de> for Expr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let ops: Vec<Op<'_>> = serde::Deserialize::deserialize(d)?;
        Expr::from_postfix(ops).ok_or_else(|| serde::de::Error::custom("malformed condition"))
    }
}

// ---------------------------------------------------------------- evaluation

/// What a condition reads from. Attribute slices are indexed by attribute id.
pub(crate) struct Env<'a> {
    pub(crate) principal_id: &'a str,
    pub(crate) principal_attrs: &'a [Option<Value>],
    pub(crate) resource_id: &'a str,
    pub(crate) resource_kind: &'a str,
    pub(crate) resource_scope: &'a str,
    pub(crate) resource_attrs: &'a [Option<Value>],
    pub(crate) context_attrs: &'a [Option<Value>],
}

/// Reading an attribute that is absent (or a value of an unexpected type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EvalError;

#[derive(Clone, Copy)]
enum Operand<'a> {
    Bool(bool),
    Str(&'a str),
    Num(f64),
    Time(i128),
    Set(&'a [Box<str>]),
    List(&'a [Expr]),
}

impl Env<'_> {
    fn slot(&self, v: Var) -> Option<&Value> {
        let (slice, i) = match v {
            Var::PrincipalAttr(i) => (self.principal_attrs, i),
            Var::ResourceAttr(i) => (self.resource_attrs, i),
            Var::ContextAttr(i) => (self.context_attrs, i),
            _ => return None,
        };
        slice.get(usize::from(i)).and_then(Option::as_ref)
    }

    fn var(&self, v: Var) -> Result<Operand<'_>, EvalError> {
        Ok(match v {
            Var::PrincipalId => Operand::Str(self.principal_id),
            Var::ResourceId => Operand::Str(self.resource_id),
            Var::ResourceKind => Operand::Str(self.resource_kind),
            Var::ResourceScope => Operand::Str(self.resource_scope),
            _ => match self.slot(v).ok_or(EvalError)? {
                Value::Bool(b) => Operand::Bool(*b),
                Value::Str(s) => Operand::Str(s),
                Value::Num(n) => Operand::Num(*n),
                Value::Time(t) => Operand::Time(*t),
                Value::Set(s) => Operand::Set(s),
            },
        })
    }

    fn operand<'e>(&'e self, e: &'e Expr) -> Result<Operand<'e>, EvalError> {
        Ok(match e {
            Expr::Lit(Value::Bool(b)) => Operand::Bool(*b),
            Expr::Lit(Value::Str(s)) => Operand::Str(s),
            Expr::Lit(Value::Num(n)) => Operand::Num(*n),
            Expr::Lit(Value::Time(t)) => Operand::Time(*t),
            Expr::Lit(Value::Set(s)) => Operand::Set(s),
            Expr::Var(v) => self.var(*v)?,
            Expr::List(items) => Operand::List(items),
            other => Operand::Bool(self.eval(other)?),
        })
    }

    /// Evaluate a boolean condition.
    pub(crate) fn eval(&self, e: &Expr) -> Result<bool, EvalError> {
        match e {
            Expr::Lit(Value::Bool(b)) => Ok(*b),
            Expr::Var(v) => match self.var(*v)? {
                Operand::Bool(b) => Ok(b),
                _ => Err(EvalError),
            },
            Expr::Has(v) => Ok(self.slot(*v).is_some()),
            Expr::Not(inner) => Ok(!self.eval(inner)?),
            Expr::And(a, b) => Ok(self.eval(a)? && self.eval(b)?),
            Expr::Or(a, b) => Ok(self.eval(a)? || self.eval(b)?),
            Expr::Cmp(op, a, b) => {
                let (x, y) = (self.operand(a)?, self.operand(b)?);
                compare(*op, x, y)
            }
            Expr::In(a, b) => {
                let x = self.operand(a)?;
                match self.operand(b)? {
                    Operand::Set(items) => match x {
                        Operand::Str(s) => Ok(items.binary_search_by(|i| (**i).cmp(s)).is_ok()),
                        _ => Err(EvalError),
                    },
                    Operand::List(items) => {
                        for it in items {
                            if compare(CmpOp::Eq, x, self.operand(it)?)? {
                                return Ok(true);
                            }
                        }
                        Ok(false)
                    }
                    _ => Err(EvalError),
                }
            }
            Expr::Lit(_) | Expr::List(_) => Err(EvalError),
        }
    }
}

fn compare(op: CmpOp, x: Operand<'_>, y: Operand<'_>) -> Result<bool, EvalError> {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (x, y) {
        (Operand::Bool(a), Operand::Bool(b)) => Some(a.cmp(&b)),
        (Operand::Str(a), Operand::Str(b)) => Some(a.cmp(b)),
        (Operand::Num(a), Operand::Num(b)) => a.partial_cmp(&b),
        (Operand::Time(a), Operand::Time(b)) => Some(a.cmp(&b)),
        (Operand::Set(a), Operand::Set(b)) => Some(a.cmp(b)),
        _ => return Err(EvalError),
    };
    let ord = ord.ok_or(EvalError)?;
    Ok(match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    })
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;
    use crate::value::Type;

    struct R;
    impl Resolver for R {
        fn resolve(&self, root: &str, name: &str) -> Result<(Var, Type), (String, Option<String>)> {
            match (root, name) {
                ("principal", "id") => Ok((Var::PrincipalId, Type::String)),
                ("principal", "mfa") => Ok((Var::PrincipalAttr(0), Type::Bool)),
                ("principal", "groups") => Ok((Var::PrincipalAttr(1), Type::StringSet)),
                ("resource", "created_by") => Ok((Var::ResourceAttr(0), Type::String)),
                ("context", "now") => Ok((Var::ContextAttr(0), Type::Time)),
                ("context", "hour") => Ok((Var::ContextAttr(1), Type::Number)),
                _ => Err((format!("unknown attribute `{root}.{name}`"), None)),
            }
        }
    }

    fn env_with<'a>(p: &'a [Option<Value>], r: &'a [Option<Value>], c: &'a [Option<Value>]) -> Env<'a> {
        Env {
            principal_id: "alice",
            principal_attrs: p,
            resource_id: "w1",
            resource_kind: "maintenance_window",
            resource_scope: "msp:a/org:o",
            resource_attrs: r,
            context_attrs: c,
        }
    }

    #[test]
    fn ownership_and_sets() {
        let e = compile("resource.created_by == principal.id", &R).unwrap();
        let p = [Some(Value::Bool(true)), Some(Value::Set(vec!["ops".into()].into()))];
        let r = [Some(Value::Str("alice".into()))];
        let c = [None, Some(Value::Num(9.0))];
        assert_eq!(env_with(&p, &r, &c).eval(&e), Ok(true));
        let r2 = [Some(Value::Str("bob".into()))];
        assert_eq!(env_with(&p, &r2, &c).eval(&e), Ok(false));
        // absent attribute is an evaluation error, not false
        assert_eq!(env_with(&p, &[None], &c).eval(&e), Err(EvalError));
        let e = compile("'ops' in principal.groups and context.hour >= 9", &R).unwrap();
        assert_eq!(env_with(&p, &r, &c).eval(&e), Ok(true));
        let e = compile("not has(context.now) || context.now < time('2030-01-01T00:00:00Z')", &R).unwrap();
        assert_eq!(env_with(&p, &r, &c).eval(&e), Ok(true));
        let e = compile("context.hour in [1, 2, 9]", &R).unwrap();
        assert_eq!(env_with(&p, &r, &c).eval(&e), Ok(true));
    }

    #[test]
    fn type_errors_point_inside() {
        let err = compile("resource.created_by == 3", &R).unwrap_err();
        assert!(err.is_type_error);
        assert_eq!(err.offset, 0);
        let err = compile("principal.mfa and resource.owner == 'x'", &R).unwrap_err();
        assert_eq!(err.offset, 18);
        assert!(err.message.contains("resource.owner"));
        let err = compile("principal.id", &R).unwrap_err();
        assert!(err.message.contains("must be a bool"));
        assert!(compile("principal.groups < 3", &R).is_err());
        assert!(compile("3 in principal.groups", &R).is_err());
    }

    #[test]
    fn syntax_errors_never_panic() {
        for src in ["", "(", "principal.", "'abc", "a == == b", "[1,", "time(1)", "\u{1F600}", "has", "!"] {
            assert!(compile(src, &R).is_err(), "{src}");
        }
        let deep = "(".repeat(500) + "true" + &")".repeat(500);
        assert!(compile(&deep, &R).is_err());
        let deep = "not ".repeat(500) + "true";
        assert!(compile(&deep, &R).is_err());
    }
}
