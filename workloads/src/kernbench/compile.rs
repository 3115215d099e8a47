//! The "compiler": lex, parse into a tree of small heap nodes, run passes that rebuild the tree,
//! hash it, and generate a relocatable object.
//!
//! The point is the allocation pattern of a real compiler: every token name, node and child list
//! is its own allocation, and every pass frees the old tree while building a new one, so the guest
//! kernel's allocator lock is taken constantly from every job. Speed of this code matters less
//! than its being deterministic: the object bytes depend on the source text only.

use std::collections::BTreeMap;

use crate::hash::Fnv64;

/// Object file magic and version.
pub(crate) const OBJ_MAGIC: &[u8; 4] = b"PVO1";

/// Stack-machine opcodes of the object code.
pub(crate) mod op {
    pub const PUSH: u8 = 0x01; // i64
    pub const LOAD: u8 = 0x02; // u16 slot
    pub const STORE: u8 = 0x03; // u16 slot
    pub const BIN: u8 = 0x10; // + BinOp index
    pub const NEG: u8 = 0x30;
    pub const NOT: u8 = 0x31;
    pub const CALL: u8 = 0x40; // u32 symbol (relocated), u8 argc
    pub const JZ: u8 = 0x50; // i32 relative
    pub const JMP: u8 = 0x51; // i32 relative
    pub const RET: u8 = 0x60;
    pub const ENTER: u8 = 0x70; // u8 params, u16 locals
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    BitOr,
    BitXor,
    BitAnd,
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    /// C precedence, higher binds tighter.
    fn precedence(self) -> u8 {
        match self {
            Self::Or => 1,
            Self::And => 2,
            Self::BitOr => 3,
            Self::BitXor => 4,
            Self::BitAnd => 5,
            Self::Eq | Self::Ne => 6,
            Self::Lt | Self::Gt | Self::Le | Self::Ge => 7,
            Self::Add | Self::Sub => 8,
            Self::Mul | Self::Div | Self::Rem => 9,
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    /// Constant evaluation with wrapping arithmetic; `None` where the result is undefined
    /// (division by zero), which the folder then leaves alone.
    fn eval(self, a: i64, b: i64) -> Option<i64> {
        Some(match self {
            Self::Or => i64::from(a != 0 || b != 0),
            Self::And => i64::from(a != 0 && b != 0),
            Self::BitOr => a | b,
            Self::BitXor => a ^ b,
            Self::BitAnd => a & b,
            Self::Eq => i64::from(a == b),
            Self::Ne => i64::from(a != b),
            Self::Lt => i64::from(a < b),
            Self::Gt => i64::from(a > b),
            Self::Le => i64::from(a <= b),
            Self::Ge => i64::from(a >= b),
            Self::Add => a.wrapping_add(b),
            Self::Sub => a.wrapping_sub(b),
            Self::Mul => a.wrapping_mul(b),
            Self::Div => a
                .checked_div(b)
                .or(if b == 0 { None } else { Some(a.wrapping_div(b)) })?,
            Self::Rem => a.checked_rem(b).or(if b == 0 { None } else { Some(0) })?,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Num(i64),
    Fn,
    Let,
    If,
    Else,
    While,
    Return,
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Semi,
    Assign,
    Not,
    Bin(BinOp),
}

/// A compile error with the line it was found on.
#[derive(Debug)]
pub(crate) struct CompileError(pub(crate) String);

fn err<T>(line: u32, msg: impl std::fmt::Display) -> Result<T, CompileError> {
    Err(CompileError(format!("line {line}: {msg}")))
}

/// Tokens with their line numbers. Identifiers are owned strings on purpose (see module doc).
fn lex(src: &str) -> Result<Vec<(Tok, u32)>, CompileError> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut line = 1u32;
    while i < b.len() {
        let c = b[i];
        let two = |d: u8| b.get(i + 1) == Some(&d);
        let (tok, len) = match c {
            b'\n' => {
                line += 1;
                i += 1;
                continue;
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'/' if two(b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if two(b'*') => {
                let start_line = line;
                i += 2;
                loop {
                    match b.get(i) {
                        None => return err(start_line, "unterminated comment"),
                        Some(b'*') if b.get(i + 1) == Some(&b'/') => break,
                        Some(b'\n') => line += 1,
                        Some(_) => {}
                    }
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'0'..=b'9' => {
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                match src[start..i].parse::<i64>() {
                    Ok(n) => toks.push((Tok::Num(n), line)),
                    Err(_) => return err(line, format!("bad number {}", &src[start..i])),
                }
                continue;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let tok = match &src[start..i] {
                    "fn" => Tok::Fn,
                    "let" => Tok::Let,
                    "if" => Tok::If,
                    "else" => Tok::Else,
                    "while" => Tok::While,
                    "return" => Tok::Return,
                    word => Tok::Ident(word.to_string()),
                };
                toks.push((tok, line));
                continue;
            }
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'{' => (Tok::LBrace, 1),
            b'}' => (Tok::RBrace, 1),
            b',' => (Tok::Comma, 1),
            b';' => (Tok::Semi, 1),
            b'=' if two(b'=') => (Tok::Bin(BinOp::Eq), 2),
            b'=' => (Tok::Assign, 1),
            b'!' if two(b'=') => (Tok::Bin(BinOp::Ne), 2),
            b'!' => (Tok::Not, 1),
            b'<' if two(b'=') => (Tok::Bin(BinOp::Le), 2),
            b'<' => (Tok::Bin(BinOp::Lt), 1),
            b'>' if two(b'=') => (Tok::Bin(BinOp::Ge), 2),
            b'>' => (Tok::Bin(BinOp::Gt), 1),
            b'&' if two(b'&') => (Tok::Bin(BinOp::And), 2),
            b'&' => (Tok::Bin(BinOp::BitAnd), 1),
            b'|' if two(b'|') => (Tok::Bin(BinOp::Or), 2),
            b'|' => (Tok::Bin(BinOp::BitOr), 1),
            b'^' => (Tok::Bin(BinOp::BitXor), 1),
            b'+' => (Tok::Bin(BinOp::Add), 1),
            b'-' => (Tok::Bin(BinOp::Sub), 1),
            b'*' => (Tok::Bin(BinOp::Mul), 1),
            b'/' => (Tok::Bin(BinOp::Div), 1),
            b'%' => (Tok::Bin(BinOp::Rem), 1),
            other => return err(line, format!("unexpected character {:?}", other as char)),
        };
        toks.push((tok, line));
        i += len;
    }
    Ok(toks)
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Num(i64),
    Var(String),
    Neg(Box<Expr>),
    Not(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Stmt {
    Let(String, Expr),
    Assign(String, Expr),
    If(Expr, Vec<Stmt>, Vec<Stmt>),
    While(Expr, Vec<Stmt>),
    Return(Expr),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Func {
    pub(crate) name: String,
    pub(crate) params: Vec<String>,
    pub(crate) body: Vec<Stmt>,
}

struct Parser {
    toks: Vec<(Tok, u32)>,
    pos: usize,
}

impl Parser {
    fn line(&self) -> u32 {
        self.toks.get(self.pos).or(self.toks.last()).map_or(0, |t| t.1)
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }

    fn next(&mut self) -> Result<Tok, CompileError> {
        match self.toks.get_mut(self.pos) {
            Some(t) => {
                self.pos += 1;
                // Take the token out (identifier strings move into the tree).
                Ok(std::mem::replace(&mut t.0, Tok::Semi))
            }
            None => err(self.line(), "unexpected end of file"),
        }
    }

    fn expect(&mut self, want: Tok) -> Result<(), CompileError> {
        let line = self.line();
        let got = self.next()?;
        if got == want {
            Ok(())
        } else {
            err(line, format!("expected {want:?}, found {got:?}"))
        }
    }

    fn ident(&mut self) -> Result<String, CompileError> {
        let line = self.line();
        match self.next()? {
            Tok::Ident(s) => Ok(s),
            other => err(line, format!("expected a name, found {other:?}")),
        }
    }

    fn file(&mut self) -> Result<Vec<Func>, CompileError> {
        let mut funcs = Vec::new();
        while self.peek().is_some() {
            self.expect(Tok::Fn)?;
            let name = self.ident()?;
            self.expect(Tok::LParen)?;
            let mut params = Vec::new();
            if self.peek() != Some(&Tok::RParen) {
                loop {
                    params.push(self.ident()?);
                    if self.peek() == Some(&Tok::Comma) {
                        self.next()?;
                    } else {
                        break;
                    }
                }
            }
            self.expect(Tok::RParen)?;
            let body = self.block()?;
            funcs.push(Func { name, params, body });
        }
        Ok(funcs)
    }

    fn block(&mut self) -> Result<Vec<Stmt>, CompileError> {
        self.expect(Tok::LBrace)?;
        let mut stmts = Vec::new();
        while self.peek() != Some(&Tok::RBrace) {
            stmts.push(self.stmt()?);
        }
        self.expect(Tok::RBrace)?;
        Ok(stmts)
    }

    fn stmt(&mut self) -> Result<Stmt, CompileError> {
        let line = self.line();
        match self.next()? {
            Tok::Let => {
                let name = self.ident()?;
                self.expect(Tok::Assign)?;
                let e = self.expr(0)?;
                self.expect(Tok::Semi)?;
                Ok(Stmt::Let(name, e))
            }
            Tok::Ident(name) => {
                self.expect(Tok::Assign)?;
                let e = self.expr(0)?;
                self.expect(Tok::Semi)?;
                Ok(Stmt::Assign(name, e))
            }
            Tok::If => {
                self.expect(Tok::LParen)?;
                let c = self.expr(0)?;
                self.expect(Tok::RParen)?;
                let then = self.block()?;
                let otherwise = if self.peek() == Some(&Tok::Else) {
                    self.next()?;
                    self.block()?
                } else {
                    Vec::new()
                };
                Ok(Stmt::If(c, then, otherwise))
            }
            Tok::While => {
                self.expect(Tok::LParen)?;
                let c = self.expr(0)?;
                self.expect(Tok::RParen)?;
                Ok(Stmt::While(c, self.block()?))
            }
            Tok::Return => {
                let e = self.expr(0)?;
                self.expect(Tok::Semi)?;
                Ok(Stmt::Return(e))
            }
            other => err(line, format!("expected a statement, found {other:?}")),
        }
    }

    /// Precedence climbing: parses operators binding tighter than `min`.
    fn expr(&mut self, min: u8) -> Result<Expr, CompileError> {
        let mut lhs = self.unary()?;
        while let Some(&Tok::Bin(op)) = self.peek() {
            if op.precedence() <= min {
                break;
            }
            self.next()?;
            let rhs = self.expr(op.precedence())?;
            lhs = Expr::Bin(op, Box::new(lhs), Box::new(rhs));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Expr, CompileError> {
        let line = self.line();
        match self.next()? {
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::Bin(BinOp::Sub) => Ok(Expr::Neg(Box::new(self.unary()?))),
            Tok::Not => Ok(Expr::Not(Box::new(self.unary()?))),
            Tok::LParen => {
                let e = self.expr(0)?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Tok::Ident(name) => {
                if self.peek() != Some(&Tok::LParen) {
                    return Ok(Expr::Var(name));
                }
                self.next()?;
                let mut args = Vec::new();
                if self.peek() != Some(&Tok::RParen) {
                    loop {
                        args.push(self.expr(0)?);
                        if self.peek() == Some(&Tok::Comma) {
                            self.next()?;
                        } else {
                            break;
                        }
                    }
                }
                self.expect(Tok::RParen)?;
                Ok(Expr::Call(name, args))
            }
            other => err(line, format!("expected an expression, found {other:?}")),
        }
    }
}

/// Parses a whole source file.
pub(crate) fn parse(src: &str) -> Result<Vec<Func>, CompileError> {
    let toks = lex(src)?;
    Parser { toks, pos: 0 }.file()
}

// ---- passes: each consumes the tree and builds a new one ----

fn has_call(e: &Expr) -> bool {
    match e {
        Expr::Num(_) | Expr::Var(_) => false,
        Expr::Neg(x) | Expr::Not(x) => has_call(x),
        Expr::Bin(_, a, b) => has_call(a) || has_call(b),
        Expr::Call(..) => true,
    }
}

/// Constant folding and algebraic identities that keep the value (calls are never dropped).
fn fold(e: Expr) -> Expr {
    match e {
        Expr::Neg(x) => match fold(*x) {
            Expr::Num(n) => Expr::Num(n.wrapping_neg()),
            x => Expr::Neg(Box::new(x)),
        },
        Expr::Not(x) => match fold(*x) {
            Expr::Num(n) => Expr::Num(i64::from(n == 0)),
            x => Expr::Not(Box::new(x)),
        },
        Expr::Bin(op, a, b) => {
            let (a, b) = (fold(*a), fold(*b));
            match (op, &a, &b) {
                (_, Expr::Num(x), Expr::Num(y)) => match op.eval(*x, *y) {
                    Some(v) => Expr::Num(v),
                    None => Expr::Bin(op, Box::new(a), Box::new(b)),
                },
                (BinOp::Add | BinOp::Sub | BinOp::BitOr | BinOp::BitXor, _, Expr::Num(0)) => a,
                (BinOp::Mul | BinOp::Div, _, Expr::Num(1)) => a,
                (BinOp::Mul | BinOp::BitAnd, _, Expr::Num(0)) if !has_call(&a) => Expr::Num(0),
                _ => Expr::Bin(op, Box::new(a), Box::new(b)),
            }
        }
        Expr::Call(name, args) => Expr::Call(name, args.into_iter().map(fold).collect()),
        leaf => leaf,
    }
}

/// Strength reduction: `x * 2` becomes `x + x` (copying a call-free subtree), `x - n` becomes
/// `x + -n`.
fn lower(e: Expr) -> Expr {
    match e {
        Expr::Bin(op, a, b) => {
            let (a, b) = (lower(*a), lower(*b));
            match (op, b) {
                (BinOp::Mul, Expr::Num(2)) if !has_call(&a) => {
                    Expr::Bin(BinOp::Add, Box::new(a.clone()), Box::new(a))
                }
                (BinOp::Sub, Expr::Num(n)) => {
                    Expr::Bin(BinOp::Add, Box::new(a), Box::new(Expr::Num(n.wrapping_neg())))
                }
                (op, b) => Expr::Bin(op, Box::new(a), Box::new(b)),
            }
        }
        Expr::Neg(x) => Expr::Neg(Box::new(lower(*x))),
        Expr::Not(x) => Expr::Not(Box::new(lower(*x))),
        Expr::Call(name, args) => Expr::Call(name, args.into_iter().map(lower).collect()),
        leaf => leaf,
    }
}

fn map_stmts(body: Vec<Stmt>, f: &mut impl FnMut(Expr) -> Expr) -> Vec<Stmt> {
    body.into_iter()
        .map(|s| match s {
            Stmt::Let(n, e) => Stmt::Let(n, f(e)),
            Stmt::Assign(n, e) => Stmt::Assign(n, f(e)),
            Stmt::If(c, t, o) => Stmt::If(f(c), map_stmts(t, f), map_stmts(o, f)),
            Stmt::While(c, b) => Stmt::While(f(c), map_stmts(b, f)),
            Stmt::Return(e) => Stmt::Return(f(e)),
        })
        .collect()
}

/// Renames locals to `%N` slots and functions to their link names (`pv_` prefix), as a compiler
/// mangles; every name is a new allocation and every old one is freed.
fn rename(func: Func) -> Func {
    let mut locals: BTreeMap<String, String> = BTreeMap::new();
    for p in &func.params {
        let n = format!("%{}", locals.len());
        locals.insert(p.clone(), n);
    }
    fn name_of(locals: &mut BTreeMap<String, String>, v: String) -> String {
        let next = locals.len();
        locals.entry(v).or_insert_with(|| format!("%{next}")).clone()
    }
    fn expr(locals: &mut BTreeMap<String, String>, e: Expr) -> Expr {
        match e {
            Expr::Var(v) => Expr::Var(name_of(locals, v)),
            Expr::Call(f, args) => Expr::Call(
                format!("pv_{f}"),
                args.into_iter().map(|a| expr(locals, a)).collect(),
            ),
            Expr::Neg(x) => Expr::Neg(Box::new(expr(locals, *x))),
            Expr::Not(x) => Expr::Not(Box::new(expr(locals, *x))),
            Expr::Bin(op, a, b) => Expr::Bin(op, Box::new(expr(locals, *a)), Box::new(expr(locals, *b))),
            n => n,
        }
    }
    fn stmts(locals: &mut BTreeMap<String, String>, body: Vec<Stmt>) -> Vec<Stmt> {
        body.into_iter()
            .map(|s| match s {
                Stmt::Let(n, e) => {
                    let e = expr(locals, e);
                    Stmt::Let(name_of(locals, n), e)
                }
                Stmt::Assign(n, e) => {
                    let e = expr(locals, e);
                    Stmt::Assign(name_of(locals, n), e)
                }
                Stmt::If(c, t, o) => {
                    let c = expr(locals, c);
                    let t = stmts(locals, t);
                    Stmt::If(c, t, stmts(locals, o))
                }
                Stmt::While(c, b) => {
                    let c = expr(locals, c);
                    Stmt::While(c, stmts(locals, b))
                }
                Stmt::Return(e) => Stmt::Return(expr(locals, e)),
            })
            .collect()
    }
    let params = func.params.iter().map(|p| locals[p].clone()).collect();
    let body = stmts(&mut locals, func.body);
    Func {
        name: format!("pv_{}", func.name),
        params,
        body,
    }
}

/// The optimisation pipeline.
pub(crate) fn optimise(funcs: Vec<Func>) -> Vec<Func> {
    funcs
        .into_iter()
        .map(|f| {
            let f = Func {
                body: map_stmts(f.body, &mut fold),
                ..f
            };
            let f = rename(f);
            let f = Func {
                body: map_stmts(f.body, &mut lower),
                ..f
            };
            Func {
                body: map_stmts(f.body, &mut fold),
                ..f
            }
        })
        .collect()
}

/// A structural hash of the optimised tree (goes into the object header).
pub(crate) fn tree_hash(funcs: &[Func]) -> u64 {
    fn expr(h: &mut Fnv64, e: &Expr) {
        match e {
            Expr::Num(n) => h.bytes(&[1]).u64(*n as u64),
            Expr::Var(v) => h.bytes(&[2]).bytes(v.as_bytes()),
            Expr::Neg(x) => {
                h.bytes(&[3]);
                expr(h, x);
                h
            }
            Expr::Not(x) => {
                h.bytes(&[4]);
                expr(h, x);
                h
            }
            Expr::Bin(op, a, b) => {
                h.bytes(&[5, op.code()]);
                expr(h, a);
                expr(h, b);
                h
            }
            Expr::Call(f, args) => {
                h.bytes(&[6]).bytes(f.as_bytes()).u64(args.len() as u64);
                args.iter().for_each(|a| expr(h, a));
                h
            }
        };
    }
    fn stmts(h: &mut Fnv64, body: &[Stmt]) {
        for s in body {
            match s {
                Stmt::Let(n, e) | Stmt::Assign(n, e) => {
                    h.bytes(&[10]).bytes(n.as_bytes());
                    expr(h, e);
                }
                Stmt::If(c, t, o) => {
                    h.bytes(&[11]);
                    expr(h, c);
                    stmts(h, t);
                    h.bytes(&[12]);
                    stmts(h, o);
                }
                Stmt::While(c, b) => {
                    h.bytes(&[13]);
                    expr(h, c);
                    stmts(h, b);
                }
                Stmt::Return(e) => {
                    h.bytes(&[14]);
                    expr(h, e);
                }
            }
        }
    }
    let mut h = Fnv64::new();
    for f in funcs {
        h.bytes(f.name.as_bytes()).u64(f.params.len() as u64);
        stmts(&mut h, &f.body);
    }
    h.finish()
}

// ---- code generation ----

/// A relocatable object: defined and referenced symbols, per-function code offsets, code, and
/// the code offsets of symbol indices the linker must patch.
struct ObjWriter {
    syms: Vec<(String, bool)>,
    sym_index: BTreeMap<String, u32>,
    code: Vec<u8>,
    relocs: Vec<u32>,
    funcs: Vec<(u32, u32)>,
}

impl ObjWriter {
    fn sym(&mut self, name: &str, defined: bool) -> u32 {
        if let Some(&i) = self.sym_index.get(name) {
            if defined {
                self.syms[i as usize].1 = true;
            }
            return i;
        }
        let i = self.syms.len() as u32;
        self.syms.push((name.to_string(), defined));
        self.sym_index.insert(name.to_string(), i);
        i
    }

    fn emit_expr(&mut self, e: &Expr, slots: &mut BTreeMap<String, u16>) {
        match e {
            Expr::Num(n) => {
                self.code.push(op::PUSH);
                self.code.extend_from_slice(&n.to_le_bytes());
            }
            Expr::Var(v) => {
                let s = slot(slots, v);
                self.code.push(op::LOAD);
                self.code.extend_from_slice(&s.to_le_bytes());
            }
            Expr::Neg(x) => {
                self.emit_expr(x, slots);
                self.code.push(op::NEG);
            }
            Expr::Not(x) => {
                self.emit_expr(x, slots);
                self.code.push(op::NOT);
            }
            Expr::Bin(o, a, b) => {
                self.emit_expr(a, slots);
                self.emit_expr(b, slots);
                self.code.push(op::BIN + o.code());
            }
            Expr::Call(f, args) => {
                for a in args {
                    self.emit_expr(a, slots);
                }
                let s = self.sym(f, false);
                self.code.push(op::CALL);
                self.relocs.push(self.code.len() as u32);
                self.code.extend_from_slice(&s.to_le_bytes());
                self.code.push(args.len() as u8);
            }
        }
    }

    /// Emits a jump with a placeholder offset; returns where to patch.
    fn jump(&mut self, opcode: u8) -> usize {
        self.code.push(opcode);
        self.code.extend_from_slice(&0i32.to_le_bytes());
        self.code.len() - 4
    }

    fn patch(&mut self, at: usize, target: usize) {
        let rel = target as i64 - (at as i64 + 4);
        self.code[at..at + 4].copy_from_slice(&(rel as i32).to_le_bytes());
    }

    fn emit_stmts(&mut self, body: &[Stmt], slots: &mut BTreeMap<String, u16>) {
        for s in body {
            match s {
                Stmt::Let(n, e) | Stmt::Assign(n, e) => {
                    self.emit_expr(e, slots);
                    let s = slot(slots, n);
                    self.code.push(op::STORE);
                    self.code.extend_from_slice(&s.to_le_bytes());
                }
                Stmt::If(c, t, o) => {
                    self.emit_expr(c, slots);
                    let to_else = self.jump(op::JZ);
                    self.emit_stmts(t, slots);
                    let to_end = self.jump(op::JMP);
                    let else_at = self.code.len();
                    self.patch(to_else, else_at);
                    self.emit_stmts(o, slots);
                    let end = self.code.len();
                    self.patch(to_end, end);
                }
                Stmt::While(c, b) => {
                    let top = self.code.len();
                    self.emit_expr(c, slots);
                    let to_end = self.jump(op::JZ);
                    self.emit_stmts(b, slots);
                    let back = self.jump(op::JMP);
                    self.patch(back, top);
                    let end = self.code.len();
                    self.patch(to_end, end);
                }
                Stmt::Return(e) => {
                    self.emit_expr(e, slots);
                    self.code.push(op::RET);
                }
            }
        }
    }
}

fn slot(slots: &mut BTreeMap<String, u16>, name: &str) -> u16 {
    if let Some(&s) = slots.get(name) {
        return s;
    }
    let s = slots.len() as u16;
    slots.insert(name.to_string(), s);
    s
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Generates the object for `file` from its optimised tree.
pub(crate) fn codegen(funcs: &[Func], file: usize, hash: u64) -> Vec<u8> {
    let mut w = ObjWriter {
        syms: Vec::new(),
        sym_index: BTreeMap::new(),
        code: Vec::new(),
        relocs: Vec::new(),
        funcs: Vec::new(),
    };
    for f in funcs {
        let sym = w.sym(&f.name, true);
        w.funcs.push((sym, w.code.len() as u32));
        let mut slots = BTreeMap::new();
        for p in &f.params {
            slot(&mut slots, p);
        }
        w.code.push(op::ENTER);
        w.code.push(f.params.len() as u8);
        let locals_at = w.code.len();
        w.code.extend_from_slice(&0u16.to_le_bytes());
        w.emit_stmts(&f.body, &mut slots);
        let locals = (slots.len() as u16).to_le_bytes();
        w.code[locals_at..locals_at + 2].copy_from_slice(&locals);
    }
    let mut out = Vec::with_capacity(w.code.len() + 1024);
    out.extend_from_slice(OBJ_MAGIC);
    put_u32(&mut out, file as u32);
    out.extend_from_slice(&hash.to_le_bytes());
    put_u32(&mut out, w.syms.len() as u32);
    for (name, defined) in &w.syms {
        out.push(u8::from(*defined));
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
    }
    put_u32(&mut out, w.funcs.len() as u32);
    for (sym, at) in &w.funcs {
        put_u32(&mut out, *sym);
        put_u32(&mut out, *at);
    }
    put_u32(&mut out, w.code.len() as u32);
    out.extend_from_slice(&w.code);
    put_u32(&mut out, w.relocs.len() as u32);
    for r in &w.relocs {
        put_u32(&mut out, *r);
    }
    out
}

/// The whole compile of one source text.
pub(crate) fn compile(src: &str, file: usize) -> Result<Vec<u8>, CompileError> {
    let funcs = optimise(parse(src)?);
    let hash = tree_hash(&funcs);
    Ok(codegen(&funcs, file, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_folding() {
        let f = parse("fn a(x) { return 1 + 2 * 3 - x * 1; }").unwrap();
        let f = optimise(f);
        // 1 + 2*3 folds to 7; x * 1 to x; then 7 - x stays (x is not constant).
        let Stmt::Return(e) = &f[0].body[0] else { panic!() };
        assert_eq!(
            *e,
            Expr::Bin(
                BinOp::Sub,
                Box::new(Expr::Num(7)),
                Box::new(Expr::Var("%0".into()))
            )
        );
    }

    #[test]
    fn division_by_zero_is_left_alone() {
        let f = optimise(parse("fn a(x) { return 5 / 0; }").unwrap());
        assert!(matches!(&f[0].body[0], Stmt::Return(Expr::Bin(BinOp::Div, ..))));
    }

    #[test]
    fn errors_carry_the_line() {
        let e = parse("fn a(x) {\n let = 3; }").unwrap_err();
        assert!(e.0.starts_with("line 2:"), "{}", e.0);
        assert!(parse("fn a(x) { /* open").is_err());
    }

    #[test]
    fn generated_files_compile() {
        for file in 0..8 {
            let src = super::super::tree::generate(file);
            compile(&src, file).unwrap_or_else(|e| panic!("file {file}: {}", e.0));
        }
    }
}
