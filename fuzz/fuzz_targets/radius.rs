#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cdrhub_fuzzing::radius_packet(data));
