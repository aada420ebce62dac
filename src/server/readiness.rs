//! Readiness (docs/operations.md, `/readyz`): set once a routing table is
//! loaded and every listener is serving. A state of the server, not a
//! metric: the server sets it, the admin endpoint and systemd's
//! notification read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether the server is ready to take calls; cheap to clone and share.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// A table is loaded and every listener is serving.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let readiness = Readiness::default();
        let seen_by_admin = readiness.clone();
        assert!(!seen_by_admin.is_ready());
        readiness.set_ready();
        assert!(seen_by_admin.is_ready());
    }
}
