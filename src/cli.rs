//! The one-shot subcommands: check a config, explain a route, import a ProxySQL config, hash
//! a password.

use std::path::Path;

use anyhow::Context as _;
use rwproxy::config::Config;

/// Exit 0 with "OK", or 1 with the key path and reason.
pub fn check_config(file: &Path) -> anyhow::Result<()> {
    match Config::load(file) {
        Ok(config) => {
            for w in &config.warnings {
                eprintln!("warning: {w}");
            }
            println!("{}: OK", file.display());
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

pub fn explain(config: &Path, sql: &str, assumed: &rwproxy::admin::Assumed) -> anyhow::Result<()> {
    let config = Config::load(config)?;
    let dialect = rwproxy::admin::assumed_dialect(&config);
    let v = rwproxy::admin::explain(&config, sql, assumed, dialect).map_err(anyhow::Error::msg)?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub fn import_proxysql(file: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let toml = rwproxy::import::convert(&text)
        .with_context(|| format!("{} is not valid libconfig", file.display()))?;
    print!("{toml}");
    Ok(())
}

pub fn hash_password(caching_sha2: bool) -> anyhow::Result<()> {
    use rwproxy::protocol::{auth, sha2_crypt::Sha2Crypt};
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let pw = line.trim_end_matches(['\n', '\r']).as_bytes();
    if caching_sha2 {
        // Printable salt bytes, none that needs quoting in TOML or splits MySQL's format.
        let salt = auth::new_salt().map(|b| if b"$\"'\\".contains(&b) { b'x' } else { b });
        let hash = Sha2Crypt::new(pw, salt).context("the password is over 256 bytes")?;
        println!("{}", hash.text());
    } else {
        println!("{}", auth::format_hash(&auth::native_hash(pw)));
    }
    Ok(())
}

/// Where `rwproxy admin` connects: `--admin`, else `admin.listen` of `--config`, else the
/// default loopback address.
pub fn admin_address(flag: Option<String>, config: Option<&Path>) -> anyhow::Result<String> {
    Ok(match (flag, config) {
        (Some(a), _) => a,
        (None, Some(path)) => Config::load(path)?.admin.listen.to_string(),
        (None, None) => "127.0.0.1:6080".into(),
    })
}
