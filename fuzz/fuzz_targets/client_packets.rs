//! Client packet framing: any byte stream read as MySQL packets (sequence ids, 16 MiB
//! continuation frames, the pre-login size cap) must end in packets or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwproxy::protocol::{ClientCommand, PacketStream};

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let io = tokio::io::join(data, tokio::io::sink());
        let mut stream = PacketStream::new(io, rwproxy::session::PRE_LOGIN_MAX_PACKET);
        let mut expected = Some(0u8);
        for _ in 0..64 {
            match stream.read_packet(expected).await {
                Ok(Some(p)) => {
                    let _ = ClientCommand::parse(p.payload());
                    expected = None;
                }
                Ok(None) | Err(_) => break,
            }
        }
    });
});
