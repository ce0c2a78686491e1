//! Any bytes as a job list answer: parsed as the jobs collector does, an error or jobs, never a
//! panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = watchdog_collectors::jobs::parse_jobs(std::slice::from_ref(&value));
    }
});
