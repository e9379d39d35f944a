#![no_main]
// See hydrant::fuzzing::wire for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::wire(data));
