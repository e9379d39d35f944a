#![no_main]
// See hydrant::fuzzing::prime_scan for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::prime_scan(data));
