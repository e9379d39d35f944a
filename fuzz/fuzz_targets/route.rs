#![no_main]
// See hydrant::fuzzing::route for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::route(data));
