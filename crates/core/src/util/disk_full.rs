//! Whether a failure was a full disk (or a full quota), told from the error's type at
//! its source rather than from its text: an I/O error of kind `StorageFull` /
//! `QuotaExceeded` (`ENOSPC`, `EDQUOT`), or SQLite's `SQLITE_FULL`, anywhere in the
//! chain of `source()`s. Subsystem errors keep their underlying error as a source, so
//! the API can answer 507 instead of a bare 500.

use std::error::Error;
use std::io;

/// An underlying error kept as a subsystem error's `#[source]` (not flattened to text),
/// so that [`is_disk_full`] can see what it was.
pub type ErrorSource = Box<dyn Error + Send + Sync>;

/// SQLite's primary result code for "database or disk is full".
const SQLITE_FULL: i64 = 13;

/// Whether `err`, or any error it was caused by, is a full disk or quota.
pub fn is_disk_full(err: &(dyn Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if is_full_io(io) {
                return true;
            }
        }
        if let Some(sql) = e.downcast_ref::<sqlx::Error>() {
            if is_full_sqlite(sql) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

fn is_full_io(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

/// `SQLITE_FULL`, as its primary code (the low byte of an extended code).
fn is_full_sqlite(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .and_then(|c| c.parse::<i64>().ok())
        .is_some_and(|c| c & 0xff == SQLITE_FULL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("saving failed: {source}")]
    struct Wrapper {
        #[source]
        source: Box<dyn Error + Send + Sync>,
    }

    fn wrapped(e: impl Error + Send + Sync + 'static) -> Wrapper {
        Wrapper {
            source: Box::new(e),
        }
    }

    #[test]
    fn enospc_and_edquot_are_full_at_any_depth() {
        for code in [28, 122] {
            let e = io::Error::from_raw_os_error(code);
            assert!(is_disk_full(&e), "os error {code}");
            assert!(is_disk_full(&wrapped(io::Error::from_raw_os_error(code))));
        }
    }

    #[test]
    fn other_failures_are_not_full_even_when_their_text_says_so() {
        let e = io::Error::from_raw_os_error(13); // EACCES
        assert!(!is_disk_full(&e));
        let lying = io::Error::other("No space left on device");
        assert!(!is_disk_full(&wrapped(lying)));
    }

    #[tokio::test]
    async fn a_sqlite_database_at_its_page_limit_is_full() {
        use sqlx::ConnectOptions;
        let dir = tempfile::tempdir().unwrap();
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(dir.path().join("small.db"))
            .create_if_missing(true)
            .connect()
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (b BLOB)")
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("PRAGMA max_page_count = 4")
            .execute(&mut c)
            .await
            .unwrap();
        let full = sqlx::query("INSERT INTO t VALUES (zeroblob(1000000))")
            .execute(&mut c)
            .await
            .expect_err("the database is at its page limit");
        assert!(is_disk_full(&full), "{full}");
        let other = sqlx::query("INSERT INTO missing VALUES (1)")
            .execute(&mut c)
            .await
            .expect_err("no such table");
        assert!(!is_disk_full(&other), "{other}");
    }
}
