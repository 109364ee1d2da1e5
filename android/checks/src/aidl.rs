//! The AIDL side of the `aidl_api/` checks: reads an interface's `.aidl` files and writes each
//! type the way `aidl --dumpapi` lays it out in a snapshot (user-defined types fully qualified,
//! one member per line, methods then fields then constants then nested types, annotations
//! sorted, and only the `@hide`/`@deprecated` parts of comments kept).
//!
//! **rsbinder-aidl decides what valid AIDL is.** Every file first goes through
//! [`rsbinder_aidl::parse_document`], the parser of the compiler the `aidl` crate builds with, so
//! these checks never accept a file the build rejects, and a syntax error comes with
//! rsbinder-aidl's own message and line.
//!
//! What rsbinder-aidl 0.12 cannot hand to another crate, this module reads itself from the file
//! rsbinder-aidl has just accepted (README, "Why the snapshot dumper reads AIDL itself"):
//! - its AST types (`Declaration`, `InterfaceDecl`, `MethodDecl`, `EnumDecl`, ...) live in a
//!   private module: another crate cannot `match` on a declaration's kind, so an interface's
//!   methods and an enum's enumerators are out of reach (the doctest below fails to compile);
//! - it drops what a dump must keep: `@hide` comments, the licence above `package`, constants as
//!   written (`0x10` and `16` parse to the same value) and annotation parameters (private fields).
//!
//! ```compile_fail,E0603
//! let ctx = rsbinder_aidl::SourceContext::new("p/I.aidl", "package p; interface I { void f(); }");
//! let doc = rsbinder_aidl::parse_document(&ctx).unwrap();
//! if let rsbinder_aidl::parser::Declaration::Interface(i) = &doc.decls[0] {
//!     assert_eq!(i.method_list.len(), 1);
//! }
//! ```
//!
//! Because rsbinder-aidl has checked the grammar, the reader below only has to follow it; a
//! construct it still does not know is an error naming the file and line, never a silent pass.

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

/// The words that open a type declaration.
const DECL_KEYWORDS: &[&str] = &["interface", "parcelable", "union", "enum"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A name, keyword or literal, exactly as written.
    Word(String),
    Punct(&'static str),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    /// Comments (raw text) between the previous token and this one.
    comments: Vec<String>,
}

const PUNCTS: &[&str] = &[
    "<<", ">>", "&&", "||", "==", "!=", "<=", ">=", "{", "}", "(", ")", "[", "]", "<", ">", ";",
    ",", "=", "@", ".", "+", "-", "*", "/", "%", "&", "|", "^", "~", "!", "?", ":",
];

/// Splits an accepted file into tokens; only what rsbinder-aidl's grammar allows needs handling.
fn lex(file: &str, src: &str) -> Result<Vec<Token>, Error> {
    let bytes = src.as_bytes();
    let (mut i, mut line) = (0, 1);
    let mut out = Vec::new();
    let mut pending = Vec::new();
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c.is_ascii_whitespace() {
            line += usize::from(c == b'\n');
            i += 1;
            continue;
        }
        if src[i..].starts_with("//") || src[i..].starts_with("/*") {
            let end = if src[i..].starts_with("//") {
                src[i..].find('\n').map_or(src.len(), |n| i + n)
            } else {
                src[i + 2..].find("*/").map_or(src.len(), |n| i + 2 + n + 2)
            };
            line += src[i..end].matches('\n').count();
            pending.push(src[i..end].to_owned());
            i = end;
            continue;
        }
        let tok = if c.is_ascii_alphanumeric() || c == b'_' {
            // Names, keywords and numbers (`0x1F`, `1_000L`, `1.5e-3f`).
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || b"_.".contains(&bytes[i]))
            {
                let exponent_sign = c.is_ascii_digit()
                    && matches!(bytes[i], b'e' | b'E')
                    && !src[start..i].contains(['x', 'X'])
                    && matches!(bytes.get(i + 1), Some(b'+' | b'-'));
                i += if exponent_sign { 2 } else { 1 };
            }
            Tok::Word(src[start..i].to_owned())
        } else if c == b'"' || c == b'\'' {
            i += 1;
            while i < bytes.len() && bytes[i] != c {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            Tok::Word(src[start..i].to_owned())
        } else if let Some(p) = PUNCTS.iter().find(|p| src[i..].starts_with(**p)) {
            i += p.len();
            Tok::Punct(p)
        } else {
            let ch = src[i..].chars().next().unwrap_or('?');
            return Err(Error {
                file: file.to_owned(),
                line,
                message: format!("unexpected character {ch:?}"),
            });
        };
        out.push(Token {
            tok,
            line,
            comments: std::mem::take(&mut pending),
        });
    }
    Ok(out)
}

/// What a comment says that a dump keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Doc {
    pub hidden: bool,
    pub deprecated: Option<String>,
}

impl Doc {
    fn from_comments(comments: &[String]) -> Doc {
        // `@hide` counts in any comment before the declaration, `@deprecated` in the last one.
        let deprecated = comments.last().and_then(|c| {
            let rest = &c[c.find("@deprecated")? + "@deprecated".len()..];
            let note: Vec<&str> = rest
                .trim_end_matches("*/")
                .lines()
                .map(|l| l.trim().trim_start_matches('*').trim())
                .take_while(|l| !l.starts_with('@'))
                .filter(|l| !l.is_empty())
                .collect();
            Some(note.join(" "))
        });
        Doc {
            hidden: comments.iter().any(|c| c.contains("@hide")),
            deprecated,
        }
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

/// Annotations as dumped (`@Name` or `@Name(key=value, ...)` with keys sorted), in source order.
pub type Annotations = Vec<String>;

fn dump_annotations(annotations: &[String]) -> String {
    let mut list = annotations.to_vec();
    list.sort();
    list.join(" ")
}

/// A type as written at a use site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeRef {
    pub annotations: Annotations,
    /// As written; fully qualified once the unit is resolved.
    pub name: String,
    pub generics: Vec<TypeRef>,
    /// `""`, `"[]"`, or fixed dimensions such as `"[2][3]"`.
    pub array: String,
    line: usize,
}

impl TypeRef {
    fn dump(&self) -> String {
        let mut s = dump_annotations(&self.annotations);
        if !s.is_empty() {
            s.push(' ');
        }
        s.push_str(&self.name);
        if !self.generics.is_empty() {
            let args: Vec<String> = self.generics.iter().map(TypeRef::dump).collect();
            let _ = write!(s, "<{}>", args.join(","));
        }
        s + &self.array
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    pub doc: Doc,
    pub annotations: Annotations,
    pub oneway: bool,
    pub ret: TypeRef,
    pub name: String,
    /// `(direction, type, name)`.
    pub args: Vec<(Option<String>, TypeRef, String)>,
    pub id: Option<String>,
}

/// A field, constant or enumerator: enumerators have no type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub doc: Doc,
    pub annotations: Annotations,
    pub ty: Option<TypeRef>,
    pub name: String,
    /// The value expression as written, in canonical spacing.
    pub value: Option<String>,
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
    pub annotations: Annotations,
    pub kind: Kind,
    pub name: String,
    pub type_params: Vec<String>,
    pub methods: Vec<Method>,
    pub fields: Vec<Member>,
    pub constants: Vec<Member>,
    pub enumerators: Vec<Member>,
    pub nested: Vec<TypeDecl>,
}

/// One read `.aidl` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub path: PathBuf,
    /// Comments before `package` (the licence), verbatim: a snapshot repeats them.
    pub header_comments: Vec<String>,
    pub package: String,
    pub imports: Vec<String>,
    pub types: Vec<TypeDecl>,
}

/// Follows rsbinder-aidl's grammar (`aidl.pest`) over a file it has accepted.
struct Reader<'a> {
    file: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

impl Reader<'_> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, Error> {
        let line = self.toks.get(self.pos).or(self.toks.last());
        Err(Error {
            file: self.file.to_owned(),
            line: line.map_or(1, |t| t.line),
            message: message.into(),
        })
    }

    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn comments_here(&self) -> &[String] {
        self.toks.get(self.pos).map_or(&[], |t| &t.comments)
    }

    fn is(&self, text: &str) -> bool {
        match self.peek() {
            Some(Tok::Word(w)) => w == text,
            Some(Tok::Punct(p)) => *p == text,
            None => false,
        }
    }

    fn eat(&mut self, text: &str) -> bool {
        let found = self.is(text);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, text: &str) -> Result<(), Error> {
        if self.eat(text) {
            Ok(())
        } else {
            self.err(format!("the dump reader expected `{text}` here"))
        }
    }

    fn word(&mut self) -> Result<String, Error> {
        match self.peek() {
            Some(Tok::Word(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => self.err("the dump reader expected a name here"),
        }
    }

    /// `a.b.C`: rsbinder-aidl's `qualified_name` has no spaces, so neither has the dump.
    fn qualified(&mut self) -> Result<String, Error> {
        let mut name = self.word()?;
        while self.is(".") {
            self.pos += 1;
            name.push('.');
            name.push_str(&self.word()?);
        }
        Ok(name)
    }

    fn annotations(&mut self) -> Result<Annotations, Error> {
        let mut list = Vec::new();
        while self.eat("@") {
            let name = self.word()?;
            if !self.eat("(") {
                list.push(format!("@{name}"));
                continue;
            }
            // `@A(x)` is short for `@A(value=x)`.
            let named = matches!(self.toks.get(self.pos + 1), Some(t) if t.tok == Tok::Punct("="));
            let mut params = BTreeMap::new();
            if !named && !self.is(")") {
                params.insert("value".to_owned(), self.const_expr(&[")"])?);
            }
            while named && !self.is(")") {
                let key = self.word()?;
                self.expect("=")?;
                params.insert(key, self.const_expr(&[",", ")"])?);
                self.eat(",");
            }
            self.expect(")")?;
            let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            list.push(format!("@{name}({})", params.join(", ")));
        }
        Ok(list)
    }

    fn type_ref(&mut self) -> Result<TypeRef, Error> {
        let annotations = self.annotations()?;
        let line = self.toks.get(self.pos).map_or(0, |t| t.line);
        let name = self.qualified()?;
        let mut generics = Vec::new();
        if self.eat("<") {
            loop {
                generics.push(self.type_ref()?);
                if !self.eat(",") {
                    break;
                }
            }
            // `List<List<T>>` ends in one `>>` token: the inner list takes half of it.
            if self.is(">>") {
                self.toks[self.pos].tok = Tok::Punct(">");
            } else {
                self.expect(">")?;
            }
        }
        let mut array = String::new();
        while self.eat("[") {
            let size = if self.is("]") {
                String::new()
            } else {
                self.const_expr(&["]"])?
            };
            self.expect("]")?;
            let _ = write!(array, "[{size}]");
        }
        Ok(TypeRef {
            annotations,
            name,
            generics,
            array,
            line,
        })
    }

    /// A constant expression, as written: the tokens up to one of `ends` outside brackets, in
    /// canonical spacing, so layout changes are not API changes but any other change is.
    fn const_expr(&mut self, ends: &[&str]) -> Result<String, Error> {
        let mut tokens = Vec::new();
        let mut depth = 0usize;
        while let Some(tok) = self.peek() {
            let text = match tok {
                Tok::Word(w) => w.as_str(),
                Tok::Punct(p) => p,
            };
            if depth == 0 && ends.contains(&text) {
                break;
            }
            match text {
                "(" | "{" => depth += 1,
                ")" | "}" => depth = depth.saturating_sub(1),
                _ => {}
            }
            tokens.push(tok.clone());
            self.pos += 1;
        }
        if tokens.is_empty() {
            return self.err("the dump reader expected a constant here");
        }
        Ok(canonical_expr(&tokens))
    }

    fn document(mut self, path: &Path) -> Result<Document, Error> {
        let header_comments = self.comments_here().to_vec();
        if !self.eat("package") {
            return self.err("a stable AIDL file must start with `package`");
        }
        let package = self.qualified()?;
        self.expect(";")?;
        let mut imports = Vec::new();
        while self.eat("import") {
            imports.push(self.qualified()?);
            self.expect(";")?;
        }
        let mut types = Vec::new();
        while self.peek().is_some() {
            types.push(self.type_decl()?);
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
        let oneway = self.eat("oneway");
        let kind = match self.word()?.as_str() {
            "interface" => Kind::Interface,
            "parcelable" => Kind::Parcelable,
            "union" => Kind::Union,
            "enum" => Kind::Enum,
            other => return self.err(format!("expected a type declaration, found `{other}`")),
        };
        let name = self.word()?;
        let mut type_params = Vec::new();
        if self.eat("<") {
            loop {
                let annotations = dump_annotations(&self.annotations()?);
                let param = self.word()?;
                type_params.push(format!("{annotations} {param}").trim_start().to_owned());
                if !self.eat(",") {
                    break;
                }
            }
            self.expect(">")?;
        }
        if !self.is("{") {
            return self.err(format!(
                "`{name}` has no body: an unstructured parcelable or a forward declaration, \
                 which a stable interface cannot use"
            ));
        }
        self.pos += 1;
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
        while !self.eat("}") {
            if self.peek().is_none() {
                return self.err(format!("`{}` is not closed", decl.name));
            }
            let doc = Doc::from_comments(self.comments_here());
            if kind == Kind::Enum {
                let name = self.word()?;
                let value = if self.eat("=") {
                    Some(self.const_expr(&[",", "}"])?)
                } else {
                    None
                };
                self.eat(",");
                decl.enumerators.push(Member {
                    doc,
                    annotations: Vec::new(),
                    ty: None,
                    name,
                    value,
                });
                continue;
            }
            let start = self.pos;
            let annotations = self.annotations()?;
            if self.at_type_keyword() {
                self.pos = start;
                decl.nested.push(self.type_decl()?);
                continue;
            }
            let constant = self.eat("const");
            // A oneway interface makes every method oneway; AOSP's dump says so per method.
            let method_oneway =
                kind == Kind::Interface && !constant && (self.eat("oneway") || oneway);
            if !constant && kind != Kind::Interface {
                // A field: its annotations belong to its type (`variable_decl = type ...`).
                self.pos = start;
            }
            let ty = self.type_ref()?;
            let name = self.word()?;
            if kind == Kind::Interface && !constant {
                decl.methods
                    .push(self.method_rest(doc, annotations, method_oneway, ty, name)?);
                continue;
            }
            let value = if self.eat("=") {
                Some(self.const_expr(&[";"])?)
            } else {
                None
            };
            self.expect(";")?;
            let member = Member {
                doc,
                annotations: if constant { annotations } else { Vec::new() },
                ty: Some(ty),
                name,
                value,
            };
            if constant {
                decl.constants.push(member);
            } else {
                decl.fields.push(member);
            }
        }
        Ok(decl)
    }

    /// Whether a (nested) type declaration starts here: `oneway interface` does, `oneway void
    /// f()` is a method.
    fn at_type_keyword(&self) -> bool {
        let next_is_interface = matches!(self.toks.get(self.pos + 1), Some(t) if t.tok == Tok::Word("interface".into()));
        DECL_KEYWORDS.iter().any(|k| self.is(k)) || (self.is("oneway") && next_is_interface)
    }

    fn method_rest(
        &mut self,
        doc: Doc,
        annotations: Annotations,
        oneway: bool,
        ret: TypeRef,
        name: String,
    ) -> Result<Method, Error> {
        self.expect("(")?;
        let mut args = Vec::new();
        while !self.is(")") {
            let direction = ["in", "out", "inout"]
                .into_iter()
                .find(|d| self.eat(d))
                .map(str::to_owned);
            let ty = self.type_ref()?;
            args.push((direction, ty, self.word()?));
            if !self.eat(",") {
                break;
            }
        }
        self.expect(")")?;
        let id = if self.eat("=") {
            Some(self.word()?)
        } else {
            None
        };
        self.expect(";")?;
        Ok(Method {
            doc,
            annotations,
            oneway,
            ret,
            name,
            args,
            id,
        })
    }
}

/// `a+b*( -c )` -> `a + b * (-c)`: one space around binary operators, none inside brackets,
/// after a unary operator or before a comma.
fn canonical_expr(tokens: &[Tok]) -> String {
    let mut out = String::new();
    // At the start, after an operator or an opening bracket, an operand comes next, so a
    // `-`, `+`, `~` or `!` there is unary.
    let mut operand_next = true;
    let mut tight_after = true;
    for tok in tokens {
        let (text, is_punct) = match tok {
            Tok::Word(w) => (w.as_str(), false),
            Tok::Punct(p) => (*p, true),
        };
        let closing = matches!(text, ")" | "}" | ",");
        if !tight_after && !closing {
            out.push(' ');
        }
        out.push_str(text);
        let unary = operand_next && matches!(text, "-" | "+" | "~" | "!");
        tight_after = unary || matches!(text, "(" | "{");
        operand_next = is_punct && !matches!(text, ")" | "}");
    }
    out
}

/// Where rsbinder-aidl puts a syntax error: its message and the line of its span.
fn rsbinder_error(file: &str, src: &str, e: &rsbinder_aidl::AidlError) -> Error {
    let (line, message) = match e {
        rsbinder_aidl::AidlError::Parse(p) => {
            let line = 1 + src[..p.span.offset().min(src.len())].matches('\n').count();
            (line, format!("{e}: {}", p.message))
        }
        other => (0, other.to_string()),
    };
    Error {
        file: file.to_owned(),
        line,
        message: format!("rejected by rsbinder-aidl's parser: {message}"),
    }
}

/// Reads one `.aidl` file's text. `path` is only used in messages and kept in the result.
pub fn parse(path: &Path, src: &str) -> Result<Document, Error> {
    let file = path.display().to_string();
    let ctx = rsbinder_aidl::SourceContext::new(file.clone(), src);
    rsbinder_aidl::parse_document(&ctx).map_err(|e| rsbinder_error(&file, src, &e))?;
    Reader {
        file: &file,
        toks: lex(&file, src)?,
        pos: 0,
    }
    .document(path)
}

/// Reads every `*.aidl` file below `root` (sorted by path).
pub fn parse_tree(root: &Path) -> Result<Vec<Document>, Error> {
    let io_error = |f: &Path, e: std::io::Error| Error {
        file: f.display().to_string(),
        line: 0,
        message: e.to_string(),
    };
    let mut files = Vec::new();
    collect_aidl(root, &mut files).map_err(|e| io_error(root, e))?;
    files.sort();
    files
        .iter()
        .map(|f| parse(f, &std::fs::read_to_string(f).map_err(|e| io_error(f, e))?))
        .collect()
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
    /// Reads `root` and resolves every type name; fails on names it cannot resolve.
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
            if let Some(imp) = doc.imports.iter().find(|i| !declared.contains(i)) {
                return Err(Error {
                    file,
                    line: 0,
                    message: format!(
                        "import `{imp}` is not declared in this interface (imports of other \
                         aidl_interface modules are not supported by this checker)"
                    ),
                });
            }
            let ctx = Ctx {
                file: &file,
                package: &doc.package,
                imports: &doc.imports,
                declared: &declared,
            };
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
                out.insert(format!("{}.{}", d.package, t.name), dump_type_body(t));
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
    let params: Vec<String> = t
        .type_params
        .iter()
        .filter_map(|p| p.rsplit(' ').next().map(str::to_owned))
        .collect();
    let member_types = t.fields.iter_mut().chain(&mut t.constants);
    let mut types: Vec<&mut TypeRef> = member_types.filter_map(|m| m.ty.as_mut()).collect();
    for m in &mut t.methods {
        types.push(&mut m.ret);
        types.extend(m.args.iter_mut().map(|a| &mut a.1));
    }
    for ty in types {
        resolve_type(ctx, scope, &params, ty)?;
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
pub fn dump_type_body(t: &TypeDecl) -> String {
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
    for e in &t.enumerators {
        e.doc.dump(out, &inner);
        let value = e
            .value
            .as_ref()
            .map(|v| format!(" = {v}"))
            .unwrap_or_default();
        let _ = writeln!(out, "{inner}{}{value},", e.name);
    }
    for m in &t.methods {
        m.doc.dump(out, &inner);
        let mut prefix = dump_annotations(&m.annotations);
        if !prefix.is_empty() {
            prefix.push(' ');
        }
        if m.oneway {
            prefix.push_str("oneway ");
        }
        let args: Vec<String> = m
            .args
            .iter()
            .map(|(direction, ty, name)| match direction {
                Some(d) => format!("{d} {} {name}", ty.dump()),
                None => format!("{} {name}", ty.dump()),
            })
            .collect();
        let id =
            m.id.as_ref()
                .map(|id| format!(" = {id}"))
                .unwrap_or_default();
        let _ = writeln!(
            out,
            "{inner}{prefix}{} {}({}){id};",
            m.ret.dump(),
            m.name,
            args.join(", ")
        );
    }
    for (keyword, members) in [("", &t.fields), ("const ", &t.constants)] {
        for m in members {
            m.doc.dump(out, &inner);
            let mut annotations = dump_annotations(&m.annotations);
            if !annotations.is_empty() {
                annotations.push(' ');
            }
            let ty = m.ty.as_ref().map(TypeRef::dump).unwrap_or_default();
            let value = m
                .value
                .as_ref()
                .map(|v| format!(" = {v}"))
                .unwrap_or_default();
            let _ = writeln!(out, "{inner}{annotations}{keyword}{ty} {}{value};", m.name);
        }
    }
    for n in &t.nested {
        dump_decl(out, depth + 1, n, unit);
    }
    let _ = writeln!(out, "{ind}}}");
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
    for c in &doc.header_comments {
        out.push_str(c);
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
