//! The handshake response, SSL request and COM_CHANGE_USER bodies a client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwproxy::protocol::handshake::{ChangeUser, HandshakeResponse, parse_auth_switch};

fuzz_target!(|data: &[u8]| {
    let _ = HandshakeResponse::is_ssl_request(data);
    if let Ok(r) = HandshakeResponse::decode(data) {
        let _ = r.encode();
    }
    for caps in [0, u32::MAX] {
        let _ = ChangeUser::decode(data, caps);
    }
    let _ = parse_auth_switch(data);
});
