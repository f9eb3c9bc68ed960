//! A single-pass SQL tokenizer over bytes: skips whitespace and comments, reads
//! version-conditional comments (`/*!NNNNN … */`, `/*M!NNNNNN … */`) as the backend does,
//! honours quotes, backticks and escapes. Never allocates.

use super::dialect::Dialect;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// Identifier or keyword.
    Word,
    /// `` `quoted identifier` ``
    Ident,
    /// `'string'`, `"string"`, `x'..'`, `b'..'`, `N'..'`
    Str,
    Number,
    /// `@var`, `@'var'`
    UserVar,
    /// `@@var`, `@@session.var`
    SysVar,
    /// `?`
    Param,
    /// `:=`
    Assign,
    /// Any other single character (`;`, `(`, `)`, `,`, `=`, `.`, `*` …).
    Punct(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// A comment's text (without markers), reported so hints can be read from it.
pub type CommentSink<'s> = &'s mut dyn FnMut(&[u8]);

#[derive(Clone)]
pub struct Lexer<'a> {
    sql: &'a [u8],
    pos: usize,
    dialect: Dialect,
    /// Inside an executable comment: its `*/` ends it.
    in_exec: bool,
}

impl<'a> Lexer<'a> {
    pub fn new(sql: &'a [u8], dialect: Dialect) -> Self {
        Lexer { sql, pos: 0, dialect, in_exec: false }
    }

    pub fn text(&self, t: &Token) -> &'a [u8] {
        &self.sql[t.start..t.end]
    }

    /// The next token; comment bodies go to `comments`.
    pub fn next_token(&mut self, comments: CommentSink<'_>) -> Option<Token> {
        self.skip_space_and_comments(comments);
        let s = self.sql;
        let start = self.pos;
        let &c = s.get(start)?;
        let kind = match c {
            b'\'' | b'"' => {
                self.pos = skip_quoted(s, start, c);
                Tok::Str
            }
            b'`' => {
                self.pos = skip_quoted(s, start, b'`');
                Tok::Ident
            }
            b'@' if s.get(start + 1) == Some(&b'@') => {
                self.pos = word_end(s, start + 2, true);
                Tok::SysVar
            }
            b'@' => {
                self.pos = match s.get(start + 1) {
                    Some(&q @ (b'\'' | b'"' | b'`')) => skip_quoted(s, start + 1, q),
                    _ => word_end(s, start + 1, true),
                };
                Tok::UserVar
            }
            b'?' => {
                self.pos += 1;
                Tok::Param
            }
            b':' if s.get(start + 1) == Some(&b'=') => {
                self.pos += 2;
                Tok::Assign
            }
            b'0'..=b'9' => {
                self.pos = number_end(s, start);
                Tok::Number
            }
            b'.' if s.get(start + 1).is_some_and(u8::is_ascii_digit) => {
                self.pos = number_end(s, start + 1);
                Tok::Number
            }
            c if is_word_byte(c) => self.word_or_prefixed_string(start),
            _ => {
                self.pos += 1;
                Tok::Punct(c)
            }
        };
        Some(Token { kind, start, end: self.pos })
    }

    fn word_or_prefixed_string(&mut self, start: usize) -> Tok {
        let s = self.sql;
        // x'..', b'..', n'..', _charset'..' are string literals.
        let end = word_end(s, start, false);
        if s.get(end) == Some(&b'\'') {
            let w = &s[start..end];
            if w.len() == 1 && matches!(w[0] | 0x20, b'x' | b'b' | b'n') || w.first() == Some(&b'_') {
                self.pos = skip_quoted(s, end, b'\'');
                return Tok::Str;
            }
        }
        self.pos = end;
        Tok::Word
    }

    fn skip_space_and_comments(&mut self, comments: CommentSink<'_>) {
        let s = self.sql;
        loop {
            while self.pos < s.len() && s[self.pos].is_ascii_whitespace() {
                self.pos += 1;
            }
            let rest = &s[self.pos..];
            if rest.starts_with(b"/*!") || rest.starts_with(b"/*M!") {
                let mariadb_only = rest[2] == b'M';
                let body = self.pos + if mariadb_only { 4 } else { 3 };
                let digits = s[body..].iter().take(6).take_while(|c| c.is_ascii_digit()).count();
                let version = (digits >= 5).then(|| parse_digits(&s[body..body + digits]));
                if self.dialect.runs(version, mariadb_only) {
                    self.pos = body + if digits >= 5 { digits } else { 0 };
                    self.in_exec = true;
                } else {
                    // Not for this server: a comment, which may hold one plain comment.
                    self.pos = comment_end(s, self.pos + 2, true);
                }
            } else if rest.starts_with(b"*/") && self.in_exec {
                self.pos += 2;
                self.in_exec = false;
            } else if rest.starts_with(b"/*") {
                let end = comment_end(s, self.pos + 2, false);
                let body_end = if s[..end].ends_with(b"*/") && end >= self.pos + 4 { end - 2 } else { end };
                comments(&s[self.pos + 2..body_end]);
                self.pos = end;
            } else if rest.starts_with(b"#")
                || (rest.starts_with(b"--")
                    && rest.get(2).is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()))
            {
                let body_start = self.pos + if rest[0] == b'#' { 1 } else { 2 };
                let end = s[self.pos..].iter().position(|&c| c == b'\n').map_or(s.len(), |i| self.pos + i);
                comments(&s[body_start..end]);
                self.pos = end;
            } else {
                return;
            }
        }
    }
}

/// Whether the statement's first tokens are words, the i-th one of `alternatives[i]`
/// (case-insensitive, comments skipped): `starts_with_words(sql, d, &[&["DROP"], &["DATABASE",
/// "SCHEMA"]])`.
pub fn starts_with_words(sql: &[u8], dialect: Dialect, alternatives: &[&[&str]]) -> bool {
    let mut lx = Lexer::new(sql, dialect);
    alternatives.iter().all(|any| {
        lx.next_token(&mut |_| {}).is_some_and(|t| {
            t.kind == Tok::Word && any.iter().any(|w| lx.text(&t).eq_ignore_ascii_case(w.as_bytes()))
        })
    })
}

pub fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn word_end(s: &[u8], mut i: usize, dotted: bool) -> usize {
    while i < s.len() && (is_word_byte(s[i]) || (dotted && s[i] == b'.')) {
        i += 1;
    }
    i
}

fn number_end(s: &[u8], start: usize) -> usize {
    let mut i = start;
    if s[start..].len() > 1 && s[start] == b'0' && matches!(s[start + 1], b'x' | b'X' | b'b' | b'B') {
        return word_end(s, start + 2, false);
    }
    while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
        i += 1;
    }
    if i < s.len() && matches!(s[i], b'e' | b'E') {
        let mut j = i + 1;
        if j < s.len() && matches!(s[j], b'+' | b'-') {
            j += 1;
        }
        if j < s.len() && s[j].is_ascii_digit() {
            i = j;
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    // 123abc is an identifier in MySQL.
    if i < s.len() && is_word_byte(s[i]) { word_end(s, i, false) } else { i }
}

/// End of a quoted token starting at `start` (the quote); `\` escapes and doubled quotes.
fn skip_quoted(s: &[u8], start: usize, q: u8) -> usize {
    let mut i = start + 1;
    while i < s.len() {
        match s[i] {
            b'\\' if q != b'`' => i += 2,
            c if c == q => {
                if s.get(i + 1) == Some(&q) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    s.len()
}

/// Index just past the `*/` closing a comment whose body starts at `from` (the input's end when
/// unterminated). With `nested`, one inner `/* … */` may appear without ending it (the server
/// allows that in a skipped version comment).
fn comment_end(s: &[u8], from: usize, nested: bool) -> usize {
    let mut i = from;
    while i + 1 < s.len() {
        if nested && s[i] == b'/' && s[i + 1] == b'*' {
            i = comment_end(s, i + 2, false);
            continue;
        }
        if s[i] == b'*' && s[i + 1] == b'/' {
            return i + 2;
        }
        i += 1;
    }
    s.len()
}

fn parse_digits(d: &[u8]) -> u32 {
    d.iter().fold(0, |n, c| n * 10 + u32::from(c - b'0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MARIA: Dialect = Dialect { mariadb: true, version: 101119 };
    const MYSQL: Dialect = Dialect { mariadb: false, version: 80036 };

    fn kinds(sql: &str) -> Vec<(Tok, String)> {
        kinds_for(sql, MARIA)
    }

    fn kinds_for(sql: &str, dialect: Dialect) -> Vec<(Tok, String)> {
        let mut l = Lexer::new(sql.as_bytes(), dialect);
        let mut out = Vec::new();
        while let Some(t) = l.next_token(&mut |_| {}) {
            out.push((t.kind, String::from_utf8_lossy(l.text(&t)).into_owned()));
        }
        out
    }

    #[test]
    fn tokens_of_a_typical_query() {
        let k = kinds("SELECT `a`, 'it''s', \"q\\\"\", 1.5e3, @x := @@session.sql_mode FROM t WHERE id = ?;");
        let expect = [
            (Tok::Word, "SELECT"),
            (Tok::Ident, "`a`"),
            (Tok::Punct(b','), ","),
            (Tok::Str, "'it''s'"),
            (Tok::Punct(b','), ","),
            (Tok::Str, "\"q\\\"\""),
            (Tok::Punct(b','), ","),
            (Tok::Number, "1.5e3"),
            (Tok::Punct(b','), ","),
            (Tok::UserVar, "@x"),
            (Tok::Assign, ":="),
            (Tok::SysVar, "@@session.sql_mode"),
        ];
        for (i, (kind, text)) in expect.iter().enumerate() {
            assert_eq!((k[i].0, k[i].1.as_str()), (*kind, *text), "token {i}");
        }
        assert_eq!(k.last().unwrap().0, Tok::Punct(b';'));
    }

    #[test]
    fn comments_are_skipped_and_reported() {
        let mut seen = Vec::new();
        let sql = b"/* rwproxy:reader */ SELECT -- trailing\n 1 # hash\n /* x */";
        let mut l = Lexer::new(sql, MARIA);
        let mut toks = Vec::new();
        while let Some(t) = l.next_token(&mut |c| seen.push(String::from_utf8_lossy(c).into_owned())) {
            toks.push(String::from_utf8_lossy(l.text(&t)).into_owned());
        }
        assert_eq!(toks, ["SELECT", "1"]);
        assert_eq!(seen, [" rwproxy:reader ", " trailing", " hash", " x "]);
    }

    fn words(sql: &str, dialect: Dialect) -> Vec<String> {
        kinds_for(sql, dialect).into_iter().map(|(_, t)| t).collect()
    }

    #[test]
    fn executable_comments_are_code() {
        let w = words("/*!40101 SET NAMES utf8 */; /*M!100100 SELECT 1 */ /*!SELECT*/ 2", MARIA);
        assert_eq!(w, ["SET", "NAMES", "utf8", ";", "SELECT", "1", "SELECT", "2"]);
    }

    #[test]
    fn version_comments_follow_the_backend_version() {
        // mariadb-dump's first line, sent together with the next statement.
        let dump = "/*M!999999\\- enable the sandbox mode */\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;";
        assert_eq!(
            words(dump, MARIA),
            ["SET", "@OLD_CHARACTER_SET_CLIENT", "=", "@@CHARACTER_SET_CLIENT", ";"]
        );
        assert_eq!(words("/*!50717 SELECT 1 */ SELECT 2", MARIA), ["SELECT", "2"], "MySQL 5.7+ only");
        assert_eq!(words("/*!50717 SELECT 1 */ SELECT 2", MYSQL), ["SELECT", "1", "SELECT", "2"]);
        assert_eq!(words("/*M!100100 SELECT 1 */ SELECT 2", MYSQL), ["SELECT", "2"], "/*M! is MariaDB's");
        assert_eq!(words("/*!110500 SELECT 1 */ SELECT 2", MARIA), ["SELECT", "2"], "above the server");
        assert_eq!(words("/*!1010 SELECT 1 */", MARIA), ["1010", "SELECT", "1"], "four digits: no version");
        assert_eq!(words("/*!1000001 */", MARIA), ["1"], "six digits at most");
    }

    #[test]
    fn adjacent_nested_and_unterminated_version_comments() {
        let trigger = "/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER t1 */";
        assert_eq!(words(trigger, MARIA), ["CREATE", "DEFINER", "=", "`root`", "@`%`", "TRIGGER", "t1"]);
        assert_eq!(
            words("/*!40101 SET a = 1 /* plain */ , b = 2 */ ;", MARIA),
            ["SET", "a", "=", "1", ",", "b", "=", "2", ";"]
        );
        assert_eq!(words("/*!99999 skipped /* inner */ still skipped */ SELECT 1", MARIA), ["SELECT", "1"]);
        assert_eq!(words("/*!110000 never closed SELECT 1", MARIA), Vec::<String>::new());
        assert_eq!(words("/*!40101 SELECT 1", MARIA), ["SELECT", "1"], "unterminated code runs to the end");
        assert_eq!(
            words("SELECT 2 */ 3", MARIA),
            ["SELECT", "2", "*", "/", "3"],
            "*/ outside a comment is code"
        );
        assert_eq!(words("/*!*/SELECT/*M!*/1", MARIA), ["SELECT", "1"]);
    }

    #[test]
    fn prefixed_strings_and_odd_numbers() {
        let k = kinds("x'0aff' b'01' N'abc' _utf8mb4'x' 0x1F 123abc .5 -- c");
        let ks: Vec<Tok> = k.iter().map(|(k, _)| *k).collect();
        assert_eq!(ks, [Tok::Str, Tok::Str, Tok::Str, Tok::Str, Tok::Number, Tok::Number, Tok::Number]);
        assert_eq!(k[5].1, "123abc");
    }

    #[test]
    fn unterminated_things_end_at_input_end() {
        for sql in ["'abc", "`abc", "/* abc", "/*! SELECT", "@'x", "x'ab", "\"\\"] {
            let _ = kinds(sql);
        }
        assert_eq!(kinds("--x").len(), 3, "-- without a space is two minus signs and a word");
    }
}
