//! The classifier, digest, SET parser and GTID hints on any statement text, under both
//! dialects (version-conditional comments read for MariaDB and for MySQL).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rwproxy::routing::{Dialect, classify, gtid, set};

fuzz_target!(|data: &[u8]| {
    for version in [&b"10.11.6-MariaDB"[..], b"8.0.36"] {
        let dialect = Dialect::from_server_version(version);
        let stmt = classify(data, dialect);
        assert!(stmt.digest.text.len() <= rwproxy::routing::digest::MAX_DIGEST_TEXT);
        let _ = set::parse_set(data, dialect);
    }
    let _ = gtid::hinted(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = gtid::GtidPos::parse(text);
    }
});
