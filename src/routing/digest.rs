//! Query digests: literals replaced by `?`, whitespace folded, comments dropped, long value
//! lists folded to `?,...`, the text otherwise as written (like ProxySQL's `digest_text`);
//! plus a 64-bit hash of that text.

use super::lexer::Tok;

/// Values of a list kept before the rest is folded into `,...`.
const LIST_KEEP: u32 = 3;

/// Digest texts are cut to this many bytes (ProxySQL's `query_digests_max_digest_length`);
/// the hash still covers the whole text, so long statements that differ late stay apart.
pub const MAX_DIGEST_TEXT: usize = 2048;

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

    pub fn push(&mut self, kind: Tok, text: &str) {
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
            self.text.push_str(text);
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
        let hash = hash64(self.text.as_bytes());
        if self.text.len() > MAX_DIGEST_TEXT {
            let mut cut = MAX_DIGEST_TEXT;
            while !self.text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.truncate(cut);
            self.text.shrink_to_fit();
        }
        Digest { text: self.text, hash }
    }
}

/// A fast 64-bit hash, 8 bytes per step (FxHash-style mixing with a final avalanche);
/// stable across runs and platforms, so digests can be compared between instances.
pub fn hash64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h.rotate_left(5) ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}
