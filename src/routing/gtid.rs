//! MariaDB GTID positions (`domain-server-seq`, comma separated) and the "has applied"
//! relation used by read-your-writes. Per domain only the highest sequence number matters.

/// Highest sequence number seen per replication domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos(Vec<(u32, u64)>);

impl GtidPos {
    /// Parses `0-1-100,1-2-5`; `None` for anything else (e.g. MySQL UUID sets).
    pub fn parse(s: &str) -> Option<GtidPos> {
        let mut pos = GtidPos::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let mut it = part.split('-');
            let domain = it.next()?.parse().ok()?;
            let _server: u32 = it.next()?.parse().ok()?;
            let seq = it.next()?.parse().ok()?;
            if it.next().is_some() {
                return None;
            }
            pos.advance(domain, seq);
        }
        Some(pos)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(domain, highest sequence number)` pairs.
    pub fn domains(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.0.iter().copied()
    }

    /// The highest sequence number seen in `domain`.
    pub fn seq(&self, domain: u32) -> Option<u64> {
        self.0.iter().find(|(d, _)| *d == domain).map(|&(_, s)| s)
    }

    /// Records `seq` in `domain` (keeps the maximum).
    pub fn advance(&mut self, domain: u32, seq: u64) {
        match self.0.iter_mut().find(|(d, _)| *d == domain) {
            Some((_, s)) => *s = (*s).max(seq),
            None => self.0.push((domain, seq)),
        }
    }

    /// Merges another position (max per domain).
    pub fn merge(&mut self, other: &GtidPos) {
        for &(d, s) in &other.0 {
            self.advance(d, s);
        }
    }

    /// Whether everything in `needed` has been applied here.
    pub fn covers(&self, needed: &GtidPos) -> bool {
        needed.0.iter().all(|&(d, n)| self.0.iter().any(|&(dd, s)| dd == d && s >= n))
    }

    /// `domain-0-seq` list for `MASTER_GTID_WAIT` (the server id does not matter there).
    pub fn to_wait_arg(&self) -> String {
        self.0.iter().map(|(d, s)| format!("{d}-0-{s}")).collect::<Vec<_>>().join(",")
    }
}

/// The position of a `rwproxy:min_gtid=<position>` hint in a statement's text (comma
/// separated, up to the first space or `*/`).
pub fn hinted(sql: &[u8]) -> Option<GtidPos> {
    const KEY: &[u8] = b"rwproxy:min_gtid=";
    let at = sql.windows(KEY.len()).position(|w| w.eq_ignore_ascii_case(KEY))? + KEY.len();
    let rest = &sql[at..];
    let end = rest.iter().position(|&b| b.is_ascii_whitespace() || b == b'*').unwrap_or(rest.len());
    GtidPos::parse(std::str::from_utf8(&rest[..end]).ok()?).filter(|p| !p.is_empty())
}

impl std::fmt::Display for GtidPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(d, s)| format!("{d}-*-{s}")).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_cover() {
        let replica = GtidPos::parse("0-1-100,1-2-7").unwrap();
        assert!(replica.covers(&GtidPos::parse("0-1-100").unwrap()));
        assert!(replica.covers(&GtidPos::parse("0-3-99,1-2-7").unwrap()));
        assert!(!replica.covers(&GtidPos::parse("0-1-101").unwrap()));
        assert!(!replica.covers(&GtidPos::parse("2-1-1").unwrap()), "unknown domain is not covered");
        assert!(replica.covers(&GtidPos::default()));
        assert_eq!(GtidPos::parse(""), Some(GtidPos::default()));
        assert_eq!(GtidPos::parse("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5"), None);
        assert_eq!(GtidPos::parse("0-1-100,0-2-50").unwrap().to_wait_arg(), "0-0-100");
        let mut p = GtidPos::default();
        p.merge(&replica);
        p.advance(0, 90);
        assert_eq!(p, replica);
    }

    #[test]
    fn min_gtid_hints() {
        let sql = b"SELECT /* rwproxy:min_gtid=0-1-100,1-2-5 */ 1";
        assert_eq!(hinted(sql), GtidPos::parse("0-1-100,1-2-5"));
        assert_eq!(hinted(b"SELECT /*rwproxy:MIN_GTID=0-1-7*/ 1"), GtidPos::parse("0-1-7"));
        assert_eq!(hinted(b"SELECT /* rwproxy:min_gtid=garbage */ 1"), None);
        assert_eq!(hinted(b"SELECT 1"), None);
    }
}
