//! Pure parsers of /proc files: bytes in, values out.
//!
//! Owns the shapes of the files the collectors read: a directory name as a pid, `uptime`,
//! `<pid>/stat`, `<pid>/cmdline` and the `NSpid:` line of `<pid>/status`. Reads nothing itself
//! (the readers are in [`crate::proc_root`]) and never panics on any input: the fuzz targets
//! feed these functions arbitrary bytes, and each finding is kept as a unit test here.

use procfs::process::Stat;
use procfs::{FromRead, Uptime};

/// A /proc directory name as a pid: plain ASCII digits, positive, within `u32`.
pub fn parse_pid(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok().filter(|&pid| pid > 0)
}

/// The first field of an `uptime` file: seconds since boot.
///
/// # Errors
/// A reason, when the text is not two numbers or the first is not a time (negative, NaN).
pub fn parse_uptime(raw: &[u8]) -> Result<f64, String> {
    let uptime = Uptime::from_read(raw).map_err(|e| e.to_string())?;
    if !uptime.uptime.is_finite() || uptime.uptime < 0.0 {
        return Err(format!("uptime {} is not a time", uptime.uptime));
    }
    Ok(uptime.uptime)
}

/// The `processes` line of the system-wide `stat`: how many tasks the kernel has created since
/// boot. `None` without such a line, or when its value is not a count.
pub fn parse_tasks_created(raw: &[u8]) -> Option<u64> {
    raw.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"processes "))
        .and_then(|count| std::str::from_utf8(count).ok()?.trim().parse().ok())
}

/// Splits a raw `cmdline` into arguments: NUL-separated, trailing NULs dropped, non-UTF-8
/// bytes replaced. Some processes rewrite their argv into one space-separated string padded
/// with NULs (setproctitle); that stays one argument, which reads the same once joined.
pub fn split_cmdline(raw: &[u8]) -> Vec<String> {
    let end = raw.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    let raw = &raw[..end];
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|&b| b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

/// Parses the contents of a `<pid>/stat` file.
///
/// The shape is checked before procfs parses the fields: procfs slices around the parentheses of
/// `comm` without bounds checks and would panic on a line cut right after them.
///
/// # Errors
/// A reason, when the line is truncated or malformed.
pub fn parse_stat(raw: &[u8]) -> Result<Stat, String> {
    // Checked on the text exactly as procfs sees it: decoded lossily, then trimmed.
    let text = String::from_utf8_lossy(raw);
    let line = text.trim();
    let bytes = line.as_bytes();
    let open = line.find('(').ok_or("no '(' before comm")?;
    // comm may itself hold ") (", so its end is the last ')'.
    let close = line.rfind(')').ok_or("no ')' after comm")?;
    if open < 2 || bytes[open - 1] != b' ' || !bytes[..open - 1].iter().all(u8::is_ascii_digit) {
        return Err("does not start with '<pid> ('".into());
    }
    if close < open || bytes.get(close + 1) != Some(&b' ') || bytes.len() < close + 3 {
        return Err("nothing after comm".into());
    }
    Stat::from_read(line.as_bytes()).map_err(|e| e.to_string())
}

/// The pids of a `status` file's `NSpid:` line, outermost namespace first: one per pid-namespace
/// level below the one that mounted the /proc it was read from. `None` without the line (kernels
/// before 4.1), or when it is empty or holds something that is not a pid.
pub fn parse_nspid(status: &str) -> Option<Vec<u32>> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("NSpid:"))?;
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|pid| pid.parse().ok())
        .collect::<Option<_>>()?;
    (!pids.is_empty()).then_some(pids)
}

/// The last value of a `status` file's `NSpid:` line: the pid in its innermost namespace.
pub fn innermost_pid(status: &str) -> Option<u32> {
    parse_nspid(status)?.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL_STAT: &str = "42 (pytest) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 0 0 20 0 1 0 \
        9280000 10000000 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 \
        0 0 0 0 0 0 0";

    #[test]
    fn the_count_of_created_tasks_is_the_processes_line_or_nothing() {
        let stat = b"cpu  1 2 3\nctxt 99\nbtime 1700000000\nprocesses 858930\nprocs_running 1\n";
        assert_eq!(parse_tasks_created(stat), Some(858_930));
        for junk in [
            &b""[..],
            b"processes\n",
            b"processes -1\n",
            b"processes 12x\n",
            b"processes 99999999999999999999999\n",
            b"procs_running 1\n",
            b"\xff\xfe processes 1",
        ] {
            assert_eq!(parse_tasks_created(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn a_full_stat_line_parses() {
        let stat = parse_stat(FULL_STAT.as_bytes()).unwrap();
        assert_eq!(
            (stat.pid, stat.ppid, stat.pgrp, stat.session),
            (42, 1, 42, 42)
        );
        assert_eq!(
            (stat.utime, stat.stime, stat.starttime, stat.rss),
            (150, 50, 9280000, 2048)
        );
        assert_eq!(stat.comm, "pytest");
    }

    #[test]
    fn a_comm_holding_parens_and_spaces_parses() {
        let line = FULL_STAT.replace("(pytest)", "(a) (b c)");
        let stat = parse_stat(line.as_bytes()).unwrap();
        assert_eq!(stat.comm, "a) (b c");
        assert_eq!(stat.ppid, 1);
    }

    #[test]
    fn malformed_stat_lines_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"42",
            b"42 (pytest)",
            b"42 (pytest) ",
            b"42 (pytest) S",
            b"42 (pytest) S 1 42 42 0",
            b"(pytest) S 1",
            b" (pytest) S 1",
            b"x (pytest) S 1",
            b"42 )pytest( S 1",
            b"42 (pytest",
            b"\xff\xfe (pytest) S 1",
            "4é (x) S 1".as_bytes(),
            // Found by fuzzing: procfs trims first, and slicing after ") " then overran.
            b"1 ()  ",
            b"1 (x) \n",
            b"1 (x)\t \t",
        ];
        for case in cases {
            assert!(
                parse_stat(case).is_err(),
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
    }

    #[test]
    fn cmdline_splits_on_nul_and_decodes_lossily() {
        assert_eq!(split_cmdline(b"pytest\0-x\0"), ["pytest", "-x"]);
        assert_eq!(split_cmdline(b"pytest\0\0"), ["pytest"]);
        assert_eq!(split_cmdline(b"a\0\0b\0"), ["a", "", "b"]);
        assert_eq!(split_cmdline(b"nginx: worker"), ["nginx: worker"]);
        assert_eq!(split_cmdline(b"nginx: worker\0\0\0\0"), ["nginx: worker"]);
        assert_eq!(split_cmdline(b"py\xfftest\0"), ["py\u{fffd}test"]);
        assert!(split_cmdline(b"").is_empty());
        assert!(split_cmdline(b"\0").is_empty());
    }

    #[test]
    fn pid_names_are_plain_positive_numbers() {
        assert_eq!(parse_pid("42"), Some(42));
        for name in ["", "0", "+1", "-1", "1a", "self", "99999999999"] {
            assert_eq!(parse_pid(name), None, "{name}");
        }
    }

    #[test]
    fn uptime_is_its_first_number_and_must_be_a_time() {
        assert_eq!(parse_uptime(b"7200.50 14000.00\n"), Ok(7200.5));
        for bad in [&b""[..], b"soon 1", b"-1.0 1.0", b"NaN 1.0", b"inf 1.0"] {
            assert!(
                parse_uptime(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn nspid_lists_one_pid_per_namespace_level_innermost_last() {
        assert_eq!(
            parse_nspid("Name:\tx\nNSpid:\t3319\nNSpgid:\t1\n"),
            Some(vec![3319])
        );
        assert_eq!(parse_nspid("NSpid:\t510\t7\n"), Some(vec![510, 7]));
        assert_eq!(innermost_pid("Name:\tx\nNSpid:\t510\t7\n"), Some(7));
        assert_eq!(innermost_pid("NSpid:\t510\n"), Some(510));
        for status in ["Name:\tx\n", "NSpid:\n", "NSpid:\t510\tseven\n", ""] {
            assert_eq!(parse_nspid(status), None, "{status:?}");
            assert_eq!(innermost_pid(status), None, "{status:?}");
        }
    }
}
