//! The response parser and the proxy's relaying of a response on
//! arbitrary bytes (see `checks.rs`).
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::response(data));
