use super::*;

const MINIMAL: &str = r#"
[[servers]]
hostgroup = 0
address = "127.0.0.1:3306"
[[users]]
username = "app"
password = "secret"
default_hostgroup = 0
"#;

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml", &no_env)
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().to_string()
}

#[test]
fn minimal_config_gets_defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.proxy.listen, "0.0.0.0:6033".parse().unwrap());
    assert_eq!(c.admin.listen, "127.0.0.1:6080".parse().unwrap());
    assert_eq!(c.servers[0].weight.get(), 1);
    assert_eq!(c.servers[0].max_connections.get(), 200);
    assert_eq!(c.pool.connect_timeout, Duration::from_secs(3));
    assert_eq!(c.users[0].secret, Secret::Clear("secret".into()));
    assert!(c.replication.is_none());
}

#[test]
fn example_and_local_configs_load() {
    let env = |k: &str| (k == "RWPROXY_APP_PASSWORD").then(|| "from-env".to_string());
    for file in ["config/example.toml", "config/local.toml"] {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + file;
        let text = std::fs::read_to_string(&path).unwrap();
        let c = Config::parse(&text, file, &env).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(c.replication.is_some(), "{file}");
        assert!(c.monitor.is_some(), "{file}");
    }
}

#[test]
fn errors_name_the_key_and_the_value() {
    let bad_addr = MINIMAL.replace("127.0.0.1:3306", "localhost");
    assert_eq!(err(&bad_addr), "servers[0].address: expected host:port, got \"localhost\"");
    let bad_port = MINIMAL.replace("127.0.0.1:3306", "db:99999");
    assert_eq!(err(&bad_port), "servers[0].address: bad port in \"db:99999\"");
    let bad_hg = MINIMAL.replace("default_hostgroup = 0", "default_hostgroup = 7");
    assert_eq!(err(&bad_hg), "users[0].default_hostgroup: no server is in hostgroup 7");
    let bad_listen = format!("[proxy]\nlisten = \"nowhere\"\n{MINIMAL}");
    assert_eq!(err(&bad_listen), "proxy.listen: expected ip:port, got \"nowhere\"");
    let zero = MINIMAL.replace("hostgroup = 0\naddress", "hostgroup = 0\nweight = 0\naddress");
    assert_eq!(err(&zero), "servers[0].weight: must be at least 1, got 0");
    let timeout = format!("[pool]\nconnect_timeout_ms = 0\n{MINIMAL}");
    assert_eq!(err(&timeout), "pool.connect_timeout_ms: must be greater than 0 (milliseconds)");
}

#[test]
fn unknown_keys_and_wrong_types_are_rejected_with_location() {
    let e = err(&format!("[proxy]\nlisten_port = 1\n{MINIMAL}"));
    assert!(e.starts_with("test.toml: ") && e.contains("listen_port"), "{e}");
    let e = err(&MINIMAL.replace("hostgroup = 0\naddress", "hostgroup = \"zero\"\naddress"));
    assert!(e.contains("hostgroup") && e.contains("line"), "{e}");
}

#[test]
fn passwords_hash_env_and_conflicts() {
    let hash = MINIMAL
        .replace("password = \"secret\"", "password_hash = \"*14E65567ABDB5135D0CFD9A70B3032C179A49EE7\"");
    assert!(matches!(parse(&hash).unwrap().users[0].secret, Secret::Hash(h) if h[0] == 0x14));
    let bad_hash = MINIMAL.replace("password = \"secret\"", "password_hash = \"secret\"");
    assert!(err(&bad_hash).starts_with("users[0].password_hash: expected \"*\" followed by 40 hex digits"));
    assert!(err(&bad_hash).contains("caching_sha2_password hash: \"$A$005$\""), "{}", err(&bad_hash));
    // MySQL 8's caching_sha2 hash, as `SHOW CREATE USER` prints it (hex: the salt is binary).
    let sha2 = MINIMAL.replace(
        "password = \"secret\"",
        "password_hash = \"0x24412430303524031A69251C34295C4B35167C7F1E5A7B63091349503974624D34504B5A424679354856336868686F52485A736E4A733368786E427575516C73446469496537\"",
    );
    assert!(matches!(&parse(&sha2).unwrap().users[0].secret, Secret::Sha2(s) if s.crypt.matches(b"foobar")));
    let env = MINIMAL.replace("password = \"secret\"", "password_env = \"NOPE_X\"");
    assert_eq!(err(&env), "users[0].password_env: environment variable \"NOPE_X\" is not set");
    let both = MINIMAL.replace("password = \"secret\"", "password = \"a\"\npassword_env = \"B\"");
    assert!(err(&both).starts_with("users[0].password: give only one"));
    let none = MINIMAL.replace("password = \"secret\"\n", "");
    assert!(err(&none).starts_with("users[0].password: one of"));
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let c = parse(MINIMAL).unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("secret\""), "{dbg}");
    assert!(dbg.contains("<redacted>"));
}

#[test]
fn replication_hostgroups_are_checked() {
    let same = format!("{MINIMAL}[replication]\nwriter_hostgroup = 0\nreader_hostgroup = 0\n");
    assert!(err(&same).starts_with("replication.reader_hostgroup: must differ"));
    let missing = format!("{MINIMAL}[replication]\nwriter_hostgroup = 3\nreader_hostgroup = 1\n");
    assert_eq!(err(&missing), "replication.writer_hostgroup: no server is in hostgroup 3");
}

#[test]
fn empty_config_says_what_is_missing() {
    assert_eq!(err(""), "servers: at least one [[servers]] entry is required");
}

#[test]
fn prepared_statements_per_connection_stay_within_the_servers_share() {
    let c = parse(MINIMAL).unwrap();
    let n = |v: u32| NonZeroU32::new(v).unwrap();
    // Defaults: 8000 per server over 200 connections is 40 each; the per-connection 20 wins.
    assert_eq!(c.pool.prepared_per_connection(c.servers[0].max_connections), 20);
    assert_eq!(c.pool.prepared_per_connection(n(1000)), 8);
    assert_eq!(c.pool.prepared_per_connection(n(20_000)), 1, "never below one");
    let tight = parse(&format!("{MINIMAL}[pool]\nmax_prepared_statements_per_server = 100\n")).unwrap();
    assert_eq!(tight.pool.prepared_per_connection(n(10)), 10);
    assert!(
        err(&format!("{MINIMAL}[pool]\nmax_prepared_statements_per_server = 0\n"))
            .contains("pool.max_prepared_statements_per_server")
    );
}
