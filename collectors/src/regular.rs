//! The check that a file a user points watchdog at is a regular file, made before anything
//! opens it.
//!
//! A FIFO blocks whoever opens it until a writer comes, a character device such as `/dev/zero`
//! can be read for ever, and a directory is not a database: each would hang or mislead the
//! collector that opened it. `stat` follows symlinks without opening anything, so a symlink to
//! a regular file (how Kubernetes mounts secrets) passes. It does not cap the size: an
//! orchestrator's database is legitimately large.

use std::fs::FileType;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// A path that exists and is something other than a regular file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: is {what}, not a regular file")]
pub struct NotRegular {
    pub path: PathBuf,
    /// What it is instead: "a FIFO", "a directory", ...
    pub what: &'static str,
}

/// `Ok(true)` when `path` is a regular file, `Ok(false)` when nothing is there.
///
/// # Errors
/// [`NotRegular`] when it is something else; an I/O error other than "not found" from `stat`
/// (permission denied on a parent, say) as it is, wrapped with the path.
pub fn regular_or_absent(path: &Path) -> Result<bool, RegularError> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_file() => Ok(true),
        Ok(meta) => Err(RegularError::NotRegular(NotRegular {
            path: path.to_path_buf(),
            what: describe(meta.file_type()),
        })),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(RegularError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Why [`regular_or_absent`] refused a path.
#[derive(Debug, thiserror::Error)]
pub enum RegularError {
    #[error(transparent)]
    NotRegular(#[from] NotRegular),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// A SQLite database, or a file SQLite opens beside it, that is not a regular file.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}is {what}, not a regular file", .sidecar.map(|s| format!("its {s} file ")).unwrap_or_default())]
pub struct NotRegularSqlite {
    /// `-wal`, `-shm` or `-journal`; `None` for the database itself.
    pub sidecar: Option<&'static str>,
    pub what: &'static str,
}

/// Checks a SQLite database and the files SQLite opens beside it (`-wal`, `-shm`, `-journal`)
/// where they exist: SQLite opens each by path with a blocking `open()`, which a FIFO would
/// hold for ever. What is missing, or cannot be looked at, is left for SQLite to report.
///
/// # Errors
/// The first of them that exists and is not a regular file.
pub fn sqlite_files(database: &Path) -> Result<(), NotRegularSqlite> {
    for sidecar in [None, Some("-wal"), Some("-shm"), Some("-journal")] {
        let mut name = database.as_os_str().to_owned();
        name.push(sidecar.unwrap_or_default());
        if let Err(RegularError::NotRegular(e)) = regular_or_absent(Path::new(&name)) {
            return Err(NotRegularSqlite {
                sidecar,
                what: e.what,
            });
        }
    }
    Ok(())
}

/// The kind of a file that is not a regular one, as a person names it.
pub fn describe(kind: FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_file() {
        "a regular file"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_passes_and_a_missing_one_is_absent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("jobs.db");
        assert!(!regular_or_absent(&file).unwrap());
        std::fs::write(&file, "").unwrap();
        assert!(regular_or_absent(&file).unwrap());
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(
            regular_or_absent(&link).unwrap(),
            "a symlink to a file is fine"
        );
    }

    #[test]
    fn a_directory_or_a_device_is_refused_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let error = regular_or_absent(dir.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{}: is a directory, not a regular file",
                dir.path().display()
            )
        );
        let error = regular_or_absent(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "/dev/null: is a character device, not a regular file"
        );
    }

    #[test]
    fn a_sqlite_sidecar_that_is_not_a_regular_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("jobs.db");
        std::fs::write(&db, "").unwrap();
        assert_eq!(sqlite_files(&db), Ok(()));
        std::fs::create_dir(dir.path().join("jobs.db-wal")).unwrap();
        let error = sqlite_files(&db).unwrap_err();
        assert_eq!(
            error.to_string(),
            "its -wal file is a directory, not a regular file"
        );
        let error = sqlite_files(dir.path()).unwrap_err();
        assert_eq!(error.to_string(), "is a directory, not a regular file");
    }
}
