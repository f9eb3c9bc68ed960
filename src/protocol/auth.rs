//! `mysql_native_password` and `caching_sha2_password` scrambles: verify a client,
//! authenticate to a backend, hash handling.

use sha1::{Digest, Sha1};

pub const NATIVE_PLUGIN: &str = "mysql_native_password";
pub const SHA2_PLUGIN: &str = "caching_sha2_password";
/// `caching_sha2_password`'s AuthMoreData: the scramble matched (fast authentication).
pub const SHA2_FAST_AUTH_OK: [u8; 2] = [0x01, 0x03];
/// `caching_sha2_password`'s AuthMoreData: send the password itself (full authentication).
pub const SHA2_FULL_AUTH: [u8; 2] = [0x01, 0x04];
pub const SALT_LEN: usize = 20;

/// SHA1(SHA1(password)): what the server stores, and what `password_hash = "*HEX"` holds.
pub type NativeHash = [u8; 20];
/// SHA1(password): enough to answer any scramble; recovered from a client's valid reply.
pub type Stage1 = [u8; 20];

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn xor(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

pub fn stage1(password: &[u8]) -> Stage1 {
    sha1(&[password])
}

pub fn native_hash(password: &[u8]) -> NativeHash {
    sha1(&[&stage1(password)])
}

/// The reply to `salt` for a password known only by its stage1 (empty password: empty reply).
pub fn scramble_stage1(salt: &[u8], stage1: &Stage1) -> [u8; 20] {
    let hash = sha1(&[stage1]);
    xor(stage1, &sha1(&[salt, &hash]))
}

pub fn scramble(salt: &[u8], password: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    scramble_stage1(salt, &stage1(password)).to_vec()
}

/// Checks a client's scramble against the stored hash. On success returns SHA1(password),
/// which lets the proxy log in to backends for users configured only with a hash.
pub fn verify(salt: &[u8], reply: &[u8], hash: &NativeHash) -> Option<Stage1> {
    let reply: &[u8; 20] = reply.try_into().ok()?;
    let candidate = xor(reply, &sha1(&[salt, hash]));
    let ok = sha1(&[&candidate]) == *hash;
    ok.then_some(candidate)
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = sha2::Sha256::new();
    for p in parts {
        sha2::Digest::update(&mut h, p);
    }
    h.finalize().into()
}

/// `caching_sha2_password`'s scramble: XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)), nonce)).
pub fn sha2_scramble(nonce: &[u8], password: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let p1 = sha256(&[password]);
    let p2 = sha256(&[&p1]);
    let h = sha256(&[&p2, nonce]);
    p1.iter().zip(h).map(|(a, b)| a ^ b).collect()
}

/// Checks a `caching_sha2_password` scramble against SHA256(SHA256(password)): the reply
/// XOR SHA256(that, nonce) must hash to it.
pub fn sha2_verify_double(nonce: &[u8], reply: &[u8], double: &[u8; 32]) -> bool {
    let Ok(reply) = <&[u8; 32]>::try_from(reply) else { return false };
    let h = sha256(&[double, nonce]);
    let p1: Vec<u8> = reply.iter().zip(h).map(|(a, b)| a ^ b).collect();
    constant_time_eq(&sha256(&[&p1]), double)
}

/// SHA256(SHA256(password)), what `sha2_verify_double` checks against.
pub fn sha2_double(password: &[u8]) -> [u8; 32] {
    sha256(&[&sha256(&[password])])
}

/// Checks a `caching_sha2_password` scramble (fast authentication) against the password.
pub fn sha2_verify(nonce: &[u8], reply: &[u8], password: &[u8]) -> bool {
    constant_time_eq(&sha2_scramble(nonce, password), reply)
}

pub fn format_hash(hash: &NativeHash) -> String {
    let mut s = String::with_capacity(41);
    s.push('*');
    for b in hash {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// Compares secrets without an early exit on the first differing byte.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh salt of printable bytes (clients treat it as a C string in places).
pub fn new_salt() -> [u8; SALT_LEN] {
    let mut raw = [0u8; SALT_LEN];
    if getrandom::fill(&mut raw).is_err() {
        // The OS RNG failing is not recoverable in a meaningful way; fall back to a
        // non-repeating source rather than a constant.
        raw = std::array::from_fn(|_| fastrand::u8(..));
    }
    raw.map(|b| 33 + b % 94)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hash_of_secret() {
        // SELECT PASSWORD('secret') on MariaDB.
        let h = native_hash(b"secret");
        assert_eq!(format_hash(&h), "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7");
    }

    #[test]
    fn verify_accepts_right_and_rejects_wrong_passwords() {
        let salt = new_salt();
        let h = native_hash(b"secret");
        let good = scramble(&salt, b"secret");
        assert_eq!(verify(&salt, &good, &h), Some(stage1(b"secret")));
        assert_eq!(verify(&salt, &scramble(&salt, b"Secret"), &h), None);
        assert_eq!(verify(&salt, b"short", &h), None);
        assert_eq!(verify(&salt, b"", &h), None);
    }

    #[test]
    fn recovered_stage1_answers_another_salt() {
        let (s1, s2) = (new_salt(), new_salt());
        let h = native_hash(b"pw");
        let st = verify(&s1, &scramble(&s1, b"pw"), &h).unwrap();
        assert_eq!(scramble_stage1(&s2, &st).to_vec(), scramble(&s2, b"pw"));
    }

    #[test]
    fn caching_sha2_scramble_matches_an_independent_implementation() {
        // PyMySQL's `_auth.scramble_caching_sha2(b"secret", b"abcdefghijklmnopqrst")`.
        let nonce = b"abcdefghijklmnopqrst";
        let expected = "c76e2898612a4cf042c77fa8c4702c4c64c0c2c557c53c4d75595aaa6abae809";
        let got: String = sha2_scramble(nonce, b"secret").iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected);
        assert!(sha2_verify(nonce, &sha2_scramble(nonce, b"secret"), b"secret"));
        assert!(!sha2_verify(nonce, &sha2_scramble(nonce, b"Secret"), b"secret"));
        assert!(sha2_scramble(nonce, b"").is_empty());
        // go-sql-driver/mysql's auth_test.go: the nonce a MySQL 8 server sent and the answer for
        // "secret" it expects on the wire, byte for byte.
        let nonce = [6, 81, 96, 114, 14, 42, 50, 30, 76, 47, 1, 95, 126, 81, 62, 94, 83, 80, 52, 85];
        let wire = [
            171, 201, 138, 146, 89, 159, 11, 170, 0, 67, 165, 49, 175, 94, 218, 68, 177, 109, 110, 86, 34,
            33, 44, 190, 67, 240, 70, 110, 40, 139, 124, 41,
        ];
        assert_eq!(sha2_scramble(&nonce, b"secret"), wire);
        // The server's side: what it stores (SHA256(SHA256(pw))) checks that answer.
        assert!(sha2_verify_double(&nonce, &wire, &sha2_double(b"secret")));
        assert!(!sha2_verify_double(&nonce, &wire, &sha2_double(b"secreT")));
    }

    #[test]
    fn salts_are_printable_and_differ() {
        let (a, b) = (new_salt(), new_salt());
        assert!(a.iter().all(|&c| (33..127).contains(&c)));
        assert_ne!(a, b);
    }
}
