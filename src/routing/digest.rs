//! Query digests: literals replaced by `?`, whitespace folded, comments dropped, long value
//! lists folded to `?,...`, the text otherwise as written (like ProxySQL's `digest_text`);
//! plus a 64-bit FNV-1a hash of that text.

use super::lexer::Tok;

/// Values of a list kept before the rest is folded into `,...`.
const LIST_KEEP: u32 = 3;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digest {
    pub text: String,
    pub hash: u64,
}

/// Builds the digest text token by token.
pub(super) struct DigestBuilder {
    text: String,
    /// Values seen in the current `?, ?, …` run.
    run: u32,
    folded: bool,
    last: Option<Tok>,
}

impl DigestBuilder {
    pub fn with_capacity(n: usize) -> Self {
        DigestBuilder { text: String::with_capacity(n.min(1024)), run: 0, folded: false, last: None }
    }

    pub fn push(&mut self, kind: Tok, text: &[u8]) {
        let literal = matches!(kind, Tok::Str | Tok::Number | Tok::Param);
        if literal {
            // A sign directly before a number is part of the literal: `= -5` → `= ?`.
            if kind == Tok::Number && self.text.ends_with('-') && self.last == Some(Tok::Punct(b'-')) {
                let before = self.text[..self.text.len() - 1].trim_end();
                if before.ends_with(['=', '(', ',', '<', '>']) || before.is_empty() {
                    self.text.truncate(before.len());
                }
            }
            self.run += 1;
            if self.run > LIST_KEEP {
                if !self.folded && self.text.ends_with(',') {
                    self.text.pop();
                }
                self.folded = true;
                self.last = Some(kind);
                return;
            }
        } else if kind == Tok::Punct(b',') && self.run > 0 {
            if self.folded {
                return;
            }
        } else {
            if self.folded {
                self.text.push_str(",...");
                self.folded = false;
            }
            self.run = 0;
        }
        self.space_before(kind);
        if literal {
            self.text.push('?');
        } else {
            self.text.push_str(&String::from_utf8_lossy(text));
        }
        self.last = Some(kind);
    }

    fn space_before(&mut self, kind: Tok) {
        let tight_after = self.text.is_empty() || self.text.ends_with(['(', '.', ',']);
        let call = kind == Tok::Punct(b'(') && matches!(self.last, Some(Tok::Word | Tok::Ident));
        let tight_before = call || matches!(kind, Tok::Punct(b',' | b')' | b'.' | b';'));
        if !tight_after && !tight_before {
            self.text.push(' ');
        }
    }

    pub fn finish(mut self) -> Digest {
        if self.folded {
            self.text.push_str(",...");
        }
        let hash = fnv1a(self.text.as_bytes());
        Digest { text: self.text, hash }
    }
}

pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}
