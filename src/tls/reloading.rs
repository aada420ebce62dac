//! Certificates that reload without a restart (docs/security.md, "Rotating
//! certificates").
//!
//! One thread keeps the TLS configuration in step with its files. It wakes
//! on file events in the directories that hold them (so a rename over a
//! file, certbot's symlink switch and a Kubernetes Secret's `..data` swap
//! are all seen; [`crate::watch`]), on SIGHUP, and on a slow poll. When the files' bytes
//! changed (SIGHUP: always) it builds a new configuration; a good one
//! replaces the serving one for connections accepted from then on, a bad
//! one (unreadable, key not matching, expired) is refused with a log line
//! and a counted failure while the last good one keeps serving.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use tracing::{error, info, warn};

use super::certificate::{CertificateError, CertificateInfo};
use super::server_config::{Serving, TlsFiles, build};
use crate::watch::{ReloadThread, next_wake, on_sighup, watch_dirs};

/// Below this much time left, the start and every reload say so.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// How changes are noticed.
#[derive(Debug, Clone, Copy)]
pub struct TlsReloadOptions {
    pub debounce: Duration,
    /// Safety-net poll; `None`: none.
    pub poll: Option<Duration>,
}

/// Why the thread woke up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// A file event or the poll: rebuild if the bytes changed.
    Look,
    /// SIGHUP: rebuild whatever the bytes.
    Sighup,
    Stop,
}

#[derive(Debug)]
struct Shared {
    serving: ArcSwap<Serving>,
    reloads: AtomicU64,
    failures: AtomicU64,
}

/// What connections and metrics read: the serving configuration and the
/// reload counts.
#[derive(Debug, Clone)]
pub struct TlsHandle {
    shared: Arc<Shared>,
}

impl TlsHandle {
    /// The configuration for a connection accepted now.
    pub fn serving(&self) -> Arc<Serving> {
        self.shared.serving.load_full()
    }

    /// Certificate reloads that took, since the start.
    pub fn reloads(&self) -> u64 {
        self.shared.reloads.load(Ordering::Relaxed)
    }

    /// Certificate reloads refused, since the start.
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::Relaxed)
    }
}

/// The serving TLS configuration, kept in step with its files until
/// dropped.
pub struct TlsReloader {
    handle: TlsHandle,
    _thread: ReloadThread<Wake>,
}

impl TlsReloader {
    /// Builds the first configuration (failing if the files cannot serve),
    /// logs what it serves, and starts watching.
    pub fn start(files: TlsFiles, options: TlsReloadOptions) -> Result<Self, CertificateError> {
        let first = build(&files, SystemTime::now())?;
        announce("TLS certificate loaded", &first.certificate);
        let shared = Arc::new(Shared {
            serving: ArcSwap::from_pointee(first),
            reloads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        });
        let (wake, wakes) = mpsc::channel();
        let dirs: BTreeSet<PathBuf> = files.paths().into_iter().map(|p| parent(p)).collect();
        let dirs: Vec<PathBuf> = dirs.into_iter().collect();
        let watcher = {
            let wake = wake.clone();
            watch_dirs(&dirs, options.debounce, "the TLS certificate", move || {
                let _ = wake.send(Wake::Look);
            })
        };
        let signals = {
            let wake = wake.clone();
            on_sighup("the TLS certificate", move || {
                let _ = wake.send(Wake::Sighup);
            })
        };
        let seen = read_all(&files);
        let worker = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("tls-reload".into())
                .spawn(move || reload_loop(&files, &shared, &wakes, options.poll, seen))
                .map_err(|source| CertificateError::Read {
                    path: PathBuf::from("(the TLS reload thread)"),
                    source,
                })?
        };
        Ok(TlsReloader {
            handle: TlsHandle { shared },
            _thread: ReloadThread::new(wake, Wake::Stop, worker, watcher, signals),
        })
    }

    pub fn handle(&self) -> TlsHandle {
        self.handle.clone()
    }
}

/// Logs the subject, names and expiry of a certificate now serving, with
/// a warning when it expires soon.
fn announce(what: &str, info: &CertificateInfo) {
    let now = SystemTime::now();
    let days_left = info.remaining(now).as_secs() / 86_400;
    info!(
        subject = %info.subject,
        dns_names = %info.dns_names.join(","),
        serial = %info.serial,
        not_after = %info.not_after_text,
        days_left,
        "{what}"
    );
    if info.remaining(now) < EXPIRY_WARNING {
        warn!(
            subject = %info.subject,
            not_after = %info.not_after_text,
            days_left,
            "the TLS certificate expires in {days_left} days: replace the files (they reload on their own)"
        );
    }
}

/// The bytes of every file (`None` for one that cannot be read).
fn read_all(files: &TlsFiles) -> Vec<Option<Vec<u8>>> {
    files
        .paths()
        .into_iter()
        .map(|p| std::fs::read(p).ok())
        .collect()
}

fn reload_loop(
    files: &TlsFiles,
    shared: &Shared,
    wakes: &Receiver<Wake>,
    poll: Option<Duration>,
    mut seen: Vec<Option<Vec<u8>>>,
) {
    loop {
        let first = next_wake(wakes, poll, Wake::Look, Wake::Stop);
        let mut forced = first == Wake::Sighup;
        let mut stop = first == Wake::Stop;
        while let Ok(wake) = wakes.try_recv() {
            forced |= wake == Wake::Sighup;
            stop |= wake == Wake::Stop;
        }
        if stop {
            return;
        }
        let now = read_all(files);
        if now == seen && !forced {
            continue;
        }
        seen = now;
        match build(files, SystemTime::now()) {
            Ok(serving) => {
                announce("TLS certificate reloaded", &serving.certificate);
                shared.serving.store(Arc::new(serving));
                shared.reloads.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                shared.failures.fetch_add(1, Ordering::Relaxed);
                let serving = shared.serving.load();
                error!(
                    error = %e,
                    serving_serial = %serving.certificate.serial,
                    serving_not_after = %serving.certificate.not_after_text,
                    "TLS certificate reload refused; the last good certificate keeps serving: {e}"
                );
            }
        }
    }
}

fn parent(path: &Path) -> PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    }
}
