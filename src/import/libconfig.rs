//! A parser for the libconfig syntax of `proxysql.cnf`: settings `name = value` (or `:`),
//! groups `{ … }`, lists `( … )`, arrays `[ … ]`, strings (adjacent ones concatenate),
//! integers, floats, booleans, and `#`, `//`, `/* */` comments.

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Group(Vec<(String, Value)>),
    List(Vec<Value>),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Value {
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Group(items) => items.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Bool(b) => Some(i64::from(*b)),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The value as ProxySQL would print it, for comments.
    pub fn display(&self) -> String {
        match self {
            Value::Str(s) => format!("{s:?}"),
            Value::Int(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Group(_) => "{ … }".into(),
            Value::List(_) => "( … )".into(),
        }
    }
}

/// A parse error with its line.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole file into a top-level group.
pub fn parse(text: &str) -> Result<Value, ParseError> {
    let mut p = Parser { s: text.as_bytes(), pos: 0 };
    let items = p.settings(None)?;
    Ok(Value::Group(items))
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        let line = self.s[..self.pos.min(self.s.len())].iter().filter(|&&c| c == b'\n').count() + 1;
        ParseError { line, message: message.into() }
    }

    fn skip(&mut self) {
        loop {
            while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            let rest = &self.s[self.pos..];
            if rest.starts_with(b"#") || rest.starts_with(b"//") {
                while self.pos < self.s.len() && self.s[self.pos] != b'\n' {
                    self.pos += 1;
                }
            } else if rest.starts_with(b"/*") {
                let end = rest.windows(2).position(|w| w == b"*/").map_or(self.s.len(), |i| self.pos + i + 2);
                self.pos = end;
            } else {
                return;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.pos).copied()
    }

    /// Settings until `close` (or the end of input at top level).
    fn settings(&mut self, close: Option<u8>) -> Result<Vec<(String, Value)>, ParseError> {
        let mut items = Vec::new();
        loop {
            match self.peek() {
                None if close.is_none() => return Ok(items),
                None => return Err(self.err("unexpected end of file")),
                Some(c) if Some(c) == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(b';' | b',') => self.pos += 1,
                Some(_) => {
                    let name = self.name()?;
                    match self.peek() {
                        Some(b'=' | b':') => self.pos += 1,
                        _ => return Err(self.err(format!("expected = or : after {name:?}"))),
                    }
                    let value = self.value()?;
                    items.push((name, value));
                }
            }
        }
    }

    fn name(&mut self) -> Result<String, ParseError> {
        let start = self.pos;
        while self.pos < self.s.len()
            && (self.s[self.pos].is_ascii_alphanumeric() || b"_-*".contains(&self.s[self.pos]))
        {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.err("expected a setting name"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn value(&mut self) -> Result<Value, ParseError> {
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                Ok(Value::Group(self.settings(Some(b'}'))?))
            }
            Some(open @ (b'(' | b'[')) => {
                self.pos += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut list = Vec::new();
                loop {
                    match self.peek() {
                        Some(c) if c == close => {
                            self.pos += 1;
                            return Ok(Value::List(list));
                        }
                        Some(b',') => self.pos += 1,
                        None => return Err(self.err("unterminated list")),
                        Some(_) => list.push(self.value()?),
                    }
                }
            }
            Some(b'"') => {
                let mut s = String::new();
                while self.peek() == Some(b'"') {
                    s.push_str(&self.string()?);
                }
                Ok(Value::Str(s))
            }
            Some(_) => self.scalar(),
            None => Err(self.err("expected a value")),
        }
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.pos) {
            self.pos += 1;
            match c {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = self.s.get(self.pos).copied().ok_or_else(|| self.err("unterminated string"))?;
                    self.pos += 1;
                    out.push(match e {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'f' => 0x0c,
                        other => other,
                    });
                }
                _ => out.push(c),
            }
        }
        Err(self.err("unterminated string"))
    }

    fn scalar(&mut self) -> Result<Value, ParseError> {
        let start = self.pos;
        while self.pos < self.s.len() && !b";,)]}\n\r\t ".contains(&self.s[self.pos]) {
            self.pos += 1;
        }
        let word = std::str::from_utf8(&self.s[start..self.pos]).map_err(|_| self.err("invalid UTF-8"))?;
        let number = word.trim_end_matches(['L', 'l']);
        if word.eq_ignore_ascii_case("true") {
            return Ok(Value::Bool(true));
        }
        if word.eq_ignore_ascii_case("false") {
            return Ok(Value::Bool(false));
        }
        if let Some(hex) = number.strip_prefix("0x").or_else(|| number.strip_prefix("0X")) {
            return i64::from_str_radix(hex, 16)
                .map(Value::Int)
                .map_err(|_| self.err(format!("bad number {word:?}")));
        }
        if let Ok(n) = number.parse::<i64>() {
            return Ok(Value::Int(n));
        }
        number.parse::<f64>().map(Value::Float).map_err(|_| self.err(format!("unexpected {word:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proxysql_style_config() {
        let text = r#"
# comment
datadir="/var/lib/proxysql"   // trailing comment
admin_variables= { admin_credentials="admin:admin"
    mysql_ifaces="0.0.0.0:6032" }
mysql_servers =
(
    { address="10.0.0.1" , port=3306 , hostgroup=0, max_connections=200 },
    /* second */
    { address = "10.0.0.2"; port = 3306; hostgroup = 1; weight = 0x10 }
)
flag = true ; big = 100L ; ratio = 0.5 ; msg = "a" "b\"c"
"#;
        let v = parse(text).unwrap();
        assert_eq!(v.get("datadir").and_then(Value::as_str), Some("/var/lib/proxysql"));
        let Some(Value::List(servers)) = v.get("mysql_servers") else { panic!("list") };
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].get("weight").and_then(Value::as_int), Some(16));
        assert_eq!(
            v.get("admin_variables").and_then(|a| a.get("mysql_ifaces")).and_then(Value::as_str),
            Some("0.0.0.0:6032")
        );
        assert_eq!(v.get("big"), Some(&Value::Int(100)));
        assert_eq!(v.get("msg").and_then(Value::as_str), Some("ab\"c"));
        assert_eq!(v.get("flag"), Some(&Value::Bool(true)));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a = 1\nb = (1, 2\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(parse("x { }").unwrap_err().to_string().contains("expected = or :"));
        assert!(parse("s = \"open").is_err());
    }
}
