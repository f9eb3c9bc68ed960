//! Which server a statement is read for: version-conditional comments (`/*!NNNNN … */`,
//! `/*M!NNNNNN … */`) are code on some servers and comments on others.

/// The backend's flavour and version, as `MYSQL_VERSION_ID` (10.11.19 → 101119).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    pub mariadb: bool,
    pub version: u32,
}

impl Default for Dialect {
    /// MariaDB 10.11.0: what the test cluster and the deployment run; sessions use the
    /// backend's real version as soon as it is known.
    fn default() -> Self {
        Dialect { mariadb: true, version: 101100 }
    }
}

impl Dialect {
    /// From a greeting's version string: `5.5.5-10.11.19-MariaDB-0+deb12u1` (MariaDB's
    /// replication-compatible prefix), `11.4.2-MariaDB`, `8.0.36`, `8.4.0-rwproxy`.
    pub fn from_server_version(text: &[u8]) -> Dialect {
        let s = String::from_utf8_lossy(text);
        let mariadb = s.contains("MariaDB");
        let s = if mariadb { s.strip_prefix("5.5.5-").unwrap_or(&s) } else { &s };
        let mut parts = s.split(['.', '-']).map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().unwrap_or(0)
        });
        let (major, minor, patch) =
            (parts.next().unwrap_or(0), parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let version = major.min(9999).saturating_mul(10000) + minor.min(99) * 100 + patch.min(99);
        Dialect { mariadb, version }
    }

    /// Whether an executable comment is code here. `version` is the comment's number (none
    /// for a bare `/*!`); `mariadb_only` for `/*M!`, which MySQL reads as a plain comment.
    /// MariaDB also ignores MySQL-only versions 50700–99999 unless the comment is `/*M!`.
    pub fn runs(self, version: Option<u32>, mariadb_only: bool) -> bool {
        if mariadb_only && !self.mariadb {
            return false;
        }
        let Some(v) = version else { return true };
        if v > self.version {
            return false;
        }
        !self.mariadb || mariadb_only || !(50700..=99999).contains(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_greetings() {
        let cases: [(&str, bool, u32); 6] = [
            ("5.5.5-10.11.19-MariaDB-0+deb12u1", true, 101119),
            ("11.4.2-MariaDB-ubu2404", true, 110402),
            ("8.0.36", false, 80036),
            ("8.4.0-rwproxy", false, 80400),
            ("garbage", false, 0),
            ("4294967295.1.1-MariaDB", true, 99990101),
        ];
        for (text, mariadb, version) in cases {
            assert_eq!(Dialect::from_server_version(text.as_bytes()), Dialect { mariadb, version }, "{text}");
        }
    }

    #[test]
    fn which_comments_run() {
        let maria = Dialect { mariadb: true, version: 101119 };
        let mysql = Dialect { mariadb: false, version: 80036 };
        assert!(maria.runs(Some(40101), false));
        assert!(maria.runs(Some(100100), false));
        assert!(!maria.runs(Some(999999), true), "mariadb-dump's sandbox line is a comment");
        assert!(!maria.runs(Some(50717), false), "MySQL 5.7+ syntax is not MariaDB's");
        assert!(maria.runs(Some(50717), true));
        assert!(maria.runs(None, true));
        assert!(mysql.runs(Some(80000), false));
        assert!(!mysql.runs(Some(80100), false));
        assert!(!mysql.runs(Some(100100), true), "/*M! is a comment on MySQL");
        assert!(!mysql.runs(None, true));
    }
}
