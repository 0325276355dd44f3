#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cdrhub_fuzzing::cms_xml(data));
