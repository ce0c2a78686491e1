//! Any bytes as a `<pid>/cmdline`: split, masked and cut without a panic, never longer than the
//! limit, and a value after `--token` never survives.
#![no_main]
use watchdog_collectors::mask::{mask_cmdline, CMDLINE_MAX_CHARS};
use watchdog_collectors::proc::split_cmdline;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let argv = split_cmdline(data);
    let masked = mask_cmdline(&argv);
    assert!(masked.chars().count() <= CMDLINE_MAX_CHARS);
    let mut with_secret = argv.clone();
    with_secret.push("--token".into());
    with_secret.push("F0ZZS3CR3T".into());
    if argv.iter().all(|a| !a.contains("F0ZZS3CR3T")) && argv.join(" ").chars().count() < 900 {
        assert!(
            !mask_cmdline(&with_secret).contains("F0ZZS3CR3T"),
            "{with_secret:?}"
        );
    }
});
