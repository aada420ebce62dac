//! The compiled-data cache (docs/operations.md, "Cache directory"): each
//! routing file's compiled accounts and diagnostics, kept on disk so that a
//! restart over unchanged data loads them instead of parsing YAML again,
//! the way Postfix's `postmap` compiles lookup tables, but automatic and
//! checked.
//!
//! An entry is used only when it was written by this very build, under the
//! same settings, for the same data file with the same content (xxh3-128 of
//! its bytes); anything else is ignored and rebuilt, never served.
//! `format` is the byte layout and its checking reader, `store` the
//! directory.

pub mod format;
pub mod store;

pub use format::{EntryKey, Refusal};
pub use store::{Cache, Lookup, content_hash, program_id};
