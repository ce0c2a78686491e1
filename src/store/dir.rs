//! The state directory and the plain files in it.
//!
//! Owns the checks that make the directory safe to write as root: it is created 0700, and an
//! existing one must belong to watchdog's uid and be writable by nobody else, or nothing in it
//! could be trusted not to be a planted symlink. Owns the one way a file is opened here:
//! `O_NOFOLLOW` and `O_NONBLOCK`, then proven a regular file by `fstat`, so a symlink, a FIFO or
//! a device put in the directory is refused, never followed, waited on or read for ever.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// Creates `dir` (0700) or proves an existing one safe: a directory, owned by this process's
/// effective uid, not writable by group or other.
///
/// # Errors
/// A line that names the directory, its owner and mode, and what to do.
pub fn prepare(dir: &Path) -> Result<(), String> {
    let me = rustix::process::geteuid().as_raw();
    match fs::metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| format!("cannot be created: {e}; {}", ownership(dir)));
        }
        Err(e) => return Err(format!("cannot be read: {e}; {}", ownership(dir))),
        Ok(meta) if !meta.is_dir() => {
            return Err(format!(
                "is {}, not a directory",
                watchdog_collectors::regular::describe(meta.file_type())
            ))
        }
        Ok(meta) => {
            let mode = meta.mode() & 0o7777;
            if meta.uid() != me || mode & 0o022 != 0 {
                return Err(format!(
                    "is owned by uid {} with mode {mode:04o}, and watchdog runs as uid {me}: \
                     it must belong to uid {me} and be writable by no one else \
                     (chown {me} DIR && chmod 700 DIR), or files in it could be planted \
                     symlinks",
                    meta.uid()
                ));
            }
        }
    }
    Ok(())
}

/// Opens `path` with `options` (plus `O_NOFOLLOW | O_NONBLOCK`) and proves it a regular file.
/// A file it creates gets `mode`; an existing one wider than `mode` is narrowed to it.
///
/// # Errors
/// The open fails (a symlink fails with `ELOOP`), or the file is not a regular file (kind
/// `InvalidInput`, naming the path and what it is).
pub fn open_regular(options: &mut OpenOptions, path: &Path, mode: u32) -> io::Result<File> {
    let not_regular = |kind: fs::FileType| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{}: is {}, not a regular file",
                path.display(),
                watchdog_collectors::regular::describe(kind)
            ),
        )
    };
    let flags = OFlags::NONBLOCK | OFlags::NOFOLLOW;
    let file = match options
        .mode(mode)
        .custom_flags(flags.bits() as i32)
        .open(path)
    {
        Ok(file) => file,
        Err(e) => {
            return Err(match fs::symlink_metadata(path) {
                Ok(meta) if !meta.is_file() => not_regular(meta.file_type()),
                _ => e,
            })
        }
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    if meta.mode() & 0o777 & !mode != 0 {
        file.set_permissions(fs::Permissions::from_mode(mode))?;
    }
    Ok(file)
}

/// Appends `line` and a newline to `path` (created 0600) and makes it durable.
///
/// # Errors
/// As [`open_regular`], or the write fails.
pub fn append_line(path: &Path, line: &str) -> io::Result<()> {
    let mut file = open_regular(OpenOptions::new().create(true).append(true), path, 0o600)?;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    file.write_all(&bytes)?;
    file.sync_data()
}

/// Who owns `dir` (or its nearest existing ancestor) and who we are, for error messages.
pub fn ownership(dir: &Path) -> String {
    let me = format!(
        "watchdog runs as uid {} gid {}",
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw()
    );
    let existing = dir.ancestors().find(|p| p.exists());
    match existing.and_then(|p| fs::metadata(p).ok().map(|m| (p, m))) {
        Some((path, meta)) => format!(
            "{} is owned by uid {} gid {} with mode {:04o}; {me}",
            path.display(),
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777
        ),
        None => me,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_state_dir_is_made_0700_with_its_parents() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        prepare(&dir).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
    }

    #[test]
    fn a_state_dir_writable_by_others_is_refused_with_its_owner_and_mode() {
        let root = tempfile::tempdir().unwrap();
        for mode in [0o777, 0o770, 0o1777, 0o702] {
            fs::set_permissions(root.path(), fs::Permissions::from_mode(mode)).unwrap();
            let error = prepare(root.path()).unwrap_err();
            assert!(
                error.contains(&format!("mode {mode:04o}")),
                "{mode:o}: {error}"
            );
            assert!(error.contains("owned by uid"), "{mode:o}: {error}");
        }
        for mode in [0o700, 0o755, 0o750] {
            fs::set_permissions(root.path(), fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(prepare(root.path()), Ok(()), "{mode:o}");
        }
    }

    #[test]
    fn a_state_dir_of_another_uid_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let me = rustix::process::geteuid().as_raw();
        let other = if me == 0 { 65534 } else { 0 };
        if rustix::fs::chown(root.path(), Some(rustix::fs::Uid::from_raw(other)), None).is_err() {
            // Not root: a directory of another uid cannot be made here; the mode case holds.
            return;
        }
        let error = prepare(root.path()).unwrap_err();
        assert!(error.contains(&format!("owned by uid {other}")), "{error}");
    }

    #[test]
    fn a_planted_symlink_is_refused_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("victim");
        fs::write(&target, "precious\n").unwrap();
        let link = root.path().join("dead-letter-webhook.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let error = append_line(&link, "{}").unwrap_err();
        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious\n");
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let root = tempfile::tempdir().unwrap();
        let fifo = root.path().join("dead-letter-slack.jsonl");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let error = append_line(&fifo, "{}").unwrap_err();
        assert!(error.to_string().contains("FIFO"), "{error}");
    }

    #[test]
    fn appended_lines_are_private() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("dead-letter-webhook.jsonl");
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        append_line(&path, "one").unwrap();
        append_line(&path, "two").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "one\ntwo\n");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    }
}
