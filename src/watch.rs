//! What wakes a reload thread: file events in the directories that hold
//! its files, debounced, SIGHUP, and the poll (`next_wake`). The routing data (`routing_data::reload`)
//! and the TLS certificates (`tls::reloading`) each run a thread woken by
//! these; each decides for itself what a wake-up means.
//!
//! Directories are watched, not files: replacing a file by rename, a
//! symlink switch (certbot) and a Kubernetes ConfigMap's or Secret's
//! `..data` swap all leave a watch on the old file looking at nothing.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use tracing::{debug, info, warn};

/// A running directory watch; stops when dropped.
pub struct DirWatch {
    debouncer: Option<Debouncer<notify::RecommendedWatcher, RecommendedCache>>,
}

impl Drop for DirWatch {
    fn drop(&mut self) {
        if let Some(debouncer) = self.debouncer.take() {
            debouncer.stop_nonblocking();
        }
    }
}

/// Calls `wake` once file events in any of `dirs` have been quiet for
/// `debounce` (and when the watcher reports errors: something may have
/// changed unseen). `what` names the files in log lines. `None` when no
/// watch could be started: the caller's poll and SIGHUP remain.
pub fn watch_dirs(
    dirs: &[PathBuf],
    debounce: Duration,
    what: &'static str,
    wake: impl Fn() + Send + 'static,
) -> Option<DirWatch> {
    let handler = move |result: DebounceEventResult| {
        match result {
            Ok(events) if events.is_empty() => return,
            Ok(events) => debug!(events = events.len(), "{what}: directory changed"),
            Err(errors) => warn!(?errors, "file watcher reported errors; checking {what}"),
        }
        wake();
    };
    let mut debouncer = match new_debouncer(debounce, None, handler) {
        Ok(debouncer) => debouncer,
        Err(e) => {
            warn!(error = %e, "cannot watch {what}; relying on the poll and SIGHUP");
            return None;
        }
    };
    let mut watching = 0;
    for dir in dirs {
        match debouncer.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => watching += 1,
            Err(e) => {
                warn!(dir = %dir.display(), error = %e, "cannot watch {what}; relying on the poll and SIGHUP")
            }
        }
    }
    (watching > 0).then_some(DirWatch {
        debouncer: Some(debouncer),
    })
}

/// A SIGHUP listener; stops when dropped.
pub struct Sighup {
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Sighup {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Calls `wake` on every SIGHUP, from a thread of its own. Several
/// listeners may run at once: each gets every signal.
pub fn on_sighup(what: &'static str, wake: impl Fn() + Send + 'static) -> Option<Sighup> {
    let mut signals = match signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP; {what} reloads by file change or poll only");
            return None;
        }
    };
    let handle = signals.handle();
    let thread = std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                info!("SIGHUP: reloading {what}");
                wake();
            }
        });
    match thread {
        Ok(thread) => Some(Sighup {
            handle,
            thread: Some(thread),
        }),
        Err(e) => {
            warn!(error = %e, "cannot listen for SIGHUP; {what} reloads by file change or poll only");
            None
        }
    }
}

/// The next wake-up a reload thread waits for: one sent on `wakes`;
/// `poll_due` once `poll` has passed without one; `stop` when every sender
/// is gone (the owner was dropped).
pub fn next_wake<W>(wakes: &Receiver<W>, poll: Option<Duration>, poll_due: W, stop: W) -> W {
    match poll {
        Some(every) => match wakes.recv_timeout(every) {
            Ok(wake) => wake,
            Err(RecvTimeoutError::Timeout) => poll_due,
            Err(RecvTimeoutError::Disconnected) => stop,
        },
        None => wakes.recv().unwrap_or(stop),
    }
}

/// A reload thread and what wakes it, stopped in order when dropped: the
/// directory watch and the SIGHUP listener first (nothing new arrives),
/// then `stop` is sent and the thread joined.
pub struct ReloadThread<W: Copy> {
    wake: Sender<W>,
    stop: W,
    worker: Option<JoinHandle<()>>,
    watcher: Option<DirWatch>,
    signals: Option<Sighup>,
}

impl<W: Copy> ReloadThread<W> {
    pub fn new(
        wake: Sender<W>,
        stop: W,
        worker: JoinHandle<()>,
        watcher: Option<DirWatch>,
        signals: Option<Sighup>,
    ) -> Self {
        ReloadThread {
            wake,
            stop,
            worker: Some(worker),
            watcher,
            signals,
        }
    }

    /// Wakes the thread with `wake`.
    pub fn wake(&self, wake: W) {
        let _ = self.wake.send(wake);
    }
}

impl<W: Copy> Drop for ReloadThread<W> {
    fn drop(&mut self) {
        drop(self.watcher.take());
        drop(self.signals.take());
        let _ = self.wake.send(self.stop);
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}
