#![no_main]
// See hydrant::fuzzing::url_expiry for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::url_expiry(data));
