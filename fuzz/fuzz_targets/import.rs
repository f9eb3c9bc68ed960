//! The ProxySQL config importer (libconfig parser and conversion) on any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(toml) = rwproxy::import::convert(text) {
            let _ = rwproxy::config::Config::parse(&toml, "fuzz", &|_| None);
        }
    }
});
