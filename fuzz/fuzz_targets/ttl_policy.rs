#![no_main]
// See hydrant::fuzzing::ttl_policy for what this target drives and asserts.
libfuzzer_sys::fuzz_target!(|data: &[u8]| hydrant::fuzzing::ttl_policy(data));
