//! Connection phase packets: HandshakeV10, HandshakeResponse41, AuthSwitchRequest, COM_CHANGE_USER.

use super::ProtocolError;
use super::caps;
use super::wire::{Reader, put_lenenc_bytes, put_nul_str};

/// The server's greeting. Decoded from backends, encoded towards clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeV10 {
    pub server_version: Vec<u8>,
    pub connection_id: u32,
    pub salt: Vec<u8>,
    pub capabilities: u32,
    pub collation: u8,
    pub status: u16,
    pub auth_plugin: Vec<u8>,
    /// MariaDB's extended capabilities (`mariadb_caps`), sent when `CLIENT_MYSQL`
    /// (`LONG_PASSWORD`) is not in `capabilities`.
    pub mariadb_caps: u32,
}

impl HandshakeV10 {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.server_version.len());
        out.push(10);
        put_nul_str(&mut out, &self.server_version);
        out.extend_from_slice(&self.connection_id.to_le_bytes());
        let (part1, part2) = self.salt.split_at(self.salt.len().min(8));
        out.extend_from_slice(part1);
        out.push(0);
        out.extend_from_slice(&(self.capabilities as u16).to_le_bytes());
        out.push(self.collation);
        out.extend_from_slice(&self.status.to_le_bytes());
        out.extend_from_slice(&((self.capabilities >> 16) as u16).to_le_bytes());
        out.push(self.salt.len() as u8 + 1);
        out.extend_from_slice(&[0; 6]);
        let ext = if self.capabilities & caps::LONG_PASSWORD == 0 { self.mariadb_caps } else { 0 };
        out.extend_from_slice(&ext.to_le_bytes());
        out.extend_from_slice(part2);
        out.extend(std::iter::repeat_n(0u8, 13usize.saturating_sub(part2.len())));
        put_nul_str(&mut out, &self.auth_plugin);
        out
    }

    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        if r.u8("protocol version")? != 10 {
            return Err(ProtocolError::Malformed("protocol version (expected 10)"));
        }
        let server_version = r.nul_str().to_vec();
        let connection_id = r.u32("connection id")?;
        let mut salt = r.take(8, "salt")?.to_vec();
        r.u8("filler")?;
        let low = r.u16("capabilities")?;
        let collation = r.u8("collation")?;
        let status = r.u16("status")?;
        let high = r.u16("capabilities")?;
        let capabilities = u32::from(low) | u32::from(high) << 16;
        let salt_len = r.u8("salt length")?;
        let reserved = r.take(10, "reserved")?;
        let mariadb_caps = if capabilities & caps::LONG_PASSWORD == 0 {
            u32::from_le_bytes([reserved[6], reserved[7], reserved[8], reserved[9]])
        } else {
            0
        };
        if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = usize::from(salt_len).saturating_sub(8).max(13);
            let part2 = r.take(n, "salt")?;
            let part2 = part2.strip_suffix(&[0]).unwrap_or(part2);
            salt.extend_from_slice(part2);
        }
        let auth_plugin =
            if capabilities & caps::PLUGIN_AUTH != 0 { r.nul_str().to_vec() } else { Vec::new() };
        Ok(HandshakeV10 {
            server_version,
            connection_id,
            salt,
            capabilities,
            collation,
            status,
            auth_plugin,
            mariadb_caps,
        })
    }
}

/// The client's reply to the greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub max_packet: u32,
    pub collation: u8,
    pub username: Vec<u8>,
    pub auth_response: Vec<u8>,
    pub database: Option<Vec<u8>>,
    pub auth_plugin: Option<Vec<u8>>,
    /// MariaDB's extended capabilities: the filler's last 4 bytes, read when `CLIENT_MYSQL`
    /// (`LONG_PASSWORD`) is not in `capabilities`.
    pub mariadb_caps: u32,
}

impl HandshakeResponse {
    /// A 32-byte response with `CLIENT_SSL` is an SSLRequest; callers check `is_ssl_request`.
    pub fn is_ssl_request(payload: &[u8]) -> bool {
        payload.len() == 32
            && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & caps::SSL != 0
    }

    pub fn decode(payload: &[u8]) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let capabilities = r.u32("capabilities")?;
        if capabilities & caps::PROTOCOL_41 == 0 {
            return Err(ProtocolError::Unexpected("pre-4.1 handshake response"));
        }
        let max_packet = r.u32("max packet")?;
        let collation = r.u8("collation")?;
        let filler = r.take(23, "filler")?;
        let mariadb_caps = if capabilities & caps::LONG_PASSWORD == 0 {
            u32::from_le_bytes([filler[19], filler[20], filler[21], filler[22]])
        } else {
            0
        };
        let username = r.nul_str().to_vec();
        let auth_response = if capabilities & caps::PLUGIN_AUTH_LENENC_DATA != 0 {
            r.lenenc_bytes("auth response")?
        } else if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = r.u8("auth response length")?;
            r.take(usize::from(n), "auth response")?
        } else {
            r.nul_str()
        }
        .to_vec();
        let database =
            (capabilities & caps::CONNECT_WITH_DB != 0 && !r.is_empty()).then(|| r.nul_str().to_vec());
        let auth_plugin =
            (capabilities & caps::PLUGIN_AUTH != 0 && !r.is_empty()).then(|| r.nul_str().to_vec());
        Ok(HandshakeResponse {
            capabilities,
            max_packet,
            collation,
            username,
            auth_response,
            database,
            auth_plugin,
            mariadb_caps,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.username.len());
        out.extend_from_slice(&self.capabilities.to_le_bytes());
        out.extend_from_slice(&self.max_packet.to_le_bytes());
        out.push(self.collation);
        out.extend_from_slice(&[0; 19]);
        let ext = if self.capabilities & caps::LONG_PASSWORD == 0 { self.mariadb_caps } else { 0 };
        out.extend_from_slice(&ext.to_le_bytes());
        put_nul_str(&mut out, &self.username);
        if self.capabilities & caps::PLUGIN_AUTH_LENENC_DATA != 0 {
            put_lenenc_bytes(&mut out, &self.auth_response);
        } else {
            out.push(self.auth_response.len() as u8);
            out.extend_from_slice(&self.auth_response);
        }
        if let Some(db) = &self.database {
            put_nul_str(&mut out, db);
        }
        if let Some(plugin) = &self.auth_plugin {
            put_nul_str(&mut out, plugin);
        }
        out
    }
}

/// `0xFE plugin\0 data`: asks the peer to answer with another auth method.
pub fn auth_switch_request(plugin: &str, salt: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + plugin.len() + salt.len() + 1);
    out.push(0xfe);
    put_nul_str(&mut out, plugin.as_bytes());
    out.extend_from_slice(salt);
    out.push(0);
    out
}

/// Parses an AuthSwitchRequest into (plugin, salt).
pub fn parse_auth_switch(payload: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ProtocolError> {
    let mut r = Reader::new(payload);
    if r.u8("auth switch header")? != 0xfe {
        return Err(ProtocolError::Malformed("auth switch header"));
    }
    let plugin = r.nul_str().to_vec();
    let data = r.remaining();
    let data = data.strip_suffix(&[0]).unwrap_or(data);
    Ok((plugin, data.to_vec()))
}

/// COM_CHANGE_USER as sent by a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeUser {
    pub username: Vec<u8>,
    pub auth_response: Vec<u8>,
    pub database: Option<Vec<u8>>,
    pub collation: Option<u16>,
    pub auth_plugin: Option<Vec<u8>>,
}

impl ChangeUser {
    /// `payload` starts after the command byte.
    pub fn decode(payload: &[u8], capabilities: u32) -> Result<Self, ProtocolError> {
        let mut r = Reader::new(payload);
        let username = r.nul_str().to_vec();
        let auth_response = if capabilities & caps::SECURE_CONNECTION != 0 {
            let n = r.u8("auth response length")?;
            r.take(usize::from(n), "auth response")?.to_vec()
        } else {
            r.nul_str().to_vec()
        };
        let database = Some(r.nul_str().to_vec()).filter(|d| !d.is_empty());
        let collation = if r.remaining().len() >= 2 { Some(r.u16("collation")?) } else { None };
        let auth_plugin =
            (capabilities & caps::PLUGIN_AUTH != 0 && !r.is_empty()).then(|| r.nul_str().to_vec());
        Ok(ChangeUser { username, auth_response, database, collation, auth_plugin })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::mariadb_caps;

    // Greeting captured from MariaDB 10.11 (salt and thread id shortened to fixed bytes).
    const MARIADB_GREETING: &[u8] = b"\x0a5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x2a\x00\x00\x00\
ABCDEFGH\x00\xfe\xf7\x2d\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00\
IJKLMNOPQRST\x00mysql_native_password\x00";

    #[test]
    fn decodes_a_mariadb_greeting() {
        let h = HandshakeV10::decode(MARIADB_GREETING).unwrap();
        assert_eq!(h.server_version, b"5.5.5-10.11.19-MariaDB-0+deb12u1");
        assert_eq!(h.connection_id, 42);
        assert_eq!(h.salt, b"ABCDEFGHIJKLMNOPQRST");
        assert_eq!(h.collation, 0x2d);
        assert_eq!(h.status, 2);
        assert_eq!(h.capabilities & caps::PLUGIN_AUTH, caps::PLUGIN_AUTH);
        assert_eq!(h.auth_plugin, b"mysql_native_password");
        // Progress, bulk, extended metadata, metadata caching.
        assert_eq!(h.mariadb_caps, 0x1d);
    }

    #[test]
    fn greeting_round_trips() {
        let h = HandshakeV10::decode(MARIADB_GREETING).unwrap();
        assert_eq!(HandshakeV10::decode(&h.encode()).unwrap(), h);
    }

    #[test]
    fn truncated_greeting_is_an_error() {
        for n in 0..MARIADB_GREETING.len() - 25 {
            assert!(HandshakeV10::decode(&MARIADB_GREETING[..n]).is_err(), "len {n}");
        }
    }

    #[test]
    fn decodes_a_handshake_response_with_db_and_plugin() {
        let r = HandshakeResponse {
            capabilities: caps::PROTOCOL_41
                | caps::SECURE_CONNECTION
                | caps::PLUGIN_AUTH
                | caps::CONNECT_WITH_DB,
            max_packet: 1 << 24,
            collation: 45,
            username: b"app".to_vec(),
            auth_response: vec![1; 20],
            database: Some(b"test".to_vec()),
            auth_plugin: Some(b"caching_sha2_password".to_vec()),
            mariadb_caps: mariadb_caps::STMT_BULK_OPERATIONS,
        };
        let bytes = r.encode();
        assert_eq!(&bytes[..4], &(r.capabilities).to_le_bytes());
        assert_eq!(&bytes[28..32], &mariadb_caps::STMT_BULK_OPERATIONS.to_le_bytes());
        assert_eq!(HandshakeResponse::decode(&bytes).unwrap(), r);
        assert!(!HandshakeResponse::is_ssl_request(&bytes));
        // A MySQL client (CLIENT_MYSQL set) has no extended capabilities: the filler is zeros.
        let mysql = HandshakeResponse { capabilities: r.capabilities | caps::LONG_PASSWORD, ..r };
        let bytes = mysql.encode();
        assert_eq!(&bytes[9..32], &[0; 23]);
        assert_eq!(HandshakeResponse::decode(&bytes).unwrap().mariadb_caps, 0);
    }

    #[test]
    fn handshake_response_garbage_is_an_error() {
        assert!(HandshakeResponse::decode(&[0xff; 8]).is_err());
        assert!(HandshakeResponse::decode(b"\x00\x02\x00\x00").is_err());
        let mut ssl = vec![0u8; 32];
        ssl[..4].copy_from_slice(&(caps::SSL | caps::PROTOCOL_41).to_le_bytes());
        assert!(HandshakeResponse::is_ssl_request(&ssl));
    }

    #[test]
    fn auth_switch_round_trip() {
        let p = auth_switch_request("mysql_native_password", b"01234567890123456789");
        let (plugin, salt) = parse_auth_switch(&p).unwrap();
        assert_eq!(plugin, b"mysql_native_password");
        assert_eq!(salt, b"01234567890123456789");
    }

    #[test]
    fn decodes_change_user() {
        let caps = caps::SECURE_CONNECTION | caps::PLUGIN_AUTH;
        let p = b"bob\x00\x03abcshop\x00\x2d\x00mysql_native_password\x00";
        let c = ChangeUser::decode(p, caps).unwrap();
        assert_eq!(c.username, b"bob");
        assert_eq!(c.auth_response, b"abc");
        assert_eq!(c.database.as_deref(), Some(&b"shop"[..]));
        assert_eq!(c.collation, Some(45));
        assert_eq!(c.auth_plugin.as_deref(), Some(&b"mysql_native_password"[..]));
        assert!(ChangeUser::decode(b"bob\x00\x14ab", caps).is_err());
    }
}
