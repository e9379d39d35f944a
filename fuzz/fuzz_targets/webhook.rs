#![no_main]
// See hydrant::fuzzing::webhook for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::webhook(data));
