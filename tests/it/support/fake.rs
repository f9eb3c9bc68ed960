//! A scripted backend for what a real server will not do on demand: it accepts any login,
//! answers every command with OK, and does to a query containing `FAIL_MARK` what the test
//! asked (close the socket, or never answer).

use rwproxy::protocol::handshake::HandshakeV10;
use rwproxy::protocol::reply::ok_packet;
use rwproxy::protocol::{PacketStream, caps};
use tokio::net::{TcpListener, TcpStream};

/// Queries containing this are the ones the script misbehaves on.
pub const FAIL_MARK: &str = "fake-backend-fails-here";

#[derive(Debug, Clone, Copy)]
pub enum Misbehave {
    /// Close the connection without a reply.
    Close,
    /// Never answer (a hung server).
    Hang,
}

/// Starts the backend on a free loopback port; returns its address.
pub async fn start(how: Misbehave) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind fake backend");
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut id = 1;
        while let Ok((s, _)) = listener.accept().await {
            id += 1;
            tokio::spawn(serve(s, id, how));
        }
    });
    addr
}

async fn serve(s: TcpStream, id: u32, how: Misbehave) {
    let mut p = PacketStream::new(s, 1 << 24);
    let greeting = HandshakeV10 {
        server_version: b"10.11.99-MariaDB-fake".to_vec(),
        connection_id: id,
        salt: b"abcdefghijklmnopqrst".to_vec(),
        capabilities: caps::SUPPORTED & !caps::LONG_PASSWORD,
        collation: 45,
        status: 2,
        auth_plugin: b"mysql_native_password".to_vec(),
        mariadb_caps: 0,
    };
    if p.write_packet(0, &greeting.encode()).await.is_err() {
        return;
    }
    let Ok(Some(_login)) = p.read_packet(Some(1)).await else { return };
    if p.write_packet(2, &ok_packet(0, 0, 2, 0)).await.is_err() {
        return;
    }
    while let Ok(Some(cmd)) = p.read_packet(Some(0)).await {
        let failing = cmd.payload().windows(FAIL_MARK.len()).any(|w| w == FAIL_MARK.as_bytes());
        match (failing, how) {
            (true, Misbehave::Close) => return,
            (true, Misbehave::Hang) => std::future::pending::<()>().await,
            _ => {}
        }
        if cmd.payload().first() == Some(&0x01) {
            return;
        }
        if p.write_packet(1, &ok_packet(0, 0, 2, 0)).await.is_err() {
            return;
        }
    }
}

/// A proxy config with the shared cluster's primary as writer and `reader` as the only reader,
/// and no monitor (which would shun a backend that answers probes with OK).
pub fn config_with_reader(reader: &str, extra: &str) -> String {
    let c = super::cluster();
    let mut t = String::from("[proxy]\nlisten = \"127.0.0.1:0\"\nshutdown_timeout_ms = 5000\n");
    t += "[pool]\nconnect_timeout_ms = 2000\ncheckout_timeout_ms = 3000\n";
    t += &format!("[[servers]]\nhostgroup = 0\naddress = \"{}\"\n", c.primary.addr());
    t += &format!("[[servers]]\nhostgroup = 1\naddress = \"{reader}\"\n");
    t += &format!(
        "[[users]]\nusername = \"{}\"\npassword = \"{}\"\ndefault_hostgroup = 0\n",
        super::cluster::APP_USER,
        super::cluster::APP_PASSWORD
    );
    t += "[replication]\nwriter_hostgroup = 0\nreader_hostgroup = 1\n";
    t += "[routing]\nread_consistency = \"none\"\n";
    t += "[admin]\nlisten = \"127.0.0.1:0\"\nallow_without_token = true\n[metrics]\nlisten = \"127.0.0.1:0\"\n";
    t + extra
}
