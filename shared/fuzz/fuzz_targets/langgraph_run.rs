#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hookline::fuzzing::langgraph_run(data));
