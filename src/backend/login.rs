//! Logging in to a backend after the handshake response: native password, AuthSwitch, and
//! `caching_sha2_password`'s fast and full authentication (over TLS, or with the server's RSA
//! public key: configured, or asked for when `backend_tls.get_server_public_key` allows).

use super::{BackendConn, BackendError, Credentials};
use crate::protocol::auth::{self, NATIVE_PLUGIN, Stage1};
use crate::protocol::handshake::parse_auth_switch;

impl BackendConn {
    /// The login's end: OK, or an AuthSwitch to native password answered; `seq` is the
    /// sequence id of the server's reply to the handshake response.
    pub(super) async fn finish_auth(
        &mut self,
        secret: &Credentials,
        seq: u8,
        tls: &super::tls::BackendTls,
    ) -> Result<(), BackendError> {
        let reply = self.read(seq).await?;
        match reply.payload().first() {
            Some(0x00) => Ok(()),
            Some(0xfe) => {
                let (plugin, salt) = parse_auth_switch(reply.payload()).map_err(|e| self.perr(e))?;
                let (answered, scramble) = secret.answer(&plugin, &salt);
                if answered.as_bytes() != plugin {
                    return Err(self.unsupported(&plugin));
                }
                self.stream.write_packet(seq + 1, &scramble).await.map_err(|e| self.perr(e))?;
                let reply = self.read(seq + 2).await?;
                self.sha2_more(secret, reply, (seq + 2, &salt), tls).await
            }
            _ => {
                let salt = self.greeting.salt.clone();
                self.sha2_more(secret, reply, (seq, &salt), tls).await
            }
        }
    }

    /// After a `caching_sha2_password` answer: fast authentication's `0x01 0x03` and the OK, or
    /// full authentication (`0x01 0x04`): the password over TLS, else encrypted with the
    /// server's RSA key, never in clear. `nonce` is the scramble the answer was made with.
    async fn sha2_more(
        &mut self,
        secret: &Credentials,
        reply: crate::protocol::Packet,
        (seq, nonce): (u8, &[u8]),
        tls: &super::tls::BackendTls,
    ) -> Result<(), BackendError> {
        match reply.payload() {
            [0x01, 0x03] => {
                let ok = self.read(seq + 1).await?;
                self.expect_ok(ok.payload())
            }
            [0x01, 0x04] => {
                let Credentials::Password(p) = secret else {
                    return Err(
                        self.cannot("caching_sha2_password full authentication without a clear password")
                    );
                };
                let mut answer = p.as_bytes().to_vec();
                let mut seq = seq + 1;
                if self.stream.get_ref().is_tls() {
                    answer.push(0);
                } else {
                    let pem = match tls.public_key() {
                        Some(pem) => pem.to_vec(),
                        None if tls.get_public_key => {
                            self.stream.write_packet(seq, &[0x02]).await.map_err(|e| self.perr(e))?;
                            let key = self.read(seq + 1).await?;
                            seq += 2;
                            match key.payload().strip_prefix(&[0x01]) {
                                Some(pem) => pem.to_vec(),
                                None => return self.expect_ok(key.payload()).and(Err(self.cannot("an RSA key exchange but sent no key"))),
                            }
                        }
                        None => return Err(self.cannot(
                            "caching_sha2_password full authentication without TLS (set backend_tls mode, server_public_key_file or get_server_public_key)",
                        )),
                    };
                    let nonce = nonce.strip_suffix(&[0]).unwrap_or(nonce);
                    answer = crate::shared::rsa::encrypt_password(&pem, &answer, nonce).map_err(|e| {
                        self.cannot(&format!("caching_sha2_password with the server's RSA key: {e}"))
                    })?;
                }
                self.stream.write_packet(seq, &answer).await.map_err(|e| self.perr(e))?;
                let ok = self.read(seq + 1).await?;
                self.expect_ok(ok.payload())
            }
            p => self.expect_ok(p),
        }
    }

    fn cannot(&self, what: &str) -> BackendError {
        BackendError::Unsupported { addr: self.addr.clone(), what: format!("the server asks for {what}") }
    }

    fn unsupported(&self, plugin: &[u8]) -> BackendError {
        BackendError::Unsupported {
            addr: self.addr.clone(),
            what: format!(
                "server asks for auth plugin {:?}; rwproxy logs in to backends with mysql_native_password",
                String::from_utf8_lossy(plugin)
            ),
        }
    }
}

impl Credentials {
    /// The plugin to answer a server's `plugin` with, and the answer: `caching_sha2_password`
    /// when the server asks for it and the password is known in clear (MySQL 8's default),
    /// else `mysql_native_password`.
    pub fn answer(&self, plugin: &[u8], salt: &[u8]) -> (&'static str, Vec<u8>) {
        match self {
            Credentials::Password(p) if plugin == auth::SHA2_PLUGIN.as_bytes() => {
                let nonce = salt.strip_suffix(&[0]).unwrap_or(salt);
                (auth::SHA2_PLUGIN, auth::sha2_scramble(nonce, p.as_bytes()))
            }
            _ => (NATIVE_PLUGIN, self.scramble(salt)),
        }
    }

    /// The native-password reply to `salt`.
    pub fn scramble(&self, salt: &[u8]) -> Vec<u8> {
        match self {
            Credentials::Password(p) => auth::scramble(salt, p.as_bytes()),
            Credentials::Stage1(s) => auth::scramble_stage1(salt, s).to_vec(),
        }
    }

    pub fn from_stage1(s: Stage1) -> Self {
        Credentials::Stage1(s)
    }
}
