//! Command decoding: every payload a client can send after login.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwproxy::protocol::ClientCommand;

fuzz_target!(|data: &[u8]| {
    let _ = ClientCommand::parse(data);
});
