#![no_main]
// See hydrant::fuzzing::signed_url for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::signed_url(data));
