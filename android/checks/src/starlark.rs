//! A parser for the part of Starlark that BUILD files use: `load(...)`, assignments, and calls
//! with keyword arguments whose values are strings, string concatenations (`+`), names of
//! earlier assignments, lists and nested calls. Anything else is an error with its line.

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    List(Vec<Value>),
    Call(Call),
    Bool(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub function: String,
    pub positional: Vec<Value>,
    pub keywords: BTreeMap<String, Value>,
    pub line: usize,
}

#[derive(Debug, Default)]
pub struct File {
    pub calls: Vec<Call>,
    pub vars: BTreeMap<String, Value>,
}

impl Call {
    /// A keyword argument that is a list of strings (or one string).
    pub fn strings(&self, key: &str) -> Vec<String> {
        match self.keywords.get(key) {
            Some(Value::Str(s)) => vec![s.clone()],
            Some(Value::List(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn string(&self, key: &str) -> Option<&str> {
        match self.keywords.get(key) {
            Some(Value::Str(s)) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Str(String),
    P(char),
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = src.chars().collect();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\n' {
                    return Err(format!("line {line}: newline in a string"));
                }
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                s.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!("line {line}: unterminated string"));
            }
            i += 1;
            out.push((Tok::Str(s), line));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Name(chars[start..i].iter().collect()), line));
        } else if "()[]=,+".contains(c) {
            out.push((Tok::P(c), line));
            i += 1;
        } else {
            return Err(format!("line {line}: unexpected {c:?}"));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    vars: &'a BTreeMap<String, Value>,
}

impl Parser<'_> {
    fn line(&self) -> usize {
        self.toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(0, |t| t.1)
    }
    fn err<T>(&self, m: &str) -> Result<T, String> {
        Err(format!("line {}: {m}", self.line()))
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::P(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(&format!("expected `{c}`"))
        }
    }
    fn value(&mut self) -> Result<Value, String> {
        let mut v = self.primary()?;
        while self.eat('+') {
            let r = self.primary()?;
            v = match (v, r) {
                (Value::Str(a), Value::Str(b)) => Value::Str(a + &b),
                (Value::List(mut a), Value::List(b)) => {
                    a.extend(b);
                    Value::List(a)
                }
                _ => return self.err("`+` of different kinds"),
            };
        }
        Ok(v)
    }
    fn primary(&mut self) -> Result<Value, String> {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok(Value::Str(s))
            }
            Some(Tok::P('[')) => {
                self.pos += 1;
                let mut items = Vec::new();
                while !self.eat(']') {
                    items.push(self.value()?);
                    if !self.eat(',') {
                        self.expect(']')?;
                        break;
                    }
                }
                Ok(Value::List(items))
            }
            Some(Tok::Name(n)) if n == "True" || n == "False" => {
                self.pos += 1;
                Ok(Value::Bool(n == "True"))
            }
            Some(Tok::Name(n)) => {
                self.pos += 1;
                if self.peek() == Some(&Tok::P('(')) {
                    Ok(Value::Call(self.call(n)?))
                } else {
                    match self.vars.get(&n) {
                        Some(v) => Ok(v.clone()),
                        None => self.err(&format!("`{n}` is not defined")),
                    }
                }
            }
            _ => self.err("expected a value"),
        }
    }
    fn call(&mut self, function: String) -> Result<Call, String> {
        let line = self.line();
        self.expect('(')?;
        let mut c = Call {
            function,
            positional: Vec::new(),
            keywords: BTreeMap::new(),
            line,
        };
        while !self.eat(')') {
            let kw = matches!(
                (self.toks.get(self.pos), self.toks.get(self.pos + 1)),
                (Some((Tok::Name(_), _)), Some((Tok::P('='), _)))
            );
            if kw {
                let Some(Tok::Name(k)) = self.peek().cloned() else {
                    unreachable!()
                };
                self.pos += 2;
                let v = self.value()?;
                if c.keywords.insert(k.clone(), v).is_some() {
                    return self.err(&format!("argument `{k}` given twice"));
                }
            } else {
                c.positional.push(self.value()?);
            }
            if !self.eat(',') {
                self.expect(')')?;
                break;
            }
        }
        Ok(c)
    }
}

pub fn parse(src: &str) -> Result<File, String> {
    let toks = lex(src)?;
    let mut file = File::default();
    let mut pos = 0;
    while pos < toks.len() {
        let vars = file.vars.clone();
        let mut p = Parser {
            toks: toks.clone(),
            pos,
            vars: &vars,
        };
        let Some(Tok::Name(n)) = p.peek().cloned() else {
            return p.err("expected a statement");
        };
        p.pos += 1;
        if p.eat('=') {
            let v = p.value()?;
            file.vars.insert(n, v);
        } else if p.peek() == Some(&Tok::P('(')) {
            let c = p.call(n)?;
            file.calls.push(c);
        } else {
            return p.err("expected `=` or a call");
        }
        pos = p.pos;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let f = parse("load(\"//a:b.bzl\", \"x\")\nX = \"//t\"\nx(name = \"n\", srcs = [\"a.rs\", \"b\" + \"c\",], dep = X)\n").unwrap();
        assert_eq!(f.calls[1].strings("srcs"), ["a.rs", "bc"]);
        assert_eq!(f.calls[1].string("dep"), Some("//t"));
        assert!(parse("x(name = \"a\", name = \"b\")").is_err());
        assert!(parse("x(name = Y)").is_err());
        assert!(parse("x(name = \"a\"").is_err());
    }
}
