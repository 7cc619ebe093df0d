//! SQL identifiers: validation and quoting. Table, schema and column names are the only
//! things floe writes into SQL text; every value (the incremental cursor) is a bound
//! parameter. Quoting doubles the quote character, so any name round-trips exactly.

/// Which quote character the dialect uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL and SQLite: `"name"`.
    Ansi,
    /// MySQL and MariaDB: `` `name` ``.
    Backtick,
}

/// Check a name given in the config (`table`, `schema`): not empty, no NUL (which no database
/// accepts in a name and which would cut C strings short), at most 256 bytes.
pub fn validate(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{what} name is empty"));
    }
    if name.contains('\0') {
        return Err(format!("{what} name {:?} contains a NUL character", name.replace('\0', "\\0")));
    }
    if name.len() > 256 {
        return Err(format!("{what} name is longer than 256 bytes"));
    }
    Ok(())
}

/// `name` quoted for `dialect`.
pub fn quote(dialect: Dialect, name: &str) -> String {
    let q = match dialect {
        Dialect::Ansi => '"',
        Dialect::Backtick => '`',
    };
    let mut out = String::with_capacity(name.len() + 2);
    out.push(q);
    for c in name.chars() {
        if c == q {
            out.push(q);
        }
        out.push(c);
    }
    out.push(q);
    out
}

/// `schema.table` (or `table`), each part quoted.
pub fn qualified(dialect: Dialect, schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", quote(dialect, s), quote(dialect, table)),
        None => quote(dialect, table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_by_doubling() {
        assert_eq!(quote(Dialect::Ansi, "orders"), "\"orders\"");
        assert_eq!(quote(Dialect::Ansi, "we\"ird"), "\"we\"\"ird\"");
        assert_eq!(quote(Dialect::Backtick, "a`b"), "`a``b`");
        assert_eq!(quote(Dialect::Backtick, "x\"y"), "`x\"y`");
        assert_eq!(qualified(Dialect::Ansi, Some("s"), "t"), "\"s\".\"t\"");
        assert_eq!(qualified(Dialect::Ansi, None, "Mixed Case"), "\"Mixed Case\"");
    }

    #[test]
    fn rejects_nul_and_empty() {
        assert!(validate("table", "orders").is_ok());
        assert!(validate("table", "robert'); drop table x;--").is_ok(), "quoted, so harmless");
        assert!(validate("table", "").is_err());
        assert!(validate("table", "a\0b").unwrap_err().contains("NUL"));
        assert!(validate("schema", &"x".repeat(300)).is_err());
    }
}
