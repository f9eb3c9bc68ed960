//! MySQL's stored `caching_sha2_password` hash, `$A$` + rounds/1000 (3 hex digits) + `$` +
//! a 20-byte salt + 43 characters of SHA-256 crypt (Drepper's algorithm, as MySQL's
//! `crypt_genhash_impl.cc` runs it: the whole 20-byte salt, no `rounds=` prefix). What `SHOW
//! CREATE USER … AS '…'` prints (or its `0x…` hex form, since salts hold any byte).

use sha2::{Digest, Sha256};

use super::auth::constant_time_eq;

const SALT_LEN: usize = 20;
const DIGEST_CHARS: usize = 43;
/// Longer passwords are refused before hashing (MySQL's limit too: the crypt's cost grows
/// with the square of the password's length).
pub const MAX_PASSWORD: usize = 256;
const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Clone, PartialEq, Eq)]
pub struct Sha2Crypt {
    salt: [u8; SALT_LEN],
    rounds: u32,
    digest: [u8; DIGEST_CHARS],
}

impl Sha2Crypt {
    /// `$A$005$<salt><digest>`, or the same bytes as `0x<hex>`.
    pub fn parse(text: &str) -> Option<Sha2Crypt> {
        let hex = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X"));
        let bytes = match hex {
            Some(h) if h.len() % 2 == 0 => (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?,
            Some(_) => return None,
            None => text.as_bytes().to_vec(),
        };
        let rest = bytes.strip_prefix(b"$A$")?;
        let (field, rest) = (rest.get(..3)?, rest.get(3..)?);
        let rounds = u32::from_str_radix(std::str::from_utf8(field).ok()?, 16).ok()?.checked_mul(1000)?;
        let rest = rest.strip_prefix(b"$")?;
        if rounds == 0 || rest.len() != SALT_LEN + DIGEST_CHARS {
            return None;
        }
        let salt = rest[..SALT_LEN].try_into().ok()?;
        let digest: [u8; DIGEST_CHARS] = rest[SALT_LEN..].try_into().ok()?;
        digest.iter().all(|c| ALPHABET.contains(c)).then_some(Sha2Crypt { salt, rounds, digest })
    }

    /// A hash of `password` with `salt` (printable bytes, as MySQL makes them) and MySQL's
    /// 5000 rounds; `None` for a password longer than `MAX_PASSWORD`.
    pub fn new(password: &[u8], salt: [u8; SALT_LEN]) -> Option<Sha2Crypt> {
        let rounds = 5000;
        (password.len() <= MAX_PASSWORD).then(|| Sha2Crypt {
            salt,
            rounds,
            digest: crypt(password, &salt, rounds),
        })
    }

    /// The hash as configured: `$A$…` when every byte is printable, else `0x` + hex.
    pub fn text(&self) -> String {
        let mut raw = format!("$A${:03X}$", self.rounds / 1000).into_bytes();
        raw.extend_from_slice(&self.salt);
        raw.extend_from_slice(&self.digest);
        match String::from_utf8(raw) {
            Ok(s) if s.bytes().all(|b| b.is_ascii_graphic()) => s,
            Ok(s) => format!("0x{}", s.bytes().map(|b| format!("{b:02X}")).collect::<String>()),
            Err(e) => format!("0x{}", e.as_bytes().iter().map(|b| format!("{b:02X}")).collect::<String>()),
        }
    }

    /// Whether `password` is the one this hash was made from.
    pub fn matches(&self, password: &[u8]) -> bool {
        password.len() <= MAX_PASSWORD
            && constant_time_eq(&crypt(password, &self.salt, self.rounds), &self.digest)
    }
}

/// SHA-256 crypt's digest characters for `password`, `salt` and `rounds`.
fn crypt(p: &[u8], s: &[u8], rounds: u32) -> [u8; DIGEST_CHARS] {
    let b: [u8; 32] = Sha256::new().chain_update(p).chain_update(s).chain_update(p).finalize().into();
    let mut ctx = Sha256::new().chain_update(p).chain_update(s);
    ctx.update(repeat_to(&b, p.len()));
    let mut n = p.len();
    while n > 0 {
        ctx.update(if n & 1 == 1 { &b[..] } else { p });
        n >>= 1;
    }
    let mut c: [u8; 32] = ctx.finalize().into();
    let mut dp = Sha256::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let p_seq = repeat_to(&dp.finalize(), p.len());
    let mut ds = Sha256::new();
    for _ in 0..16 + usize::from(c[0]) {
        ds.update(s);
    }
    let s_seq = repeat_to(&ds.finalize(), s.len());
    for i in 0..rounds {
        let mut r = Sha256::new();
        if i & 1 == 1 {
            r.update(&p_seq)
        } else {
            r.update(c)
        }
        if i % 3 != 0 {
            r.update(&s_seq);
        }
        if i % 7 != 0 {
            r.update(&p_seq);
        }
        if i & 1 == 1 {
            r.update(c)
        } else {
            r.update(&p_seq)
        }
        c = r.finalize().into();
    }
    encode(&c)
}

/// `d` repeated (and cut) to `len` bytes.
fn repeat_to(d: &[u8], len: usize) -> Vec<u8> {
    d.iter().copied().cycle().take(len).collect()
}

/// The crypt's own base-64 of the final digest, in its byte order.
fn encode(c: &[u8; 32]) -> [u8; DIGEST_CHARS] {
    const ORDER: [(usize, usize, usize); 10] = [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ];
    let mut out = [0u8; DIGEST_CHARS];
    let mut at = 0;
    let mut put = |w: u32, n: usize| {
        for k in 0..n {
            out[at] = ALPHABET[((w >> (6 * k)) & 0x3f) as usize];
            at += 1;
        }
    };
    for (x, y, z) in ORDER {
        put(u32::from(c[x]) << 16 | u32::from(c[y]) << 8 | u32::from(c[z]), 4);
    }
    put(u32::from(c[31]) << 8 | u32::from(c[30]), 3);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hash MySQL 8 made for "foobar" (salt bytes unprintable, so in hex as `SHOW CREATE
    /// USER` prints it), the vector TiDB checks its implementation with.
    const FOOBAR: &str = "0x24412430303524031A69251C34295C4B35167C7F1E5A7B63091349503974624D34504B5A424679354856336868686F52485A736E4A733368786E427575516C73446469496537";

    #[test]
    fn a_hash_mysql_made_matches_its_password_only() {
        let h = Sha2Crypt::parse(FOOBAR).expect("parses");
        assert_eq!(h.rounds, 5000);
        assert!(h.matches(b"foobar"));
        assert!(!h.matches(b"not_foobar"));
        assert!(!h.matches(b""));
        assert!(!h.matches(&[b'a'; MAX_PASSWORD + 1]));
        assert_eq!(h.text(), FOOBAR, "shown as hex: the salt is not printable");
        let made = Sha2Crypt::new(b"foobar", h.salt).unwrap();
        assert!(made == h, "made again from the same salt, the same hash");
    }

    /// Drepper's SHA-256 crypt of "Hello world!" with salt "saltstring" and 5000 rounds, as
    /// Debian's crypt(3) (libxcrypt) computes it: `crypt("Hello world!", "$5$saltstring")`
    /// (salts under 16 bytes, where MySQL's variant and the standard one agree).
    #[test]
    fn the_specifications_vector() {
        assert_eq!(
            &crypt(b"Hello world!", b"saltstring", 5000),
            b"5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
        );
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for bad in [
            "",
            "$A$005$short",
            "0x2441",
            "0x24412430303524031A69251C34295C4B35167C7F1E5A7B63091349503974624D34504B5A424679354856336868686F52485A736E4A733368786E427575516C73446469496537FF",
            "$B$005$abcdefghijklmnopqrst0123456789012345678901234567890123",
            "$A$000$abcdefghijklmnopqrst0123456789012345678901234567890123",
            "$A$005$abcdefghijklmnopqrst01234567890123456789012345678901!",
        ] {
            assert!(Sha2Crypt::parse(bad).is_none(), "{bad:?}");
        }
        let printable = "$A$005$abcdefghijklmnopqrst0123456789012345678901234567890123456789012";
        assert_eq!(Sha2Crypt::parse(printable).map(|h| h.text()).as_deref(), Some(printable));
    }
}
