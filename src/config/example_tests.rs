//! `config/example.toml` is a valid config that mentions every key the config accepts: the
//! keys come from the file structs themselves (serde's field lists), so a new key the example
//! does not explain fails here.

use serde::de::{self, Deserialize, Visitor};

use super::file::*;

/// A deserializer that only records the field list serde asks a struct for.
struct FieldNames(std::cell::RefCell<Vec<&'static str>>);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stop")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> de::Deserializer<'de> for &FieldNames {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        self.0.borrow_mut().extend_from_slice(fields);
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

fn fields<'de, T: Deserialize<'de>>() -> Vec<&'static str> {
    let names = FieldNames(std::cell::RefCell::new(Vec::new()));
    let _ = T::deserialize(&names);
    names.0.into_inner()
}

/// The text of every part of the example under `header` (`[proxy]`, `[[servers]]`, or a
/// commented-out `# [admin.sql]`), up to the next header.
fn sections(example: &str, header: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in example.lines() {
        let bare = line.trim_start_matches('#').trim();
        if bare.starts_with('[') {
            inside = bare == header;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn the_example_config_is_valid_and_explains_every_key() {
    let example = include_str!("../../config/example.toml");
    let config = super::Config::parse(example, "config/example.toml", &|_| Some("x".into()))
        .unwrap_or_else(|e| panic!("config/example.toml: {e}"));
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
    let structs: [(&str, Vec<&str>); 14] = [
        ("[proxy]", fields::<ProxyFile>()),
        ("[pool]", fields::<PoolFile>()),
        ("[[servers]]", fields::<ServerFile>()),
        ("[[users]]", fields::<UserFile>()),
        ("[monitor]", fields::<MonitorFile>()),
        ("[replication]", fields::<ReplicationFile>()),
        ("[admin]", fields::<AdminFile>()),
        ("[admin.sql]", fields::<SqlAdminFile>()),
        ("[routing]", fields::<RoutingFile>()),
        ("[metrics]", fields::<MetricsFile>()),
        ("[[query_rules]]", fields::<QueryRuleFile>()),
        ("[query_log]", fields::<QueryLogFile>()),
        ("[tls]", fields::<TlsFile>()),
        ("[backend_tls]", fields::<BackendTlsFile>()),
    ];
    let top = fields::<ConfigFile>();
    assert_eq!(top.len(), 13, "a new top-level section needs its struct listed here: {top:?}");
    for (header, keys) in structs {
        assert!(!keys.is_empty(), "{header}: no fields read");
        let text = sections(example, header);
        assert!(!text.is_empty(), "config/example.toml has no {header} section");
        for key in keys.iter().filter(|k| **k != "sql") {
            let mentioned = text.split(|c: char| !(c.is_alphanumeric() || c == '_')).any(|w| w == *key);
            assert!(mentioned, "config/example.toml does not explain {header} {key}");
        }
    }
}
