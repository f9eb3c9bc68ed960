//! ProxySQL query-rule evaluation: `rule_id` order, `flagIN`/`flagOUT` chains, `apply`.

use super::SessionFacts;
use super::classify::Statement;
use crate::config::QueryRule;

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    NoMatch,
    /// (rule id, destination hostgroup) of the last matching rule that set one.
    Hostgroup(u32, u32),
    /// (rule id, error_msg)
    Error(u32, String),
}

pub fn evaluate(rules: &[QueryRule], stmt: &Statement, sql: &[u8], facts: &SessionFacts<'_>) -> Outcome {
    if rules.is_empty() {
        return Outcome::NoMatch;
    }
    let text = String::from_utf8_lossy(sql.get(stmt.span.0..stmt.span.1).unwrap_or_default());
    let mut flag = 0i64;
    let mut dest = None;
    for rule in rules {
        if rule.flag_in != flag
            || rule.username.as_deref().is_some_and(|u| u != facts.user)
            || rule.schemaname.as_deref().is_some_and(|s| Some(s) != facts.schema)
            // ProxySQL negates both regexes with negate_match_pattern.
            || rule.match_digest.as_ref().is_some_and(|re| re.is_match(&stmt.digest.text) == rule.negate_match_pattern)
            || rule.match_pattern.as_ref().is_some_and(|re| re.is_match(&text) == rule.negate_match_pattern)
        {
            continue;
        }
        if let Some(msg) = &rule.error_msg {
            return Outcome::Error(rule.rule_id, msg.clone());
        }
        if let Some(f) = rule.flag_out {
            flag = f;
        }
        if let Some(hg) = rule.destination_hostgroup {
            dest = Some((rule.rule_id, hg));
        }
        if rule.apply {
            break;
        }
    }
    dest.map_or(Outcome::NoMatch, |(id, hg)| Outcome::Hostgroup(id, hg))
}

#[cfg(test)]
mod tests {

    fn trimmed(sql: &[u8]) -> &[u8] {
        let (a, b) = crate::routing::classify(sql, crate::routing::Dialect::default()).span;
        &sql[a..b]
    }

    #[test]
    fn rule_text_is_the_statement_without_surrounding_comments() {
        assert_eq!(trimmed(b"  /* c */ SELECT 1 FOR UPDATE ; -- x\n"), b"SELECT 1 FOR UPDATE");
        assert_eq!(trimmed(b"SELECT 1 /* trailing */\n\n"), b"SELECT 1");
        assert_eq!(trimmed(b"SELECT '/* not a comment */'"), b"SELECT '/* not a comment */'");
        assert_eq!(trimmed(b"  "), b"");
        assert_eq!(trimmed(b";"), b"");
    }
}
