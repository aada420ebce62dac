//! The compiled-data cache's reader on arbitrary bytes (see `checks.rs`).
//! Seeded with the example data's entry (kept current by
//! tests/fuzz_corpus.rs), so the fuzzer starts past the header:
//! `cargo +nightly fuzz run cache_entry fuzz/corpus/cache_entry fuzz/seeds-cache`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::cache_entry(data));
