//! A minimal raw protocol client for byte-level comparisons and malformed input.

use rwproxy::protocol::auth::{NATIVE_PLUGIN, scramble};
use rwproxy::protocol::handshake::{HandshakeResponse, HandshakeV10};
use rwproxy::protocol::{MAX_PAYLOAD, PacketStream, ReplyKind, ReplyTracker, Step, caps};
use tokio::net::TcpStream;

pub const BASE_CAPS: u32 = caps::LONG_PASSWORD
    | caps::PROTOCOL_41
    | caps::SECURE_CONNECTION
    | caps::PLUGIN_AUTH
    | caps::TRANSACTIONS
    | caps::MULTI_RESULTS
    | caps::MULTI_STATEMENTS
    | caps::PS_MULTI_RESULTS;

pub struct Raw {
    pub stream: PacketStream<TcpStream>,
    pub greeting: HandshakeV10,
    pub caps: u32,
}

/// Logs in; `Err` carries the server's reply payload (an ERR) when login fails.
pub async fn connect(port: u16, user: &str, pw: &str, db: Option<&str>, caps: u32) -> Result<Raw, Vec<u8>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.expect("tcp connect");
    let mut stream = PacketStream::new(tcp, 1 << 30);
    let g = stream.read_packet(Some(0)).await.expect("greeting").expect("greeting packet");
    if g.payload()[0] == 0xff {
        return Err(g.payload().to_vec());
    }
    let greeting = HandshakeV10::decode(g.payload()).expect("decode greeting");
    let mut caps = (caps | BASE_CAPS) & greeting.capabilities;
    if db.is_some() {
        caps |= caps::CONNECT_WITH_DB;
    }
    let resp = HandshakeResponse {
        capabilities: caps,
        max_packet: 1 << 30,
        collation: 45,
        username: user.as_bytes().to_vec(),
        auth_response: scramble(&greeting.salt, pw.as_bytes()),
        database: db.map(|d| d.as_bytes().to_vec()),
        auth_plugin: Some(NATIVE_PLUGIN.as_bytes().to_vec()),
    };
    stream.write_packet(1, &resp.encode()).await.expect("send response");
    let reply = stream.read_packet(Some(2)).await.expect("login reply").expect("login reply packet");
    if reply.payload()[0] != 0 {
        return Err(reply.payload().to_vec());
    }
    Ok(Raw { stream, greeting, caps })
}

impl Raw {
    /// Sends one command and returns every reply packet payload, in order.
    pub async fn command(&mut self, payload: &[u8], kind: ReplyKind) -> Vec<Vec<u8>> {
        self.stream.write_packet(0, payload).await.expect("send command");
        self.read_reply(kind, payload.first() == Some(&0x17)).await
    }

    pub async fn read_reply(&mut self, kind: ReplyKind, binary: bool) -> Vec<Vec<u8>> {
        let mut t = ReplyTracker::new(kind, self.caps & caps::DEPRECATE_EOF != 0, binary);
        let mut out = Vec::new();
        loop {
            let p = self.stream.read_packet(None).await.expect("reply").expect("reply packet");
            let len = p.payload().len().min(MAX_PAYLOAD - 1);
            let step = t.on_frame(len, &p.payload()[..p.payload().len().min(32)]).expect("reply shape");
            out.push(p.payload().to_vec());
            match step {
                Step::Done(_) => return out,
                Step::LocalInfile => panic!("unexpected LOCAL INFILE request"),
                Step::More => {}
            }
        }
    }

    pub async fn query(&mut self, sql: &str) -> Vec<Vec<u8>> {
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.command(&p, ReplyKind::ResultSets).await
    }
}

/// Status flags of the last packet of a reply (OK or EOF), as the client sees them.
pub fn last_status(reply: &[Vec<u8>], deprecate_eof: bool) -> u16 {
    let last = reply.last().expect("non-empty reply");
    if last[0] == 0xfe && !deprecate_eof && last.len() < 9 {
        return u16::from_le_bytes([last[3], last[4]]);
    }
    rwproxy::protocol::reply::ok_status(last).expect("OK status")
}
