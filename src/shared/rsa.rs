//! `caching_sha2_password`'s RSA exchange, for full authentication on connections without
//! TLS: the proxy sends its public key when the client asks (`0x02`), the client sends its
//! password XOR the greeting's salt, encrypted with RSA-OAEP (SHA-1, as MySQL 8 and every
//! client use). The private key is `proxy.caching_sha2_private_key_file` (MySQL's
//! `caching_sha2_password_private_key_path`). Decryption is OpenSSL's: an unauthenticated
//! client can ask it to decrypt anything, so it must not leak timing (the pure-Rust `rsa`
//! crate is open to the Marvin attack, RUSTSEC-2023-0071).

use std::path::Path;

use openssl::pkey::Private;
use openssl::rsa::{Padding, Rsa};

pub struct RsaKey {
    key: Rsa<Private>,
    /// The public half as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), what clients parse.
    public_pem: Vec<u8>,
}

/// Smallest modulus accepted.
const MIN_BITS: u32 = 2048;

impl RsaKey {
    /// Reads a PEM private key (PKCS#1 or PKCS#8); the error names the file and the problem.
    pub fn load(path: &Path) -> Result<RsaKey, String> {
        let key = "proxy.caching_sha2_private_key_file";
        let pem = std::fs::read(path).map_err(|e| format!("{key} {}: {e}", path.display()))?;
        let pkey = openssl::pkey::PKey::private_key_from_pem(&pem)
            .map_err(|_| format!("{key} {}: not a PEM private key", path.display()))?;
        let rsa = pkey.rsa().map_err(|_| format!("{key} {}: not an RSA key", path.display()))?;
        if rsa.size() * 8 < MIN_BITS {
            return Err(format!(
                "{key} {}: {} bits, at least {MIN_BITS} needed",
                path.display(),
                rsa.size() * 8
            ));
        }
        let public_pem = rsa.public_key_to_pem().map_err(|e| format!("{key} {}: {e}", path.display()))?;
        Ok(RsaKey { key: rsa, public_pem })
    }

    pub fn public_pem(&self) -> &[u8] {
        &self.public_pem
    }

    /// The password a client sent encrypted, or `None` when the bytes do not decrypt (never
    /// says why: the answer is one `Wrong` whatever failed).
    pub fn password(&self, cipher: &[u8], salt: &[u8]) -> Option<Vec<u8>> {
        let size = self.key.size() as usize;
        if cipher.len() != size || salt.is_empty() {
            return None;
        }
        let mut plain = vec![0u8; size];
        let n = self.key.private_decrypt(cipher, &mut plain, Padding::PKCS1_OAEP).ok()?;
        plain.truncate(n);
        for (i, b) in plain.iter_mut().enumerate() {
            *b ^= salt[i % salt.len()];
        }
        // The client encrypts the password with its terminating NUL.
        if plain.pop() != Some(0) {
            return None;
        }
        Some(plain)
    }
}

/// The client's side, for logging in to a backend without TLS: (password NUL) XOR `nonce`,
/// encrypted with RSA-OAEP under the server's public key (a PEM `PUBLIC KEY`).
pub fn encrypt_password(public_pem: &[u8], password: &[u8], nonce: &[u8]) -> Result<Vec<u8>, String> {
    let key = Rsa::public_key_from_pem(public_pem).map_err(|_| "not a PEM RSA public key".to_string())?;
    let mut plain = password.to_vec();
    plain.push(0);
    if nonce.is_empty() || plain.len() + 42 > key.size() as usize {
        return Err("the password does not fit the server's RSA key".into());
    }
    for (i, b) in plain.iter_mut().enumerate() {
        *b ^= nonce[i % nonce.len()];
    }
    let mut out = vec![0u8; key.size() as usize];
    let n = key.public_encrypt(&plain, &mut out, Padding::PKCS1_OAEP).map_err(|e| e.to_string())?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_encrypts(public_pem: &[u8], password: &[u8], salt: &[u8]) -> Vec<u8> {
        encrypt_password(public_pem, password, salt).unwrap()
    }

    fn key_file(bits: u32) -> (std::path::PathBuf, RsaKey) {
        let path = std::env::temp_dir().join(format!("rwproxy-rsa-{}-{bits}.pem", std::process::id()));
        std::fs::write(&path, Rsa::generate(bits).unwrap().private_key_to_pem().unwrap()).unwrap();
        let key = RsaKey::load(&path);
        (path, key.unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn a_password_encrypted_with_the_public_key_comes_back() {
        let (path, key) = key_file(2048);
        assert!(key.public_pem().starts_with(b"-----BEGIN PUBLIC KEY-----"));
        let salt = b"abcdefghij0123456789";
        let cipher = client_encrypts(key.public_pem(), b"s3cret", salt);
        assert_eq!(key.password(&cipher, salt).as_deref(), Some(&b"s3cret"[..]));
        // Another salt (a replayed exchange) gives another string, not the password.
        assert_ne!(key.password(&cipher, b"01234567890123456789").as_deref(), Some(&b"s3cret"[..]));
        // Garbage, a short message, the clear password: nothing.
        assert_eq!(key.password(&[7u8; 256], salt), None);
        assert_eq!(key.password(b"s3cret\0", salt), None);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn unusable_key_files_are_named_with_the_reason() {
        let missing = RsaKey::load(Path::new("/nonexistent/key.pem")).err().unwrap();
        assert!(missing.contains("proxy.caching_sha2_private_key_file /nonexistent/key.pem"), "{missing}");
        let path = std::env::temp_dir().join(format!("rwproxy-rsa-bad-{}.pem", std::process::id()));
        std::fs::write(&path, "not a key").unwrap();
        assert!(RsaKey::load(&path).err().unwrap().contains("not a PEM private key"));
        std::fs::write(&path, Rsa::generate(1024).unwrap().private_key_to_pem().unwrap()).unwrap();
        assert!(RsaKey::load(&path).err().unwrap().contains("1024 bits, at least 2048"));
        let _ = std::fs::remove_file(path);
    }
}
