//! Any bytes as a `<pid>/stat`: an error or a parse, never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(stat) = watchdog_collectors::proc::parse_stat(data) {
        // comm came from between the parentheses: no more characters than the input has bytes
        // (an invalid byte decodes to one U+FFFD, three bytes long).
        assert!(stat.comm.chars().count() <= data.len());
    }
});
