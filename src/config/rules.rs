//! `[[query_rules]]` → compiled `QueryRule`s (ProxySQL semantics), checked once at load.

use std::collections::HashSet;

use regex::RegexBuilder;

use super::file::QueryRuleFile;
use super::validate::invalid;
use super::{ConfigError, QueryRule};

/// The active rules, sorted; and a warning for each inactive one (with its comment, which
/// says why when the importer made it inactive).
pub(super) fn validate(
    raw: Vec<QueryRuleFile>,
    hostgroups: &HashSet<u32>,
) -> Result<(Vec<QueryRule>, Vec<String>), ConfigError> {
    let mut warnings = Vec::new();
    let mut ids = HashSet::new();
    let mut rules = Vec::new();
    for (i, r) in raw.into_iter().enumerate() {
        let key = |f: &str| format!("query_rules[{i}].{f}");
        let rule_id = r.rule_id.ok_or_else(|| invalid(key("rule_id"), "is required"))?;
        if !ids.insert(rule_id) {
            return Err(invalid(key("rule_id"), format!("{rule_id} is used by another rule")));
        }
        let caseless = match r.re_modifiers.as_deref().map(str::to_ascii_uppercase) {
            None => true,
            Some(m) => {
                let parts: Vec<&str> = m.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
                if let Some(bad) = parts.iter().find(|p| !matches!(**p, "CASELESS" | "GLOBAL")) {
                    return Err(invalid(
                        key("re_modifiers"),
                        format!("unknown modifier {bad:?} (CASELESS, GLOBAL)"),
                    ));
                }
                parts.contains(&"CASELESS")
            }
        };
        let compile = |field: &str, re: Option<String>| -> Result<Option<regex::Regex>, ConfigError> {
            re.map(|re| {
                RegexBuilder::new(&re)
                    .case_insensitive(caseless)
                    .build()
                    .map_err(|e| invalid(key(field), format!("bad regular expression {re:?}: {e}")))
            })
            .transpose()
        };
        if let Some(hg) = r.destination_hostgroup.filter(|hg| !hostgroups.contains(hg)) {
            return Err(invalid(key("destination_hostgroup"), format!("no server is in hostgroup {hg}")));
        }
        let rule = QueryRule {
            rule_id,
            username: r.username,
            schemaname: r.schemaname,
            flag_in: r.flag_in.unwrap_or(0),
            flag_out: r.flag_out,
            match_digest: compile("match_digest", r.match_digest)?,
            match_pattern: compile("match_pattern", r.match_pattern)?,
            negate_match_pattern: r.negate_match_pattern.unwrap_or(false),
            destination_hostgroup: r.destination_hostgroup,
            apply: r.apply.unwrap_or(false),
            error_msg: r.error_msg,
        };
        if r.active.unwrap_or(true) {
            rules.push(rule);
        } else {
            let why = r.comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default();
            warnings.push(format!("query_rules[{i}] (rule_id {rule_id}) is inactive{why}"));
        }
    }
    rules.sort_by_key(|r| r.rule_id);
    Ok((rules, warnings))
}
