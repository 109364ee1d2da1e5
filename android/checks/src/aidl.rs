//! A small parser for the subset of AIDL that stable (`@VintfStability`) interfaces use, and a
//! dumper that writes a type the way `aidl --dumpapi` lays it out in an `aidl_api/` snapshot:
//! user-defined types fully qualified, two-space indent, methods then fields then constants then
//! nested types, annotations sorted, and only the `@hide`/`@deprecated` parts of comments kept.
//!
//! It is not the AOSP compiler. It exists so that CI, which cannot run Soong, can still tell
//! whether the `aidl_api/` snapshots describe the same interface as the sources. Anything it does
//! not understand is an error that names the file and line, never a silent pass.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// An error with the file and line it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

impl std::error::Error for Error {}

/// Types every AIDL file may name without an import.
const BUILTIN_TYPES: &[&str] = &[
    "void",
    "boolean",
    "byte",
    "char",
    "int",
    "long",
    "float",
    "double",
    "String",
    "CharSequence",
    "List",
    "Map",
    "IBinder",
    "FileDescriptor",
    "ParcelFileDescriptor",
    "ParcelableHolder",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Int(String),
    Str(String),
    Char(String),
    Punct(&'static str),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    /// Comments (raw text, `//` ones with their newline) between the previous token and this one.
    comments: Vec<String>,
}

const PUNCTS: &[&str] = &[
    "<<", ">>", "&&", "||", "==", "!=", "<=", ">=", "{", "}", "(", ")", "[", "]", "<", ">", ";",
    ",", "=", "@", ".", "+", "-", "*", "/", "%", "&", "|", "^", "~", "!", "?", ":",
];

fn lex(file: &str, src: &str) -> Result<(Vec<Token>, Vec<String>), Error> {
    let bytes = src.as_bytes();
    let mut i = 0;
    let mut line = 1;
    let mut out = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let err = |line: usize, message: String| Error {
        file: file.to_owned(),
        line,
        message,
    };
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if src[i..].starts_with("//") {
            let end = src[i..].find('\n').map(|n| i + n + 1).unwrap_or(src.len());
            pending.push(src[i..end].to_owned());
            if src[i..end].ends_with('\n') {
                line += 1;
            }
            i = end;
        } else if src[i..].starts_with("/*") {
            let end = src[i + 2..]
                .find("*/")
                .map(|n| i + 2 + n + 2)
                .ok_or_else(|| err(line, "unterminated comment".into()))?;
            line += src[i..end].matches('\n').count();
            pending.push(src[i..end].to_owned());
            i = end;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(src[start..i].to_owned()),
                line,
                comments: std::mem::take(&mut pending),
            });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Int(src[start..i].to_owned()),
                line,
                comments: std::mem::take(&mut pending),
            });
        } else if c == b'"' || c == b'\'' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                if bytes[i] == b'\\' {
                    i += 1;
                }
                if i < bytes.len() && bytes[i] == b'\n' {
                    return Err(err(line, "newline in a string literal".into()));
                }
                i += 1;
            }
            if i >= bytes.len() {
                return Err(err(line, "unterminated literal".into()));
            }
            i += 1;
            let text = src[start..i].to_owned();
            out.push(Token {
                tok: if c == b'"' {
                    Tok::Str(text)
                } else {
                    Tok::Char(text)
                },
                line,
                comments: std::mem::take(&mut pending),
            });
        } else if let Some(p) = PUNCTS.iter().find(|p| src[i..].starts_with(**p)) {
            i += p.len();
            out.push(Token {
                tok: Tok::Punct(p),
                line,
                comments: std::mem::take(&mut pending),
            });
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(err(line, format!("unexpected character {ch:?}")));
        }
    }
    Ok((out, pending))
}

/// A constant expression as written (AIDL keeps the literal text in dumps).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstExpr {
    /// An integer, string, char, boolean or floating literal, exactly as written.
    Literal(String),
    /// A reference to another constant or enumerator: `[Type.]NAME`.
    Ref(String),
    Unary(&'static str, Box<ConstExpr>),
    Binary(Box<ConstExpr>, &'static str, Box<ConstExpr>),
    Array(Vec<ConstExpr>),
}

impl ConstExpr {
    fn is_trivial(&self) -> bool {
        match self {
            ConstExpr::Literal(_) => true,
            ConstExpr::Array(items) => items.iter().all(ConstExpr::is_trivial),
            _ => false,
        }
    }

    fn dump(&self, out: &mut String) {
        match self {
            ConstExpr::Literal(s) | ConstExpr::Ref(s) => out.push_str(s),
            ConstExpr::Unary(op, v) => {
                out.push('(');
                out.push_str(op);
                v.dump(out);
                out.push(')');
            }
            ConstExpr::Binary(l, op, r) => {
                out.push('(');
                l.dump(out);
                let _ = write!(out, " {op} ");
                r.dump(out);
                out.push(')');
            }
            ConstExpr::Array(items) => {
                out.push('{');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push_str(", ");
                    }
                    item.dump(out);
                }
                out.push('}');
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Annotation {
    pub name: String,
    pub params: BTreeMap<String, ConstExpr>,
}

impl Annotation {
    fn dump(&self) -> String {
        if self.params.is_empty() {
            return format!("@{}", self.name);
        }
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| {
                let mut s = String::new();
                v.dump(&mut s);
                format!("{k}={s}")
            })
            .collect();
        format!("@{}({})", self.name, params.join(", "))
    }
}

fn dump_annotations(annotations: &[Annotation]) -> String {
    let mut list: Vec<String> = annotations.iter().map(Annotation::dump).collect();
    list.sort();
    list.join(" ")
}

/// What a comment says that a dump keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doc {
    pub hidden: bool,
    pub deprecated: Option<String>,
}

impl Doc {
    fn from_comments(comments: &[String]) -> Doc {
        let mut doc = Doc::default();
        // Only the last comment before a declaration is its doc comment in AIDL, but @hide
        // counts wherever it is; this mirrors that closely enough for dumps.
        for c in comments {
            if c.contains("@hide") {
                doc.hidden = true;
            }
        }
        if let Some(c) = comments.last() {
            if let Some(pos) = c.find("@deprecated") {
                let rest = &c[pos + "@deprecated".len()..];
                let rest = rest.trim_end_matches("*/");
                let note: Vec<&str> = rest
                    .lines()
                    .map(|l| l.trim().trim_start_matches('*').trim())
                    .take_while(|l| !l.starts_with('@'))
                    .filter(|l| !l.is_empty())
                    .collect();
                doc.deprecated = Some(note.join(" "));
            }
        }
        doc
    }

    fn dump(&self, out: &mut String, indent: &str) {
        match (self.hidden, &self.deprecated) {
            (false, None) => {}
            (true, None) => {
                let _ = writeln!(out, "{indent}/* @hide */");
            }
            (hidden, deprecated) => {
                let _ = writeln!(out, "{indent}/**");
                if hidden {
                    let _ = writeln!(out, "{indent} * @hide");
                }
                if let Some(note) = deprecated {
                    let _ = writeln!(out, "{indent} * @deprecated {note}");
                }
                let _ = writeln!(out, "{indent} */");
            }
        }
    }
}

/// A type as written at a use site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    pub annotations: Vec<Annotation>,
    /// As written; resolved to the fully qualified name by [`Document::resolve`].
    pub name: String,
    pub generics: Vec<TypeRef>,
    /// `None`: not an array; `Some(vec![])`: `T[]`; `Some(dims)`: fixed-size `T[2][3]`.
    pub array: Option<Vec<String>>,
    line: usize,
}

impl TypeRef {
    fn signature(&self) -> String {
        let mut s = self.name.clone();
        if !self.generics.is_empty() {
            let args: Vec<String> = self.generics.iter().map(TypeRef::signature).collect();
            let _ = write!(s, "<{}>", args.join(","));
        }
        match &self.array {
            None => {}
            Some(dims) if dims.is_empty() => s.push_str("[]"),
            Some(dims) => {
                for d in dims {
                    let _ = write!(s, "[{d}]");
                }
            }
        }
        s
    }

    fn dump(&self) -> String {
        let annotations = dump_annotations(&self.annotations);
        if annotations.is_empty() {
            self.signature()
        } else {
            format!("{annotations} {}", self.signature())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    pub direction: Option<String>,
    pub ty: TypeRef,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub doc: Doc,
    pub oneway: bool,
    pub ret: TypeRef,
    pub name: String,
    pub args: Vec<Arg>,
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub doc: Doc,
    pub ty: TypeRef,
    pub name: String,
    pub default: Option<ConstExpr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constant {
    pub doc: Doc,
    pub ty: TypeRef,
    pub name: String,
    pub value: ConstExpr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enumerator {
    pub doc: Doc,
    pub name: String,
    pub value: Option<ConstExpr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Interface,
    Parcelable,
    Union,
    Enum,
}

impl Kind {
    fn keyword(self) -> &'static str {
        match self {
            Kind::Interface => "interface",
            Kind::Parcelable => "parcelable",
            Kind::Union => "union",
            Kind::Enum => "enum",
        }
    }
}

/// A declared type (interface, parcelable, union or enum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDecl {
    pub doc: Doc,
    pub annotations: Vec<Annotation>,
    pub kind: Kind,
    pub name: String,
    pub type_params: Vec<String>,
    pub methods: Vec<Method>,
    pub fields: Vec<Field>,
    pub constants: Vec<Constant>,
    pub enumerators: Vec<Enumerator>,
    pub nested: Vec<TypeDecl>,
}

/// One parsed `.aidl` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub path: PathBuf,
    /// Comments before `package` (the licence), verbatim: a dump repeats them.
    pub header_comments: Vec<String>,
    pub package: String,
    pub imports: Vec<String>,
    pub types: Vec<TypeDecl>,
}

struct Parser<'a> {
    file: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, Error> {
        let line = self
            .toks
            .get(self.pos)
            .or(self.toks.last())
            .map(|t| t.line)
            .unwrap_or(1);
        Err(Error {
            file: self.file.to_owned(),
            line,
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn peek_at(&self, n: usize) -> Option<&Tok> {
        self.toks.get(self.pos + n).map(|t| &t.tok)
    }

    fn comments_here(&self) -> &[String] {
        self.toks
            .get(self.pos)
            .map(|t| t.comments.as_slice())
            .unwrap_or(&[])
    }

    fn line(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.line).unwrap_or(0)
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    fn is_ident(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(w)) if w == word)
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_punct(&mut self, p: &str) -> Result<(), Error> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            self.err(format!("expected `{p}`, found {}", self.describe()))
        }
    }

    fn describe(&self) -> String {
        match self.peek() {
            None => "end of file".into(),
            Some(Tok::Ident(s) | Tok::Int(s) | Tok::Str(s) | Tok::Char(s)) => format!("`{s}`"),
            Some(Tok::Punct(p)) => format!("`{p}`"),
        }
    }

    fn ident(&mut self) -> Result<String, Error> {
        match self.peek() {
            Some(Tok::Ident(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => self.err(format!("expected a name, found {}", self.describe())),
        }
    }

    fn qualified(&mut self) -> Result<String, Error> {
        let mut name = self.ident()?;
        while self.is_punct(".") && matches!(self.peek_at(1), Some(Tok::Ident(_))) {
            self.pos += 1;
            name.push('.');
            name.push_str(&self.ident()?);
        }
        Ok(name)
    }

    fn annotations(&mut self) -> Result<Vec<Annotation>, Error> {
        let mut list = Vec::new();
        while self.eat_punct("@") {
            let name = self.ident()?;
            let mut params = BTreeMap::new();
            if self.eat_punct("(") {
                // `@A(x)` is short for `@A(value=x)`.
                let named = matches!(self.peek(), Some(Tok::Ident(_)))
                    && matches!(self.peek_at(1), Some(Tok::Punct("=")));
                if !named && !self.is_punct(")") {
                    params.insert("value".to_owned(), self.const_expr()?);
                }
                while named && !self.is_punct(")") {
                    let key = self.ident()?;
                    self.expect_punct("=")?;
                    let value = self.const_expr()?;
                    if params.insert(key.clone(), value).is_some() {
                        return self.err(format!("annotation parameter `{key}` given twice"));
                    }
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                self.expect_punct(")")?;
            }
            list.push(Annotation { name, params });
        }
        Ok(list)
    }

    fn type_ref(&mut self) -> Result<TypeRef, Error> {
        let annotations = self.annotations()?;
        let line = self.line();
        let name = self.qualified()?;
        let mut generics = Vec::new();
        if self.eat_punct("<") {
            loop {
                generics.push(self.type_ref()?);
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(">")?;
        }
        let mut array = None;
        while self.eat_punct("[") {
            let dims: &mut Vec<String> = array.get_or_insert_with(Vec::new);
            if let Some(Tok::Int(n)) = self.peek() {
                dims.push(n.clone());
                self.pos += 1;
            }
            self.expect_punct("]")?;
        }
        Ok(TypeRef {
            annotations,
            name,
            generics,
            array,
            line,
        })
    }

    fn const_primary(&mut self) -> Result<ConstExpr, Error> {
        match self.peek().cloned() {
            Some(Tok::Int(s) | Tok::Str(s) | Tok::Char(s)) => {
                self.pos += 1;
                Ok(ConstExpr::Literal(s))
            }
            Some(Tok::Ident(s)) if s == "true" || s == "false" => {
                self.pos += 1;
                Ok(ConstExpr::Literal(s))
            }
            Some(Tok::Ident(_)) => Ok(ConstExpr::Ref(self.qualified()?)),
            Some(Tok::Punct("(")) => {
                self.pos += 1;
                let e = self.const_expr()?;
                self.expect_punct(")")?;
                Ok(e)
            }
            Some(Tok::Punct("{")) => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.is_punct("}") {
                    items.push(self.const_expr()?);
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                self.expect_punct("}")?;
                Ok(ConstExpr::Array(items))
            }
            Some(Tok::Punct(op @ ("-" | "+" | "~" | "!"))) => {
                self.pos += 1;
                Ok(ConstExpr::Unary(op, Box::new(self.const_primary()?)))
            }
            _ => self.err(format!("expected a constant, found {}", self.describe())),
        }
    }

    fn const_expr(&mut self) -> Result<ConstExpr, Error> {
        self.const_binary(0)
    }

    fn const_binary(&mut self, min_prec: u8) -> Result<ConstExpr, Error> {
        const OPS: &[(&str, u8)] = &[
            ("||", 1),
            ("&&", 2),
            ("|", 3),
            ("^", 4),
            ("&", 5),
            ("==", 6),
            ("!=", 6),
            ("<", 7),
            (">", 7),
            ("<=", 7),
            (">=", 7),
            ("<<", 8),
            (">>", 8),
            ("+", 9),
            ("-", 9),
            ("*", 10),
            ("/", 10),
            ("%", 10),
        ];
        let mut left = self.const_primary()?;
        while let Some(Tok::Punct(op)) = self.peek() {
            let Some(&(op, prec)) = OPS.iter().find(|(o, _)| o == op) else {
                break;
            };
            if prec < min_prec {
                break;
            }
            self.pos += 1;
            let right = self.const_binary(prec + 1)?;
            left = ConstExpr::Binary(Box::new(left), op, Box::new(right));
        }
        Ok(left)
    }

    fn document(mut self, path: &Path) -> Result<Document, Error> {
        let header_comments = self.comments_here().to_vec();
        if !self.is_ident("package") {
            return self.err("a stable AIDL file must start with `package`");
        }
        self.pos += 1;
        let package = self.qualified()?;
        self.expect_punct(";")?;
        let mut imports = Vec::new();
        while self.is_ident("import") {
            self.pos += 1;
            imports.push(self.qualified()?);
            self.expect_punct(";")?;
        }
        let mut types = Vec::new();
        while self.peek().is_some() {
            types.push(self.type_decl()?);
        }
        if types.is_empty() {
            return self.err("no type declared");
        }
        Ok(Document {
            path: path.to_owned(),
            header_comments,
            package,
            imports,
            types,
        })
    }

    fn type_decl(&mut self) -> Result<TypeDecl, Error> {
        let doc = Doc::from_comments(self.comments_here());
        let annotations = self.annotations()?;
        let mut oneway = false;
        if self.is_ident("oneway") {
            oneway = true;
            self.pos += 1;
        }
        let kind = match self.ident()?.as_str() {
            "interface" => Kind::Interface,
            "parcelable" => Kind::Parcelable,
            "union" => Kind::Union,
            "enum" => Kind::Enum,
            other => return self.err(format!("expected a type declaration, found `{other}`")),
        };
        if oneway && kind != Kind::Interface {
            return self.err("only an interface can be oneway");
        }
        let name = self.ident()?;
        let mut type_params = Vec::new();
        if self.eat_punct("<") {
            loop {
                type_params.push(self.ident()?);
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct(">")?;
        }
        if self.is_punct(";") {
            return self.err(format!(
                "`{name}` is an unstructured parcelable, which a stable interface cannot use"
            ));
        }
        self.expect_punct("{")?;
        let mut decl = TypeDecl {
            doc,
            annotations,
            kind,
            name,
            type_params,
            methods: Vec::new(),
            fields: Vec::new(),
            constants: Vec::new(),
            enumerators: Vec::new(),
            nested: Vec::new(),
        };
        if kind == Kind::Enum {
            while !self.is_punct("}") {
                let doc = Doc::from_comments(self.comments_here());
                let name = self.ident()?;
                let value = if self.eat_punct("=") {
                    Some(self.const_expr()?)
                } else {
                    None
                };
                decl.enumerators.push(Enumerator { doc, name, value });
                if !self.eat_punct(",") {
                    break;
                }
            }
            self.expect_punct("}")?;
            return Ok(decl);
        }
        while !self.eat_punct("}") {
            if self.peek().is_none() {
                return self.err(format!("`{}` is not closed", decl.name));
            }
            let doc = Doc::from_comments(self.comments_here());
            // Nested type?
            let save = self.pos;
            let _ = self.annotations()?;
            let nested = matches!(self.peek(), Some(Tok::Ident(w)) if matches!(w.as_str(), "interface" | "parcelable" | "union" | "enum"));
            self.pos = save;
            if nested {
                decl.nested.push(self.type_decl()?);
                continue;
            }
            if self.is_ident("const") {
                self.pos += 1;
                let ty = self.type_ref()?;
                let name = self.ident()?;
                self.expect_punct("=")?;
                let value = self.const_expr()?;
                self.expect_punct(";")?;
                decl.constants.push(Constant {
                    doc,
                    ty,
                    name,
                    value,
                });
                continue;
            }
            let mut method_oneway = oneway;
            if kind == Kind::Interface && self.is_ident("oneway") {
                method_oneway = true;
                self.pos += 1;
            }
            let ty = self.type_ref()?;
            let name = self.ident()?;
            if kind == Kind::Interface {
                self.expect_punct("(")?;
                let mut args = Vec::new();
                while !self.is_punct(")") {
                    let save = self.pos;
                    let _ = self.annotations()?;
                    let direction = match self.peek() {
                        Some(Tok::Ident(d)) if matches!(d.as_str(), "in" | "out" | "inout") => {
                            Some(d.clone())
                        }
                        _ => None,
                    };
                    self.pos = save;
                    let direction = if let Some(d) = direction {
                        // Annotations may come before or after the direction.
                        let before = self.annotations()?;
                        self.pos += 1;
                        let mut ty = self.type_ref()?;
                        ty.annotations.extend(before);
                        let name = self.ident()?;
                        args.push(Arg {
                            direction: Some(d),
                            ty,
                            name,
                        });
                        true
                    } else {
                        false
                    };
                    if !direction {
                        let ty = self.type_ref()?;
                        let name = self.ident()?;
                        args.push(Arg {
                            direction: None,
                            ty,
                            name,
                        });
                    }
                    if !self.eat_punct(",") {
                        break;
                    }
                }
                self.expect_punct(")")?;
                let id = if self.eat_punct("=") {
                    match self.peek().cloned() {
                        Some(Tok::Int(n)) => {
                            self.pos += 1;
                            Some(n)
                        }
                        _ => return self.err("expected a transaction id"),
                    }
                } else {
                    None
                };
                self.expect_punct(";")?;
                decl.methods.push(Method {
                    doc,
                    oneway: method_oneway,
                    ret: ty,
                    name,
                    args,
                    id,
                });
            } else {
                let default = if self.eat_punct("=") {
                    Some(self.const_expr()?)
                } else {
                    None
                };
                self.expect_punct(";")?;
                decl.fields.push(Field {
                    doc,
                    ty,
                    name,
                    default,
                });
            }
        }
        Ok(decl)
    }
}

/// Parses one `.aidl` file's text. `path` is only used in messages and kept in the result.
pub fn parse(path: &Path, src: &str) -> Result<Document, Error> {
    let file = path.display().to_string();
    let (toks, trailing) = lex(&file, src)?;
    let _ = trailing;
    Parser {
        file: &file,
        toks,
        pos: 0,
    }
    .document(path)
}

/// Parses every `*.aidl` file below `root` (sorted by path).
pub fn parse_tree(root: &Path) -> Result<Vec<Document>, Error> {
    let mut files = Vec::new();
    collect_aidl(root, &mut files).map_err(|e| Error {
        file: root.display().to_string(),
        line: 0,
        message: e.to_string(),
    })?;
    files.sort();
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| Error {
            file: f.display().to_string(),
            line: 0,
            message: e.to_string(),
        })?;
        docs.push(parse(&f, &text)?);
    }
    Ok(docs)
}

/// Every `*.aidl` file below `dir`, recursively.
pub fn collect_aidl(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_aidl(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "aidl") {
            out.push(path);
        }
    }
    Ok(())
}

/// A set of documents compiled together (one aidl_interface, or one API snapshot).
pub struct Unit {
    pub docs: Vec<Document>,
}

impl Unit {
    /// Parses `root` and resolves every type name; fails on names it cannot resolve.
    pub fn load(root: &Path) -> Result<Unit, Error> {
        let mut unit = Unit {
            docs: parse_tree(root)?,
        };
        unit.resolve()?;
        Ok(unit)
    }

    /// Fully qualified names of every type declared in the unit (nested ones as `Outer.Inner`).
    pub fn declared(&self) -> Vec<String> {
        fn walk(prefix: &str, t: &TypeDecl, out: &mut Vec<String>) {
            let name = format!("{prefix}.{}", t.name);
            for n in &t.nested {
                walk(&name, n, out);
            }
            out.push(name);
        }
        let mut out = Vec::new();
        for d in &self.docs {
            for t in &d.types {
                walk(&d.package, t, &mut out);
            }
        }
        out.sort();
        out
    }

    fn resolve(&mut self) -> Result<(), Error> {
        let declared = self.declared();
        for doc in &mut self.docs {
            let file = doc.path.display().to_string();
            let ctx = Ctx {
                file: &file,
                package: &doc.package,
                imports: &doc.imports,
                declared: &declared,
            };
            for imp in &doc.imports {
                if !declared.contains(imp) {
                    return Err(Error {
                        file: file.clone(),
                        line: 0,
                        message: format!(
                            "import `{imp}` is not declared in this interface (imports of other \
                             aidl_interface modules are not supported by this checker)"
                        ),
                    });
                }
            }
            for t in &mut doc.types {
                let scope = format!("{}.{}", doc.package, t.name);
                resolve_decl(&ctx, &scope, t)?;
            }
        }
        Ok(())
    }

    /// The `aidl --dumpapi`-style body of every declared top-level type, keyed by its fully
    /// qualified name: what `--checkapi=equal` compares (no licence, no banner).
    pub fn api(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for d in &self.docs {
            for t in &d.types {
                out.insert(format!("{}.{}", d.package, t.name), dump_type_body(d, t));
            }
        }
        out
    }
}

struct Ctx<'a> {
    file: &'a str,
    package: &'a str,
    imports: &'a [String],
    declared: &'a [String],
}

fn resolve_decl(ctx: &Ctx<'_>, scope: &str, t: &mut TypeDecl) -> Result<(), Error> {
    let params = t.type_params.clone();
    for m in &mut t.methods {
        resolve_type(ctx, scope, &params, &mut m.ret)?;
        for a in &mut m.args {
            resolve_type(ctx, scope, &params, &mut a.ty)?;
        }
    }
    for f in &mut t.fields {
        resolve_type(ctx, scope, &params, &mut f.ty)?;
    }
    for c in &mut t.constants {
        resolve_type(ctx, scope, &params, &mut c.ty)?;
    }
    for n in &mut t.nested {
        let inner = format!("{scope}.{}", n.name);
        resolve_decl(ctx, &inner, n)?;
    }
    Ok(())
}

fn resolve_type(
    ctx: &Ctx<'_>,
    scope: &str,
    params: &[String],
    ty: &mut TypeRef,
) -> Result<(), Error> {
    for g in &mut ty.generics {
        resolve_type(ctx, scope, params, g)?;
    }
    let name = ty.name.clone();
    if BUILTIN_TYPES.contains(&name.as_str()) || params.contains(&name) {
        return Ok(());
    }
    let first = name.split('.').next().unwrap_or(&name);
    let rest = &name[first.len()..];
    // Nested types visible from the current scope, innermost first.
    let mut s = scope.to_owned();
    loop {
        let candidate = format!("{s}.{first}{rest}");
        if ctx.declared.contains(&candidate) {
            ty.name = candidate;
            return Ok(());
        }
        match s.rfind('.') {
            Some(p) if s[..p].len() >= ctx.package.len() => s.truncate(p),
            _ => break,
        }
    }
    if let Some(imp) = ctx
        .imports
        .iter()
        .find(|i| i.rsplit('.').next() == Some(first))
    {
        ty.name = format!("{imp}{rest}");
        return Ok(());
    }
    if ctx.declared.contains(&name) {
        return Ok(());
    }
    Err(Error {
        file: ctx.file.to_owned(),
        line: ty.line,
        message: format!("cannot resolve type `{name}`"),
    })
}

/// The dump of one top-level type, without licence and banner: from its comments and
/// annotations to the closing brace, as `aidl --dumpapi` writes it after the `package` line
/// (two-space indent, one member per line: the canonical form the checks compare).
pub fn dump_type_body(doc: &Document, t: &TypeDecl) -> String {
    let _ = doc;
    let mut out = String::new();
    dump_decl(&mut out, 0, t, "  ");
    out
}

fn dump_decl(out: &mut String, depth: usize, t: &TypeDecl, unit: &str) {
    let ind = unit.repeat(depth);
    let inner = unit.repeat(depth + 1);
    t.doc.dump(out, &ind);
    let annotations = dump_annotations(&t.annotations);
    if !annotations.is_empty() {
        let _ = writeln!(out, "{ind}{annotations}");
    }
    let _ = write!(out, "{ind}{} {}", t.kind.keyword(), t.name);
    if !t.type_params.is_empty() {
        let _ = write!(out, "<{}>", t.type_params.join(", "));
    }
    out.push_str(" {\n");
    if t.kind == Kind::Enum {
        for e in &t.enumerators {
            e.doc.dump(out, &inner);
            let _ = write!(out, "{inner}{}", e.name);
            if let Some(v) = &e.value {
                out.push_str(" = ");
                v.dump(out);
            }
            out.push_str(",\n");
        }
    }
    for m in &t.methods {
        m.doc.dump(out, &inner);
        let args: Vec<String> = m
            .args
            .iter()
            .map(|a| match &a.direction {
                Some(d) => format!("{d} {} {}", a.ty.dump(), a.name),
                None => format!("{} {}", a.ty.dump(), a.name),
            })
            .collect();
        let _ = write!(
            out,
            "{inner}{}{} {}({})",
            if m.oneway { "oneway " } else { "" },
            m.ret.dump(),
            m.name,
            args.join(", ")
        );
        if let Some(id) = &m.id {
            let _ = write!(out, " = {id}");
        }
        out.push_str(";\n");
    }
    for f in &t.fields {
        f.doc.dump(out, &inner);
        let _ = write!(out, "{inner}{} {}", f.ty.dump(), f.name);
        if let Some(v) = &f.default {
            out.push_str(" = ");
            dump_value(out, v);
        }
        out.push_str(";\n");
    }
    for c in &t.constants {
        c.doc.dump(out, &inner);
        let _ = write!(out, "{inner}const {} {} = ", c.ty.dump(), c.name);
        dump_value(out, &c.value);
        out.push_str(";\n");
    }
    for n in &t.nested {
        dump_decl(out, depth + 1, n, unit);
    }
    let _ = writeln!(out, "{ind}}}");
}

fn dump_value(out: &mut String, v: &ConstExpr) {
    v.dump(out);
    if !v.is_trivial() {
        // aidl appends the evaluated value as a comment; this checker does not evaluate, so it
        // marks the expression instead. Both sides of a comparison are dumped the same way.
        out.push_str(" /* expression */");
    }
}

/// The text this project writes at the top of every snapshot file, after the source's licence.
/// (AOSP's own tool writes a similar warning; the hash and the API checks do not depend on it.)
pub const SNAPSHOT_BANNER: &str = "\
///////////////////////////////////////////////////////////////////////////////
// FROZEN AIDL API SNAPSHOT. DO NOT EDIT.                                    //
///////////////////////////////////////////////////////////////////////////////

// Written by `cargo run -p android-checks --bin aidl-api` (or Soong's
// `m <module>-update-api` / `m <module>-freeze-api`) from the sources of the
// aidl_interface. A numbered directory is a released version: devices in the
// field implement or call it, so it never changes. Change the interface in the
// sources, then update `current/` and, when the change is ready to ship, freeze
// it as the next version.

";

/// The complete snapshot file for the top-level type `t` of `doc`: licence comments, banner,
/// package line and the dumped type.
pub fn snapshot_file(doc: &Document, t: &TypeDecl) -> String {
    let mut out = String::new();
    let mut needs_newline = false;
    for c in &doc.header_comments {
        out.push_str(c);
        needs_newline = !c.ends_with('\n');
    }
    if needs_newline {
        out.push('\n');
    }
    out.push_str(SNAPSHOT_BANNER);
    let _ = writeln!(out, "package {};", doc.package);
    // Current AOSP formats snapshots with a four-space indent; layout does not affect the checks.
    dump_decl(&mut out, 0, t, "    ");
    out
}

/// Where a snapshot file of `package.Name` lives inside a version directory.
pub fn snapshot_path(package: &str, name: &str) -> PathBuf {
    let mut p: PathBuf = package.split('.').collect();
    p.push(format!("{name}.aidl"));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(files: &[(&str, &str)]) -> Unit {
        let mut docs = Vec::new();
        for (path, src) in files {
            docs.push(parse(Path::new(path), src).unwrap());
        }
        let mut u = Unit { docs };
        u.resolve().unwrap();
        u
    }

    #[test]
    fn dump_layout_follows_dumpapi() {
        let u = unit(&[
            (
                "a/b/IThing.aidl",
                "/* licence */\npackage a.b;\nimport a.b.Item;\n/** Doc that is dropped. */\n\
                 @VintfStability interface IThing {\n  const int LIMIT = 4;\n  /** @hide */\n  \
                 @utf8InCpp String name(in Item item, int n);\n  oneway void poke(in Item[] items) = 7;\n}\n",
            ),
            (
                "a/b/Item.aidl",
                "package a.b;\n@VintfStability @JavaDerive(toString=true) parcelable Item {\n  \
                 ParcelFileDescriptor fd;\n  long size = 4096;\n  @nullable Item next;\n}\n",
            ),
        ]);
        let api = unit_api(&u);
        assert_eq!(
            api["a.b.IThing"],
            "@VintfStability\ninterface IThing {\n  /* @hide */\n  @utf8InCpp String name(in a.b.Item item, int n);\n  \
             oneway void poke(in a.b.Item[] items) = 7;\n  const int LIMIT = 4;\n}\n"
        );
        assert_eq!(
            api["a.b.Item"],
            "@JavaDerive(toString=true) @VintfStability\nparcelable Item {\n  ParcelFileDescriptor fd;\n  \
             long size = 4096;\n  @nullable a.b.Item next;\n}\n"
        );
    }

    fn unit_api(u: &Unit) -> BTreeMap<String, String> {
        u.api()
    }

    #[test]
    fn snapshot_keeps_licence_and_adds_banner() {
        let u = unit(&[(
            "p/E.aidl",
            "// line licence\n/* block */\npackage p;\n@Backing(type=\"byte\") enum E { A = 1, B, }\n",
        )]);
        let d = &u.docs[0];
        let text = snapshot_file(d, &d.types[0]);
        assert!(text.starts_with("// line licence\n/* block */\n////"));
        assert!(text
            .ends_with("package p;\n@Backing(type=\"byte\")\nenum E {\n    A = 1,\n    B,\n}\n"));
    }

    #[test]
    fn comments_and_formatting_do_not_change_the_api() {
        let a = unit(&[("p/I.aidl", "package p; interface I { void f(int x); }")]);
        let b = unit(&[(
            "p/I.aidl",
            "package p;\n// c\ninterface I {\n    /** text */\n    void f(\n        int x);\n}\n",
        )]);
        assert_eq!(a.api(), b.api());
    }

    #[test]
    fn positional_annotation_value_is_value() {
        let a = unit(&[(
            "p/P.aidl",
            "package p; @JavaSuppressLint({\"NewApi\"}) parcelable P {}",
        )]);
        let b = unit(&[(
            "p/P.aidl",
            "package p; @JavaSuppressLint(value={\"NewApi\"}) parcelable P {}",
        )]);
        assert_eq!(a.api(), b.api());
        assert!(a.api()["p.P"].starts_with("@JavaSuppressLint(value={\"NewApi\"})\n"));
    }

    #[test]
    fn deprecation_is_part_of_the_api() {
        let a = unit(&[("p/I.aidl", "package p; interface I { void f(); }")]);
        let b = unit(&[(
            "p/I.aidl",
            "package p; interface I { /** @deprecated use g */ void f(); }",
        )]);
        assert_ne!(a.api(), b.api());
        assert!(b.api()["p.I"].contains("   * @deprecated use g\n"));
    }

    #[test]
    fn unresolved_and_malformed_inputs_are_errors() {
        let d = parse(
            Path::new("p/I.aidl"),
            "package p; interface I { Missing f(); }",
        )
        .unwrap();
        let mut u = Unit { docs: vec![d] };
        let e = u.resolve().unwrap_err();
        assert!(e.message.contains("Missing"), "{e}");
        let e = parse(
            Path::new("p/I.aidl"),
            "package p;\ninterface I {\n void f(;\n}",
        )
        .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(parse(Path::new("x.aidl"), "interface I {}").is_err());
        assert!(parse(Path::new("x.aidl"), "package p; parcelable P;").is_err());
    }

    #[test]
    fn nested_types_and_expressions() {
        let u = unit(&[(
            "p/P.aidl",
            "package p; parcelable P { const int A = 1 << 2; Inner i; parcelable Inner { int x = -1; } }",
        )]);
        let api = u.api();
        assert_eq!(
            api["p.P"],
            "parcelable P {\n  p.P.Inner i;\n  const int A = (1 << 2) /* expression */;\n  parcelable Inner {\n    \
             int x = (-1) /* expression */;\n  }\n}\n"
        );
    }
}
