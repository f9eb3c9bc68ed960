//! Handshake collation ids the proxy can replay with `SET NAMES`, so pooled connections need
//! not be keyed by the client's collation. Ids outside this list stay part of the pool key.

/// (id, character set, collation): ids that mean the same on MariaDB 10.x/11.x and MySQL 8.
const KNOWN: [(u8, &str, &str); 14] = [
    (8, "latin1", "latin1_swedish_ci"),
    (11, "ascii", "ascii_general_ci"),
    (33, "utf8mb3", "utf8mb3_general_ci"),
    (45, "utf8mb4", "utf8mb4_general_ci"),
    (46, "utf8mb4", "utf8mb4_bin"),
    (47, "latin1", "latin1_bin"),
    (48, "latin1", "latin1_general_ci"),
    (63, "binary", "binary"),
    (65, "ascii", "ascii_bin"),
    (83, "utf8mb3", "utf8mb3_bin"),
    (192, "utf8mb3", "utf8mb3_unicode_ci"),
    (224, "utf8mb4", "utf8mb4_unicode_ci"),
    (246, "utf8mb4", "utf8mb4_unicode_520_ci"),
    (28, "gbk", "gbk_chinese_ci"),
];

/// The character set and collation a handshake collation id selects, if the proxy knows it.
pub fn collation_name(id: u8) -> Option<(&'static str, &'static str)> {
    KNOWN.iter().find(|(i, _, _)| *i == id).map(|(_, cs, coll)| (*cs, *coll))
}

/// Every (character set, collation) pair the proxy knows.
pub fn known_collations() -> impl Iterator<Item = (&'static str, &'static str)> {
    KNOWN.iter().map(|(_, cs, coll)| (*cs, *coll))
}

#[cfg(test)]
mod tests {
    #[test]
    fn common_ids_are_known_and_others_are_not() {
        assert_eq!(super::collation_name(45), Some(("utf8mb4", "utf8mb4_general_ci")));
        assert_eq!(super::collation_name(224), Some(("utf8mb4", "utf8mb4_unicode_ci")));
        assert_eq!(super::collation_name(255), None, "utf8mb4_0900_ai_ci exists on MySQL 8 only");
    }
}
