#![no_main]
// See hydrant::fuzzing::file_view for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::file_view(data));
