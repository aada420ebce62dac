//! The cache directory: where each data file's entry lives, reading it, and
//! writing it atomically.
//!
//! One entry per data file, named after the file and a hash of its full
//! path, so a changed file overwrites its own entry and the directory holds
//! no more entries than there are data files (plus any of files since
//! removed). An entry is written to a temporary file in the same directory
//! and renamed over the old one: a reader sees the old entry or the new one,
//! never half of one. Nothing is fsynced: an entry torn by a crash is
//! refused by its length and checksum and rebuilt, which costs one compile,
//! while an fsync per file would cost every cold start.
//!
//! The cache only ever costs speed: a directory that cannot be created or
//! written is warned about once and the data is compiled as without it.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use xxhash_rust::xxh3::{xxh3_64, xxh3_128};

use super::format::{self, EntryKey, Refusal};
use crate::routing_data::compile::CompiledFile;

/// Entries' file name suffix.
const SUFFIX: &str = ".swbc";

/// A cache directory, as the loader uses it.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    /// A write failed already: later failures are not warned about again.
    write_warned: AtomicBool,
}

/// What looking a file up found.
#[derive(Debug)]
pub enum Lookup {
    Hit(CompiledFile),
    /// No entry, or no usable one: compile and store.
    Miss(Option<Refusal>),
}

impl Cache {
    /// A cache in `dir`, created when first written.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache {
            dir: dir.into(),
            write_warned: AtomicBool::new(false),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry of the data file at `path`.
    pub fn entry_path(&self, path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        // Only what is safe in any file name, for people listing the
        // directory; the hash is what tells entries apart.
        let name: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .take(64)
            .collect();
        let hash = xxh3_64(path.as_os_str().as_encoded_bytes());
        self.dir.join(format!("{name}.{hash:016x}{SUFFIX}"))
    }

    /// The compiled form of `path` whose bytes hash to `content`, if the
    /// cache holds a usable one.
    pub fn lookup(&self, file: &Arc<Path>, key: &EntryKey) -> Lookup {
        let path: &Path = file;
        let entry = self.entry_path(path);
        let bytes = match fs::read(&entry) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Miss(None),
            Err(e) => {
                tracing::debug!(entry = %entry.display(), error = %e, "routing cache entry unreadable");
                return Lookup::Miss(None);
            }
        };
        match format::decode(&bytes, key, file) {
            Ok(compiled) => Lookup::Hit(compiled),
            Err(refusal) => {
                if refusal == Refusal::Stale {
                    tracing::debug!(file = %path.display(), "routing cache entry stale: the file changed");
                } else {
                    tracing::warn!(
                        file = %path.display(),
                        entry = %entry.display(),
                        reason = %refusal,
                        "routing cache entry ignored; compiling the file again"
                    );
                }
                Lookup::Miss(Some(refusal))
            }
        }
    }

    /// Stores the compiled form of `path`. Failures only cost the next
    /// start its speed: warned about once, not returned.
    pub fn store(&self, path: &Path, key: &EntryKey, compiled: &CompiledFile) {
        let entry = self.entry_path(path);
        if let Err(e) = self.write_atomically(&entry, &format::encode(key, compiled))
            && !self.write_warned.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                dir = %self.dir.display(),
                error = %e,
                "cannot write the routing cache: serving as usual, but the next start compiles the data again"
            );
        }
    }

    fn write_atomically(&self, entry: &Path, bytes: &[u8]) -> io::Result<()> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        fs::create_dir_all(&self.dir)?;
        let temp = self.dir.join(format!(
            ".tmp-{}-{}{SUFFIX}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let written = fs::File::create(&temp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| fs::rename(&temp, entry));
        if written.is_err() {
            let _ = fs::remove_file(&temp);
        }
        written
    }
}

/// xxh3-128 of a data file's bytes.
pub fn content_hash(bytes: &[u8]) -> u128 {
    xxh3_128(bytes)
}

/// The running program's id: a hash of its executable, so that an entry
/// written by any other build (another release, a rebuilt binary whose
/// compiler output changed) is refused. `None` when the executable cannot
/// be read; the cache is then not used.
pub fn program_id() -> Option<u128> {
    static ID: OnceLock<Option<u128>> = OnceLock::new();
    *ID.get_or_init(|| {
        let exe = fs::read("/proc/self/exe")
            .or_else(|_| std::env::current_exe().and_then(fs::read))
            .ok()?;
        let mut id = xxh3_128(&exe);
        id ^= u128::from(format::FORMAT_VERSION);
        Some(id)
    })
}
