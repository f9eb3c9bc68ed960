//! GTID positions and the "has applied" relation read-your-writes uses, for both vendors:
//! MariaDB's `domain-server-seq` lists (per domain only the highest sequence number matters,
//! since a domain is applied in order) and MySQL's GTID sets (`uuid:1-5:7, uuid2:1-9`, also
//! tagged `uuid:tag:1-3` from 8.3), compared as sets of intervals.

/// Intervals kept per MySQL source; beyond this the lowest gaps are filled (a stricter
/// requirement, never a weaker one), so a position stays small whatever the write history.
const MAX_INTERVALS: usize = 64;

/// A position: what has been applied, or what a read must see.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GtidPos {
    /// MariaDB: highest sequence number per replication domain.
    domains: Vec<(u32, u64)>,
    /// MySQL: per source (`uuid` or `uuid:tag`, lowercase), sorted disjoint intervals.
    sets: Vec<(String, Vec<(u64, u64)>)>,
}

impl GtidPos {
    /// Parses a MariaDB list (`0-1-100,1-2-5`) or a MySQL set (`uuid:1-5:7,uuid2:1-3`,
    /// whitespace and newlines allowed, as `@@gtid_executed` prints it). `None` when it is
    /// neither.
    pub fn parse(s: &str) -> Option<GtidPos> {
        let mut pos = GtidPos::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.contains(':') {
                pos.parse_mysql(part)?;
            } else {
                let mut it = part.split('-');
                let domain = it.next()?.parse().ok()?;
                let _server: u32 = it.next()?.parse().ok()?;
                let seq = it.next()?.parse().ok()?;
                if it.next().is_some() {
                    return None;
                }
                pos.advance(domain, seq);
            }
        }
        Some(pos)
    }

    /// `uuid[:tag]:interval[:interval…][:tag:interval…]`.
    fn parse_mysql(&mut self, part: &str) -> Option<()> {
        let mut it = part.split(':').map(str::trim);
        let uuid = it.next()?.to_ascii_lowercase();
        let hex = uuid.chars().filter(|c| c.is_ascii_hexdigit()).count();
        if uuid.len() != 36 || hex != 32 || uuid.chars().filter(|&c| c == '-').count() != 4 {
            return None;
        }
        let mut source = uuid.clone();
        for piece in it {
            if piece.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
                let tag_ok =
                    piece.len() <= 32 && piece.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !tag_ok {
                    return None;
                }
                source = format!("{uuid}:{}", piece.to_ascii_lowercase());
                continue;
            }
            let (a, b) = match piece.split_once('-') {
                Some((a, b)) => (a.trim().parse().ok()?, b.trim().parse().ok()?),
                None => {
                    let n = piece.parse().ok()?;
                    (n, n)
                }
            };
            if a == 0 || b < a {
                return None;
            }
            self.add_interval(&source, (a, b));
        }
        Some(())
    }

    pub fn is_empty(&self) -> bool {
        self.domains.is_empty() && self.sets.is_empty()
    }

    /// Whether this is (also) a MySQL GTID set.
    pub fn is_mysql(&self) -> bool {
        !self.sets.is_empty()
    }

    /// `(stream, highest sequence number)` pairs: MariaDB domains, and MySQL sources under a
    /// hash of their name (top bit set). For estimates that only need "how far", such as
    /// when a write was acknowledged.
    pub fn streams(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        let domains = self.domains.iter().map(|&(d, s)| (u64::from(d), s));
        let sets = self.sets.iter().filter_map(|(src, iv)| Some((source_key(src), iv.last()?.1)));
        domains.chain(sets)
    }

    /// The highest sequence number of `stream` (see `streams`).
    pub fn stream_seq(&self, stream: u64) -> Option<u64> {
        self.streams().find(|&(k, _)| k == stream).map(|(_, s)| s)
    }

    /// Records `seq` in `domain` (keeps the maximum).
    pub fn advance(&mut self, domain: u32, seq: u64) {
        match self.domains.iter_mut().find(|(d, _)| *d == domain) {
            Some((_, s)) => *s = (*s).max(seq),
            None => self.domains.push((domain, seq)),
        }
    }

    fn add_interval(&mut self, source: &str, (a, b): (u64, u64)) {
        let i = match self.sets.iter().position(|(s, _)| s == source) {
            Some(i) => i,
            None => {
                self.sets.push((source.to_string(), Vec::new()));
                self.sets.len() - 1
            }
        };
        let list = &mut self.sets[i].1;
        list.push((a, b));
        list.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(list.len());
        for &(a, b) in list.iter() {
            match merged.last_mut() {
                Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        while merged.len() > MAX_INTERVALS {
            let second = merged.remove(1);
            merged[0].1 = second.1;
        }
        *list = merged;
    }

    /// Merges another position (max per domain, union of sets).
    pub fn merge(&mut self, other: &GtidPos) {
        for &(d, s) in &other.domains {
            self.advance(d, s);
        }
        for (source, list) in &other.sets {
            for &iv in list {
                self.add_interval(source, iv);
            }
        }
    }

    /// Whether everything in `needed` has been applied here.
    pub fn covers(&self, needed: &GtidPos) -> bool {
        let domains =
            needed.domains.iter().all(|&(d, n)| self.domains.iter().any(|&(dd, s)| dd == d && s >= n));
        domains
            && needed.sets.iter().all(|(source, want)| {
                let have = self.sets.iter().find(|(s, _)| s == source).map_or(&[][..], |(_, l)| &l[..]);
                want.iter().all(|&(a, b)| have.iter().any(|&(x, y)| x <= a && b <= y))
            })
    }

    /// `domain-0-seq` list for `MASTER_GTID_WAIT` (the server id does not matter there).
    pub fn to_wait_arg(&self) -> String {
        self.domains.iter().map(|(d, s)| format!("{d}-0-{s}")).collect::<Vec<_>>().join(",")
    }

    /// The MySQL GTID set text (`uuid:1-5:7,…`) for `WAIT_FOR_EXECUTED_GTID_SET`.
    pub fn to_mysql_set(&self) -> String {
        let parts: Vec<String> = self
            .sets
            .iter()
            .map(|(source, list)| {
                let ivs: Vec<String> = list
                    .iter()
                    .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
                    .collect();
                format!("{source}:{}", ivs.join(":"))
            })
            .collect();
        parts.join(",")
    }

    /// The statement that waits up to `secs` for this position on a replica of the vendor
    /// (`mariadb`); it answers 0 once the position is applied.
    pub fn wait_statement(&self, mariadb: bool, secs: f64) -> String {
        if mariadb {
            format!("SELECT MASTER_GTID_WAIT('{}', {secs:.3})", self.to_wait_arg())
        } else {
            format!("SELECT WAIT_FOR_EXECUTED_GTID_SET('{}', {secs:.3})", self.to_mysql_set())
        }
    }
}

fn source_key(source: &str) -> u64 {
    // FNV-1a: stable and cheap; collisions only blur an estimate.
    let h = source
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    h | (1 << 63)
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
        let mut parts: Vec<String> = self.domains.iter().map(|(d, s)| format!("{d}-*-{s}")).collect();
        if self.is_mysql() {
            parts.push(self.to_mysql_set());
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
#[path = "gtid_tests.rs"]
mod tests;
