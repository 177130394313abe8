//! The condition language's front end (feature `compiler`): lexer, parser and type checker.
//! A compiled [`Expr`] needs none of it: bundles carry conditions compiled.

use std::fmt;

use super::{CmpOp, Expr, Var};
use crate::value::{Type, Value, parse_time};

/// Longest condition accepted, in bytes.
const MAX_LEN: usize = 4096;
/// Deepest nesting accepted.
const MAX_DEPTH: usize = 48;

/// An error in a condition, with the byte range inside the condition text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExprError {
    pub(crate) offset: usize,
    pub(crate) len: usize,
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) is_type_error: bool,
}

impl ExprError {
    fn syntax(offset: usize, len: usize, message: String) -> Self {
        Self { offset, len, message, hint: None, is_type_error: false }
    }
    fn typing(offset: usize, len: usize, message: String) -> Self {
        Self { offset, len, message, hint: None, is_type_error: true }
    }
}

// ---------------------------------------------------------------- lexer

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(f64),
    LParen,
    RParen,
    LBrack,
    RBrack,
    Comma,
    Dot,
    Cmp(CmpOp),
    And,
    Or,
    Not,
    In,
    Has,
    True,
    False,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let start = i;
        let two = bytes.get(i..i + 2);
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBrack,
            b']' => Tok::RBrack,
            b',' => Tok::Comma,
            b'.' => Tok::Dot,
            b'=' if two == Some(b"==") => Tok::Cmp(CmpOp::Eq),
            b'!' if two == Some(b"!=") => Tok::Cmp(CmpOp::Ne),
            b'!' => Tok::Not,
            b'<' if two == Some(b"<=") => Tok::Cmp(CmpOp::Le),
            b'<' => Tok::Cmp(CmpOp::Lt),
            b'>' if two == Some(b">=") => Tok::Cmp(CmpOp::Ge),
            b'>' => Tok::Cmp(CmpOp::Gt),
            b'&' if two == Some(b"&&") => Tok::And,
            b'|' if two == Some(b"||") => Tok::Or,
            b'"' | b'\'' => {
                let quote = c;
                let mut s = String::new();
                let mut j = i + 1;
                let mut closed = false;
                while let Some(&d) = bytes.get(j) {
                    if d == quote {
                        closed = true;
                        break;
                    }
                    if d == b'\\' {
                        match bytes.get(j + 1) {
                            Some(&e @ (b'"' | b'\'' | b'\\')) => {
                                s.push(char::from(e));
                                j += 2;
                                continue;
                            }
                            _ => {
                                return Err(ExprError::syntax(j, 2, "unknown escape in string literal".into()));
                            }
                        }
                    }
                    // Copy one UTF-8 character.
                    let ch = src.get(j..).and_then(|r| r.chars().next()).unwrap_or('\u{fffd}');
                    s.push(ch);
                    j += ch.len_utf8().max(1);
                }
                if !closed {
                    return Err(ExprError::syntax(i, j - i, "unterminated string literal".into()));
                }
                out.push(Token { tok: Tok::Str(s), start, end: j + 1 });
                i = j + 1;
                continue;
            }
            b'0'..=b'9' | b'-' => {
                let mut j = i + 1;
                while let Some(&d) = bytes.get(j) {
                    if d.is_ascii_digit() || d == b'.' || d == b'e' || d == b'E' {
                        j += 1;
                    } else {
                        break;
                    }
                }
                let text = src.get(i..j).unwrap_or("");
                let n: f64 =
                    text.parse().map_err(|_| ExprError::syntax(i, j - i, format!("`{text}` is not a number")))?;
                if !n.is_finite() {
                    return Err(ExprError::syntax(i, j - i, format!("`{text}` is out of range")));
                }
                out.push(Token { tok: Tok::Num(n), start, end: j });
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while let Some(&d) = bytes.get(j) {
                    if d.is_ascii_alphanumeric() || d == b'_' || d == b'-' {
                        j += 1;
                    } else {
                        break;
                    }
                }
                let word = src.get(i..j).unwrap_or("");
                let tok = match word {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "in" => Tok::In,
                    "has" => Tok::Has,
                    "true" => Tok::True,
                    "false" => Tok::False,
                    w => Tok::Ident(w.to_owned()),
                };
                out.push(Token { tok, start, end: j });
                i = j;
                continue;
            }
            _ => {
                let ch = src.get(i..).and_then(|r| r.chars().next()).unwrap_or('?');
                let mut e = ExprError::syntax(i, ch.len_utf8(), format!("unexpected character `{ch}`"));
                e.hint = match ch {
                    '=' => Some("compare with `==` (a single `=` is not an operator)".into()),
                    '&' => Some("write `and` (or `&&`)".into()),
                    '|' => Some("write `or` (or `||`)".into()),
                    _ => None,
                };
                return Err(e);
            }
        };
        let len = match tok {
            Tok::Cmp(CmpOp::Eq | CmpOp::Ne | CmpOp::Le | CmpOp::Ge) | Tok::And | Tok::Or => 2,
            _ => 1,
        };
        i += len;
        out.push(Token { tok, start, end: i });
    }
    Ok(out)
}

// ---------------------------------------------------------------- parser (untyped)

#[derive(Clone, Debug)]
enum Ast {
    Lit(Value),
    Path(String, String),
    Has(String, String),
    List(Vec<Node>),
    Not(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    In(Box<Node>, Box<Node>),
}

#[derive(Clone, Debug)]
struct Node {
    ast: Ast,
    start: usize,
    end: usize,
}

struct Parser<'t> {
    toks: &'t [Token],
    pos: usize,
    depth: usize,
    src_len: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    fn here(&self) -> (usize, usize) {
        self.toks.get(self.pos).map(|t| (t.start, t.end - t.start)).unwrap_or((self.src_len, 0))
    }
    fn bump(&mut self) -> Option<&Token> {
        let t = self.toks.get(self.pos);
        self.pos += 1;
        t
    }
    fn last_end(&self) -> usize {
        self.pos.checked_sub(1).and_then(|p| self.toks.get(p)).map(|t| t.end).unwrap_or(0)
    }
    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), ExprError> {
        if self.peek() == Some(want) {
            self.pos += 1;
            Ok(())
        } else {
            let (o, l) = self.here();
            Err(ExprError::syntax(o, l, format!("expected {what}")))
        }
    }
    fn enter(&mut self) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let (o, l) = self.here();
            return Err(ExprError::syntax(o, l, "condition is nested too deeply".into()));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        self.enter()?;
        let mut lhs = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let rhs = self.and()?;
            let (start, end) = (lhs.start, rhs.end);
            lhs = Node { ast: Ast::Or(Box::new(lhs), Box::new(rhs)), start, end };
        }
        self.depth -= 1;
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let mut lhs = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let rhs = self.unary()?;
            let (start, end) = (lhs.start, rhs.end);
            lhs = Node { ast: Ast::And(Box::new(lhs), Box::new(rhs)), start, end };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        let (start, _) = self.here();
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                self.enter()?;
                let inner = self.unary()?;
                self.depth -= 1;
                let end = inner.end;
                Ok(Node { ast: Ast::Not(Box::new(inner)), start, end })
            }
            Some(Tok::Has) => {
                self.pos += 1;
                let paren = self.peek() == Some(&Tok::LParen);
                if paren {
                    self.pos += 1;
                }
                let (root, name) = self.path()?;
                if paren {
                    self.expect(&Tok::RParen, "`)`")?;
                }
                Ok(Node { ast: Ast::Has(root, name), start, end: self.last_end() })
            }
            _ => self.cmp(),
        }
    }

    fn cmp(&mut self) -> Result<Node, ExprError> {
        let lhs = self.primary()?;
        let op = match self.peek() {
            Some(Tok::Cmp(op)) => Some(*op),
            Some(Tok::In) => None,
            _ => return Ok(lhs),
        };
        self.pos += 1;
        let rhs = self.primary()?;
        let (start, end) = (lhs.start, rhs.end);
        let ast = match op {
            Some(op) => Ast::Cmp(op, Box::new(lhs), Box::new(rhs)),
            None => Ast::In(Box::new(lhs), Box::new(rhs)),
        };
        Ok(Node { ast, start, end })
    }

    fn path(&mut self) -> Result<(String, String), ExprError> {
        let (o, l) = self.here();
        let root = match self.bump().map(|t| &t.tok) {
            Some(Tok::Ident(r)) => r.clone(),
            _ => {
                return Err(ExprError::syntax(o, l, "expected an attribute such as `principal.id`".into()));
            }
        };
        self.expect(&Tok::Dot, "`.` after `principal`, `resource` or `context`")?;
        let (o2, l2) = self.here();
        match self.bump().map(|t| &t.tok) {
            Some(Tok::Ident(n)) => Ok((root, n.clone())),
            _ => Err(ExprError::syntax(o2, l2, "expected an attribute name".into())),
        }
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let (start, len) = self.here();
        let Some(tok) = self.peek().cloned() else {
            return Err(ExprError::syntax(start, len, "unexpected end of condition".into()));
        };
        let ast = match tok {
            Tok::Str(s) => {
                self.pos += 1;
                Ast::Lit(Value::Str(s.into()))
            }
            Tok::Num(n) => {
                self.pos += 1;
                Ast::Lit(Value::Num(n))
            }
            Tok::True => {
                self.pos += 1;
                Ast::Lit(Value::Bool(true))
            }
            Tok::False => {
                self.pos += 1;
                Ast::Lit(Value::Bool(false))
            }
            Tok::LParen => {
                self.pos += 1;
                let inner = self.or()?;
                self.expect(&Tok::RParen, "`)`")?;
                return Ok(Node { ast: inner.ast, start, end: self.last_end() });
            }
            Tok::LBrack => {
                self.pos += 1;
                self.enter()?;
                let mut items = Vec::new();
                if self.peek() != Some(&Tok::RBrack) {
                    loop {
                        items.push(self.primary()?);
                        if self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                            continue;
                        }
                        break;
                    }
                }
                self.expect(&Tok::RBrack, "`]` or `,`")?;
                self.depth -= 1;
                Ast::List(items)
            }
            Tok::Ident(ref f) if f == "time" => {
                self.pos += 1;
                self.expect(&Tok::LParen, "`(` after `time`")?;
                let (o, l) = self.here();
                let text = match self.bump().map(|t| &t.tok) {
                    Some(Tok::Str(s)) => s.clone(),
                    _ => return Err(ExprError::syntax(o, l, "expected an RFC 3339 string".into())),
                };
                let t = parse_time(&text)
                    .ok_or_else(|| ExprError::syntax(o, l, format!("`{text}` is not an RFC 3339 time")))?;
                self.expect(&Tok::RParen, "`)`")?;
                Ast::Lit(Value::Time(t))
            }
            Tok::Ident(_) => {
                let (root, name) = self.path()?;
                Ast::Path(root, name)
            }
            _ => {
                return Err(ExprError::syntax(start, len, "expected a value or an attribute".into()));
            }
        };
        Ok(Node { ast, start, end: self.last_end() })
    }
}

/// Resolves `principal.x`, `resource.x`, `context.x` to a variable and its type.
pub(crate) trait Resolver {
    /// `Err` carries a message and an optional hint.
    fn resolve(&self, root: &str, name: &str) -> Result<(Var, Type), (String, Option<String>)>;
}

/// Parse and type-check a condition. The result is a boolean expression.
pub(crate) fn compile(src: &str, resolver: &dyn Resolver) -> Result<Expr, ExprError> {
    if src.len() > MAX_LEN {
        return Err(ExprError::syntax(0, 0, format!("condition is longer than {MAX_LEN} bytes")));
    }
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(ExprError::syntax(0, 0, "condition is empty".into()));
    }
    let mut p = Parser { toks: &toks, pos: 0, depth: 0, src_len: src.len() };
    let node = p.or()?;
    if p.pos < toks.len() {
        let (o, l) = p.here();
        return Err(ExprError::syntax(o, l, "unexpected text after the condition".into()));
    }
    let (expr, ty) = check(&node, resolver)?;
    if ty != Ty::Scalar(Type::Bool) {
        return Err(ExprError::typing(
            node.start,
            node.end - node.start,
            format!("a condition must be a bool, this is a {ty}"),
        ));
    }
    Ok(expr)
}

/// Types during checking: a scalar attribute type, or a list literal of an element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Scalar(Type),
    ListOf(Option<Type>),
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Scalar(t) => write!(f, "{t}"),
            Ty::ListOf(Some(t)) => write!(f, "list of {t}"),
            Ty::ListOf(None) => f.write_str("empty list"),
        }
    }
}

fn check(node: &Node, r: &dyn Resolver) -> Result<(Expr, Ty), ExprError> {
    let span = (node.start, node.end.saturating_sub(node.start));
    let type_err = |m: String| ExprError::typing(span.0, span.1, m);
    let want_bool = |n: &Node, r: &dyn Resolver| -> Result<Expr, ExprError> {
        let (e, t) = check(n, r)?;
        if t != Ty::Scalar(Type::Bool) {
            return Err(ExprError::typing(
                n.start,
                n.end.saturating_sub(n.start),
                format!("expected a bool, found a {t}"),
            ));
        }
        Ok(e)
    };
    Ok(match &node.ast {
        Ast::Lit(v) => {
            let t = match v {
                Value::Bool(_) => Type::Bool,
                Value::Str(_) => Type::String,
                Value::Num(_) => Type::Number,
                Value::Time(_) => Type::Time,
                Value::Set(_) => Type::StringSet,
            };
            (Expr::Lit(v.clone()), Ty::Scalar(t))
        }
        Ast::Path(root, name) => {
            let (var, t) = r.resolve(root, name).map_err(|(m, h)| ExprError {
                offset: span.0,
                len: span.1,
                message: m,
                hint: h,
                is_type_error: true,
            })?;
            (Expr::Var(var), Ty::Scalar(t))
        }
        Ast::Has(root, name) => {
            let (var, _) = r.resolve(root, name).map_err(|(m, h)| ExprError {
                offset: span.0,
                len: span.1,
                message: m,
                hint: h,
                is_type_error: true,
            })?;
            if !matches!(var, Var::PrincipalAttr(_) | Var::ResourceAttr(_) | Var::ContextAttr(_)) {
                return Err(type_err(format!("`{root}.{name}` is always present")));
            }
            (Expr::Has(var), Ty::Scalar(Type::Bool))
        }
        Ast::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut elem: Option<Type> = None;
            for it in items {
                let (e, t) = check(it, r)?;
                let Ty::Scalar(t) = t else {
                    return Err(ExprError::typing(it.start, it.end - it.start, "lists cannot be nested".into()));
                };
                if t == Type::StringSet || t == Type::Bool {
                    return Err(ExprError::typing(
                        it.start,
                        it.end - it.start,
                        format!("a list may hold strings, numbers or times, not a {t}"),
                    ));
                }
                if let Some(prev) = elem
                    && prev != t
                {
                    return Err(ExprError::typing(it.start, it.end - it.start, format!("list mixes {prev} and {t}")));
                }
                elem = Some(t);
                out.push(e);
            }
            (Expr::List(out), Ty::ListOf(elem))
        }
        Ast::Not(inner) => (Expr::Not(Box::new(want_bool(inner, r)?)), Ty::Scalar(Type::Bool)),
        Ast::And(a, b) => (Expr::And(Box::new(want_bool(a, r)?), Box::new(want_bool(b, r)?)), Ty::Scalar(Type::Bool)),
        Ast::Or(a, b) => (Expr::Or(Box::new(want_bool(a, r)?), Box::new(want_bool(b, r)?)), Ty::Scalar(Type::Bool)),
        Ast::Cmp(op, a, b) => {
            let (ea, ta) = check(a, r)?;
            let (eb, tb) = check(b, r)?;
            let (Ty::Scalar(sa), Ty::Scalar(sb)) = (ta, tb) else {
                return Err(type_err(format!("`{op}` compares two values; use `in` for lists (found {ta} and {tb})")));
            };
            if sa != sb {
                return Err(type_err(format!("cannot compare a {sa} with a {sb}")));
            }
            if matches!(op, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge) && !matches!(sa, Type::Number | Type::Time) {
                return Err(type_err(format!("`{op}` needs numbers or times, found {sa}")));
            }
            (Expr::Cmp(*op, Box::new(ea), Box::new(eb)), Ty::Scalar(Type::Bool))
        }
        Ast::In(a, b) => {
            let (ea, ta) = check(a, r)?;
            let (eb, tb) = check(b, r)?;
            let Ty::Scalar(elem) = ta else {
                return Err(type_err("the left side of `in` must be a single value".into()));
            };
            let ok = match tb {
                Ty::Scalar(Type::StringSet) => elem == Type::String,
                Ty::ListOf(None) => true,
                Ty::ListOf(Some(t)) => t == elem,
                Ty::Scalar(_) => false,
            };
            if !ok {
                return Err(type_err(format!("cannot look for a {elem} in a {tb}")));
            }
            (Expr::In(Box::new(ea), Box::new(eb)), Ty::Scalar(Type::Bool))
        }
    })
}
