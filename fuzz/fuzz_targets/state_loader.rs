//! Any bytes as `state.json`: the loader reads them as the store does, and whatever loads
//! writes back and loads the same.
#![no_main]
use watchdog::engine::AlertState;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(state) = serde_json::from_slice::<AlertState>(data) {
        let again: AlertState =
            serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
        assert_eq!(again, state);
    }
});
