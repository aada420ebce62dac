//! Loading routing data from a file or a directory of `*.yaml` files,
//! re-reading only what changed since the last load (docs/routing.md: a change to
//! one account in a million-contact data set must not cost a full re-parse).
//!
//! A file is known by its metadata (device, inode, size, modification
//! time; symlinks followed, so a Kubernetes ConfigMap's `..data` swap shows
//! as a change). When the metadata moved, the content hash decides whether
//! it really changed. Unchanged files keep their compiled accounts, which the
//! new table shares with the old one.
//!
//! With a cache directory (`cache`), a file not compiled in this process is
//! looked up there by its content before it is parsed, and stored there
//! after: a restart over unchanged data parses nothing.

use std::collections::BTreeMap;
use std::fs;
use std::hash::Hasher;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rustc_hash::FxHasher;

use super::assemble::assemble;
use super::cache::{self, Cache, EntryKey, Lookup};
use super::compile::{CompiledFile, compile_file};
use super::memory::release_free_memory;
use super::parallel::{self, WorkerPanicked};
use super::report::{Diagnostic, Rejected, Report};
use super::yaml::YamlLimits;
use crate::routing::{Counts, Region, RoutingTable};

/// What identifies a file's version without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    dev: u64,
    ino: u64,
    len: u64,
    modified: Option<SystemTime>,
}

/// Modification times are only as fine as the kernel's coarse clock: a
/// file written twice within one tick, at the same size, keeps its
/// fingerprint. Like git's "racily clean" entries, a file modified this
/// recently is not trusted by metadata and is read again next time.
const RACY_WINDOW: Duration = Duration::from_secs(2);

impl Fingerprint {
    /// The fingerprint, unless the file changed too recently to trust it.
    fn settled(meta: &fs::Metadata) -> Option<Self> {
        let fingerprint = Fingerprint::of(meta);
        let age = fingerprint
            .modified
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .unwrap_or(Duration::ZERO);
        (age >= RACY_WINDOW).then_some(fingerprint)
    }

    fn of(meta: &fs::Metadata) -> Self {
        Fingerprint {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

#[derive(Debug, Clone)]
struct CachedFile {
    path: Arc<Path>,
    fingerprint: Option<Fingerprint>,
    /// xxh3-128 of the bytes; `None` when the file could not be read.
    content_hash: Option<u128>,
    compiled: Arc<CompiledFile>,
}

/// A successful load.
#[derive(Debug)]
pub struct Loaded {
    pub table: RoutingTable,
    /// Warnings only (a load with errors is [`Rejected`]).
    pub report: Report,
    pub stats: LoadStats,
}

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    pub files: usize,
    /// Files read and compiled this time.
    pub parsed: usize,
    /// Files whose compiled accounts were reused.
    pub reused: usize,
    /// Files loaded compiled from the cache directory (counted in neither
    /// `parsed` nor `reused`).
    pub cached: usize,
    pub elapsed: Duration,
    /// A hash of every file's name and content: equal hashes, equal data.
    pub content_hash: u64,
    pub counts: Counts,
}

/// Loads routing data from `path` (a file or a directory), remembering what
/// it read so the next load re-reads only changed files.
#[derive(Debug)]
pub struct Loader {
    path: PathBuf,
    default_region: Region,
    limits: YamlLimits,
    /// The files as last seen, by path.
    seen: BTreeMap<PathBuf, CachedFile>,
    /// Where compiled files are kept across runs, if anywhere.
    cache: Option<Cache>,
    /// Tests only: compiling the file of this name panics, to show that a
    /// panic refuses the load. No build a file can reach has it, so there
    /// is nothing in the request path or the data that can trigger it.
    #[cfg(test)]
    panic_on: Option<std::ffi::OsString>,
}

/// How a file's compiled form was had this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// Same content as last load: the compiled accounts are shared.
    Reused,
    /// Loaded from the cache directory.
    Cached,
    /// Parsed and compiled.
    Parsed,
}

impl Loader {
    pub fn new(path: impl Into<PathBuf>, default_region: Region) -> Self {
        Loader {
            path: path.into(),
            default_region,
            limits: YamlLimits::default(),
            seen: BTreeMap::new(),
            cache: None,
            #[cfg(test)]
            panic_on: None,
        }
    }

    /// Tests only: makes compiling the file named `name` panic.
    #[cfg(test)]
    pub(crate) fn panic_when_compiling(mut self, name: &str) -> Self {
        self.panic_on = Some(name.into());
        self
    }

    /// Keeps compiled files in `cache` across runs. Without a way to tell
    /// this build from another (its executable cannot be read), the cache
    /// is not used: an entry of another build could be served.
    pub fn with_cache(mut self, cache: Option<Cache>) -> Self {
        self.cache = cache.filter(|c| {
            let known = cache::program_id().is_some();
            if !known {
                tracing::warn!(
                    dir = %c.dir().display(),
                    "cannot read this program's executable to tell its cache entries apart: not using the routing cache"
                );
            }
            known
        });
        self
    }

    pub fn with_limits(mut self, limits: YamlLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the next load read every file again (compiling only those
    /// whose content changed): for an explicit reload request, which should
    /// not trust modification times.
    pub fn forget_fingerprints(&mut self) {
        for cached in self.seen.values_mut() {
            cached.fingerprint = None;
        }
    }

    /// Whether the files differ from the last load, by metadata alone.
    pub fn changed(&self) -> bool {
        let Ok(paths) = list_files(&self.path) else {
            return true;
        };
        paths.len() != self.seen.len()
            || paths
                .iter()
                .any(|p| match (self.seen.get(p), fs::metadata(p)) {
                    (Some(cached), Ok(meta)) => cached.fingerprint != Some(Fingerprint::of(&meta)),
                    _ => true,
                })
    }

    /// Loads the data: re-reads changed files, reuses the rest, and builds a
    /// table. Fails with every error found.
    pub fn load(&mut self) -> Result<Loaded, Rejected> {
        let started = Instant::now();
        let refuse = |message: String, fix: &str| {
            let file: Arc<Path> = Arc::from(self.path.as_path());
            Rejected {
                report: Report::new(vec![Diagnostic::error(&file, 0, message).fix(fix)]),
            }
        };
        let paths = list_files(&self.path).map_err(|e| {
            refuse(
                format!("cannot read routing data: {e}"),
                "check that the path exists and names a YAML file or a directory of them",
            )
        })?;
        // An empty directory is far more likely a mount or export gone wrong
        // than a CRM with no accounts: serving it would answer 404 to every
        // call, so it is refused like any other bad data.
        if paths.is_empty() {
            return Err(refuse(
                "the directory holds no routing files (*.yaml, *.yml)".to_owned(),
                "check the mount or the export; to serve no accounts on purpose, use a file with `accounts: []`",
            ));
        }
        let (stale, fresh): (Vec<_>, Vec<_>) = paths
            .into_iter()
            .map(|path| {
                let fingerprint = fs::metadata(&path)
                    .ok()
                    .and_then(|m| Fingerprint::settled(&m));
                (path, fingerprint)
            })
            .partition(|(path, fingerprint)| {
                let cached = self.seen.get(path);
                fingerprint.is_none() || cached.is_none_or(|c| c.fingerprint != *fingerprint)
            });
        let mut next: BTreeMap<PathBuf, CachedFile> = BTreeMap::new();
        for (path, _) in fresh {
            if let Some(cached) = self.seen.remove(&path) {
                next.insert(path, cached);
            }
        }
        let parsed = self.refresh(stale);
        let count = |source: Source| parsed.iter().filter(|(_, _, s)| *s == source).count();
        let parsed_count = count(Source::Parsed);
        let cached_count = count(Source::Cached);
        for (path, cached, _) in parsed {
            next.insert(path, cached);
        }
        self.seen = next;

        let files: Vec<(Arc<Path>, Arc<CompiledFile>)> = self
            .seen
            .values()
            .map(|c| (Arc::clone(&c.path), Arc::clone(&c.compiled)))
            .collect();
        let (table, report) = assemble(&files, &self.default_region);
        if parsed_count + cached_count > 1 {
            release_free_memory();
        }
        let Some(table) = table else {
            return Err(Rejected { report });
        };
        let stats = LoadStats {
            files: files.len(),
            parsed: parsed_count,
            reused: files.len() - parsed_count - cached_count,
            cached: cached_count,
            elapsed: started.elapsed(),
            content_hash: self.content_hash(),
            counts: table.counts(),
        };
        Ok(Loaded {
            table,
            report,
            stats,
        })
    }

    fn content_hash(&self) -> u64 {
        let mut hasher = FxHasher::default();
        for (path, cached) in &self.seen {
            hasher.write(path.as_os_str().as_encoded_bytes());
            hasher.write_u128(cached.content_hash.unwrap_or(0));
        }
        hasher.finish()
    }

    /// Reads and compiles changed files, on every core: the first load of a
    /// large directory is the only time they all change at once. Returns
    /// each file and where its compiled form came from.
    ///
    /// A file whose reading or compiling panicked (a bug, never bad data:
    /// bad data is a diagnostic) comes back as an error naming it, so the
    /// load is refused through the report like any other error and the
    /// last good table keeps serving. Leaving the file out instead would
    /// serve a table without its accounts, answering 404 for their calls.
    fn refresh(
        &self,
        stale: Vec<(PathBuf, Option<Fingerprint>)>,
    ) -> Vec<(PathBuf, CachedFile, Source)> {
        let outcomes = parallel::map_each(&stale, parallel::cores(), |(path, fingerprint)| {
            self.refresh_one(path, *fingerprint)
        });
        stale
            .into_iter()
            .zip(outcomes)
            .map(|((path, _), outcome)| {
                outcome.unwrap_or_else(|panicked| panicked_file(path, &panicked))
            })
            .collect()
    }

    fn refresh_one(
        &self,
        path: &Path,
        fingerprint: Option<Fingerprint>,
    ) -> (PathBuf, CachedFile, Source) {
        let shared: Arc<Path> = Arc::from(path);
        let bytes = read_bytes(path, &self.limits);
        let content_hash = bytes.as_ref().ok().map(|b| cache::content_hash(b));
        if let Some(cached) = self.seen.get(path)
            && content_hash.is_some()
            && cached.content_hash == content_hash
        {
            let mut same = cached.clone();
            same.fingerprint = fingerprint;
            return (path.to_owned(), same, Source::Reused);
        }
        let done = |compiled: CompiledFile, source: Source| {
            let cached = CachedFile {
                path: Arc::clone(&shared),
                fingerprint,
                content_hash,
                compiled: Arc::new(compiled),
            };
            (path.to_owned(), cached, source)
        };
        let cache_key = self
            .cache
            .as_ref()
            .zip(content_hash)
            .and_then(|(cache, content)| Some((cache, self.entry_key(path, content)?)));
        if let Some((cache, key)) = &cache_key
            && let Lookup::Hit(compiled) = cache.lookup(&shared, key)
        {
            return done(compiled, Source::Cached);
        }
        let compiled = match bytes.and_then(into_text) {
            Ok(text) => {
                #[cfg(test)]
                if path
                    .file_name()
                    .is_some_and(|name| self.panic_on.as_deref() == Some(name))
                {
                    panic!("injected panic compiling {}", path.display());
                }
                compile_file(&shared, &text, &self.default_region, &self.limits)
            }
            Err(diagnostic) => CompiledFile {
                accounts: Vec::new(),
                diagnostics: vec![diagnostic.at(&shared)],
            },
        };
        if let Some((cache, key)) = &cache_key {
            cache.store(path, key, &compiled);
        }
        done(compiled, Source::Parsed)
    }

    /// What a cache entry for `path` with this content must match.
    fn entry_key(&self, path: &Path, content: u128) -> Option<EntryKey> {
        let mut hasher = FxHasher::default();
        hasher.write(self.default_region.code().as_bytes());
        hasher.write_u64(self.limits.max_file_bytes);
        hasher.write_usize(self.limits.max_nodes);
        hasher.write_usize(self.limits.max_depth);
        Some(EntryKey {
            program: cache::program_id()?,
            settings: hasher.finish(),
            path: path.as_os_str().as_encoded_bytes().to_vec(),
            content,
        })
    }
}

/// A file whose compiling panicked, as an error in the report. It is not
/// remembered as read (no fingerprint, no content hash), so every load
/// tries it again rather than reusing the error: a fixed build or file
/// needs no restart, and the same panic again is the same report, which
/// the reload thread does not log twice.
fn panicked_file(path: PathBuf, panicked: &WorkerPanicked) -> (PathBuf, CachedFile, Source) {
    let shared: Arc<Path> = Arc::from(path.as_path());
    let diagnostic = Diagnostic::error(
        &shared,
        0,
        format!(
            "switchboard failed while reading or compiling this file (it panicked: {}); the data is refused rather than served without this file's accounts",
            panicked.message
        ),
    )
    .fix("this is a bug in switchboard: report it, with the file if you can");
    let cached = CachedFile {
        path: shared,
        fingerprint: None,
        content_hash: None,
        compiled: Arc::new(CompiledFile {
            accounts: Vec::new(),
            diagnostics: vec![diagnostic],
        }),
    };
    (path, cached, Source::Parsed)
}

/// The routing files under `path`: the file itself, or a directory's
/// `*.yaml`/`*.yml` files (hidden ones, such as a ConfigMap's `..data`,
/// skipped), in name order.
pub(super) fn list_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    if !fs::metadata(path)?.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        let file = entry.path();
        if !name.starts_with('.') && is_yaml && fs::metadata(&file).is_ok_and(|m| m.is_file()) {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// A file-level problem, before its path is attached.
pub(super) struct FileProblem {
    message: String,
    fix: &'static str,
}

impl FileProblem {
    fn at(self, file: &Arc<Path>) -> Diagnostic {
        Diagnostic::error(file, 0, self.message).fix(self.fix)
    }
}

pub(super) fn read_text(path: &Path, limits: &YamlLimits) -> Result<String, FileProblem> {
    read_bytes(path, limits).and_then(into_text)
}

/// The file's bytes, within the size limit.
fn read_bytes(path: &Path, limits: &YamlLimits) -> Result<Vec<u8>, FileProblem> {
    let unreadable = |e: io::Error| FileProblem {
        message: format!("cannot read the file: {e}"),
        fix: "check that the file exists and is readable",
    };
    let len = fs::metadata(path).map_err(unreadable)?.len();
    if len > limits.max_file_bytes {
        return Err(FileProblem {
            message: format!(
                "the file is {len} bytes, over the limit of {} bytes",
                limits.max_file_bytes
            ),
            fix: "split the data into one file per account in a directory",
        });
    }
    // The file may grow between the size check and the read: read at most
    // one byte past the limit, and refuse if that byte arrives.
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    fs::File::open(path)
        .and_then(|f| f.take(limits.max_file_bytes + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(FileProblem {
            message: format!(
                "the file grew past the limit of {} bytes while being read",
                limits.max_file_bytes
            ),
            fix: "split the data into one file per account in a directory",
        });
    }
    Ok(bytes)
}

fn into_text(bytes: Vec<u8>) -> Result<String, FileProblem> {
    String::from_utf8(bytes).map_err(|e| FileProblem {
        message: format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
        fix: "save the file as UTF-8",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing_data::Severity;

    fn account(id: &str, number: &str) -> String {
        format!(
            "accounts:\n  - id: {id}\n    forward_to: \"+14155550000\"\n    numbers:\n      - number: \"{number}\"\n"
        )
    }

    #[test]
    fn a_panic_compiling_a_file_refuses_the_load_naming_that_file() {
        let dir = tempfile::tempdir().unwrap();
        // Enough files that the compile runs on several workers.
        for i in 0..8 {
            let name = dir.path().join(format!("a{i}.yaml"));
            fs::write(name, account(&format!("a{i}"), &format!("+1800555010{i}"))).unwrap();
        }
        let mut loader = Loader::new(dir.path(), Region::us()).panic_when_compiling("boom.yaml");
        let loaded = loader.load().expect("good data loads");
        assert_eq!(loaded.stats.counts.accounts, 8);

        // Before the policy, the panicking worker's files were left out
        // and the load succeeded without them.
        fs::write(
            dir.path().join("boom.yaml"),
            account("boom", "+18005550200"),
        )
        .unwrap();
        let rejected = loader.load().expect_err("a panic refuses the load");
        let errors: Vec<&Diagnostic> = rejected.report.errors().collect();
        assert_eq!(errors.len(), 1, "{}", rejected.report);
        assert!(errors[0].file.ends_with("boom.yaml"), "{}", errors[0]);
        assert_eq!(errors[0].severity, Severity::Error);
        assert!(
            errors[0]
                .message
                .contains("panicked: injected panic compiling"),
            "{}",
            errors[0]
        );

        // Not remembered as read: the next load tries the file again.
        let again = loader.load().expect_err("still refused");
        assert_eq!(again.report, rejected.report);

        // Gone: every other file was kept, none is parsed again.
        fs::remove_file(dir.path().join("boom.yaml")).unwrap();
        let loaded = loader.load().expect("good data loads again");
        assert_eq!(loaded.stats.counts.accounts, 8);
        assert_eq!(loaded.stats.parsed, 0, "{:?}", loaded.stats);
    }
}
