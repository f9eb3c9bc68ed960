//! Route explanation for `GET /route` and `rwproxy explain`: the decision for a statement in
//! a session with the given facts, and which of those facts changed it.

use serde_json::{Value, json};

use crate::config::Config;
use crate::routing::{Dialect, Reason, SessionFacts, classify, route};

/// The session a statement is explained for (what is not given: a fresh autocommit session).
#[derive(Debug, Clone, Default)]
pub struct Assumed {
    /// Default: the first configured user.
    pub user: Option<String>,
    /// Default: the user's `default_schema`.
    pub schema: Option<String>,
    /// Pinned to a connection of this hostgroup (a transaction, a lock, a temporary table …).
    pub pinned: Option<u32>,
    /// Inside a transaction: pinned to the writer (or the user's default hostgroup).
    pub in_transaction: bool,
    pub recent_write: bool,
    pub autocommit_off: bool,
    pub read_only: bool,
}

/// Explains where `sql` would go for a session as `assumed` describes.
pub fn explain(config: &Config, sql: &str, assumed: &Assumed, dialect: Dialect) -> Result<Value, String> {
    let name =
        assumed.user.clone().or_else(|| config.users.first().map(|u| u.username.clone())).unwrap_or_default();
    let u = config.user(name.as_bytes()).ok_or_else(|| format!("unknown user {name:?}"))?;
    let schema = assumed.schema.as_deref().or(u.default_schema.as_deref());
    let writer = config.replication.map_or(u.default_hostgroup, |r| r.writer_hostgroup);
    let pinned = assumed.pinned.or(assumed.in_transaction.then_some(writer));
    let facts = SessionFacts {
        user: &u.username,
        schema,
        default_hostgroup: u.default_hostgroup,
        pinned,
        recent_write: assumed.recent_write,
        autocommit_off: assumed.autocommit_off,
        read_only: assumed.read_only,
    };
    let stmt = classify(sql.as_bytes(), dialect);
    let decide = |f: &SessionFacts| {
        let r = route(&stmt, sql.as_bytes(), f, config);
        (r.hostgroup, r.reason)
    };
    let r = route(&stmt, sql.as_bytes(), &facts, config);
    let baseline = (r.hostgroup, r.reason);
    // A fact applied when the decision is different without it.
    let mut applied: Vec<&str> = Vec::new();
    let toggles: [(&str, bool, SessionFacts); 4] = [
        ("pinned", pinned.is_some(), SessionFacts { pinned: None, ..facts }),
        ("recent_write", facts.recent_write, SessionFacts { recent_write: false, ..facts }),
        ("autocommit_off", facts.autocommit_off, SessionFacts { autocommit_off: false, ..facts }),
        ("read_only", facts.read_only, SessionFacts { read_only: false, ..facts }),
    ];
    for (fact, set, without) in toggles {
        if set && decide(&without) != baseline {
            applied.push(fact);
        }
    }
    if matches!(r.reason, Reason::HintWriter | Reason::HintReader | Reason::HintHostgroup) {
        applied.push("hint");
    }
    if let Reason::Rule(id) | Reason::RuleOverridden(id) = r.reason {
        let rule = config.query_rules.iter().find(|q| q.rule_id == id);
        if rule.is_some_and(|q| q.username.is_some()) {
            applied.push("user");
        }
        if rule.is_some_and(|q| q.schemaname.is_some()) {
            applied.push("schema");
        }
    }
    if r.reason == Reason::DefaultHostgroup {
        applied.push("user");
    }
    let mut v = json!({
        "hostgroup": r.hostgroup,
        "target": r.target.as_str(),
        "reason": r.reason.describe(),
        "digest": stmt.digest.text,
        "kind": format!("{:?}", stmt.kind),
        "facts": {
            "user": u.username,
            "schema": schema,
            "pinned": pinned,
            "recent_write": facts.recent_write,
            "autocommit_off": facts.autocommit_off,
            "read_only": facts.read_only,
            "hint": hint_text(&stmt.hint),
        },
        "applied": applied,
    });
    if let Some(e) = r.error {
        v["error"] = json!(e);
    }
    if facts.recent_write && config.routing.read_consistency != crate::config::ReadConsistency::Session {
        v["note"] = json!(
            "with GTID-based read consistency (global, universal) a read after a write is not routed by \
             this fact: at checkout it goes to a replica that has applied the write, else to the writer"
        );
    }
    Ok(v)
}

fn hint_text(h: &crate::routing::Hint) -> Option<String> {
    let mut parts = Vec::new();
    match h.target {
        Some(crate::routing::HintTarget::Writer) => parts.push("writer".to_string()),
        Some(crate::routing::HintTarget::Reader) => parts.push("reader".to_string()),
        None => {}
    }
    if let Some(hg) = h.hostgroup {
        parts.push(format!("hostgroup={hg}"));
    }
    if let Some(ms) = h.timeout_ms {
        parts.push(format!("timeout_ms={ms}"));
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[servers]]
hostgroup = 0
address = "127.0.0.1:3306"
[[servers]]
hostgroup = 1
address = "127.0.0.1:3307"
[[users]]
username = "app"
password = "x"
default_hostgroup = 0
[[users]]
username = "reporting"
password = "x"
default_hostgroup = 0
[[query_rules]]
rule_id = 5
username = "reporting"
match_pattern = "^SELECT"
destination_hostgroup = 1
apply = true
[replication]
writer_hostgroup = 0
reader_hostgroup = 1
"#;

    fn run_with(extra: &str, sql: &str, a: Assumed) -> Value {
        let config = Config::parse(&format!("{CONFIG}{extra}"), "test", &|_| None).unwrap();
        explain(&config, sql, &a, Dialect::default()).unwrap()
    }

    fn run(sql: &str, a: Assumed) -> Value {
        run_with("", sql, a)
    }

    #[test]
    fn the_facts_that_changed_a_decision_are_named() {
        let v = run("SELECT 1 FROM t", Assumed::default());
        assert_eq!(
            (v["target"].as_str(), v["applied"].as_array().unwrap().len()),
            (Some("reader"), 0),
            "{v}"
        );
        let recent = Assumed { recent_write: true, read_only: true, ..Assumed::default() };
        let v = run_with("[routing]\nread_consistency = \"session\"\n", "SELECT 1 FROM t", recent.clone());
        assert_eq!(v["target"], "writer", "{v}");
        assert_eq!(
            v["applied"],
            json!(["recent_write"]),
            "read_only alone changes nothing for a plain read: {v}"
        );
        let v = run("SELECT 1 FROM t", recent);
        assert_eq!((v["target"].as_str(), v["note"].is_string()), (Some("reader"), true), "{v}");
        let v = run("SELECT 1 FROM t", Assumed { autocommit_off: true, ..Assumed::default() });
        assert_eq!(
            (v["target"].as_str(), v["applied"].clone()),
            (Some("writer"), json!(["autocommit_off"])),
            "{v}"
        );
        let v = run("SELECT 1 FROM t", Assumed { in_transaction: true, ..Assumed::default() });
        assert_eq!(
            (v["facts"]["pinned"].as_u64(), v["applied"].clone()),
            (Some(0), json!(["pinned"])),
            "{v}"
        );
        let v = run("SELECT 1 FROM t", Assumed { user: Some("reporting".into()), ..Assumed::default() });
        assert_eq!(v["applied"], json!(["user"]), "{v}");
        let v = run("/* rwproxy:writer */ SELECT 1 FROM t", Assumed::default());
        assert_eq!(
            (v["facts"]["hint"].as_str(), v["applied"].clone()),
            (Some("writer"), json!(["hint"])),
            "{v}"
        );
        let config = Config::parse(CONFIG, "test", &|_| None).unwrap();
        let unknown = Assumed { user: Some("nobody".into()), ..Assumed::default() };
        assert!(explain(&config, "SELECT 1", &unknown, Dialect::default()).is_err());
    }
}
