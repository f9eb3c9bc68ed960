//! The compressed protocol: any byte stream read as compressed frames and then as MySQL
//! packets must end in packets or an error (a frame whose zlib data does not give the length
//! its header claims included), never a panic or a buffer past one frame's size; and any
//! bytes written through the compressing side read back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwproxy::protocol::compress::Compressed;
use rwproxy::protocol::{ClientCommand, PacketStream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let io = Compressed::new(tokio::io::join(data, tokio::io::sink()));
        let mut stream = PacketStream::new(io, 1 << 20);
        stream.renumber();
        for _ in 0..64 {
            match stream.read_packet(Some(0)).await {
                Ok(Some(p)) => {
                    let _ = ClientCommand::parse(p.payload());
                }
                Ok(None) | Err(_) => break,
            }
        }
        let mut w = Compressed::new(tokio::io::join(tokio::io::empty(), Vec::new()));
        w.write_all(data).await.expect("write to memory");
        w.flush().await.expect("flush to memory");
        let (_, wire) = w.into_inner().into_inner();
        let mut back = Vec::new();
        Compressed::new(tokio::io::join(&wire[..], tokio::io::sink())).read_to_end(&mut back).await.expect("read back");
        assert_eq!(back, data, "the compressed round trip changed the bytes");
    });
});
