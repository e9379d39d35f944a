#![no_main]
// See hydrant::fuzzing::config_units for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::config_units(data));
