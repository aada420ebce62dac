//! Responses to a caller on a stream (RFC 3261 §18.2.2: "the response is
//! sent on the connection the request arrived on"): each TCP or TLS
//! connection that may carry a relayed call registers a writer here, and
//! the proxy driver, on its own thread, queues the bytes for it. Bounded:
//! a connection that does not drain its queue loses what does not fit,
//! which the call sees as a transport error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use tokio::sync::mpsc;

/// Which connection a message came over.
pub type ConnectionId = u64;

/// Bytes queued per connection at most (messages, not bytes).
const QUEUE: usize = 256;

/// The writers of the connections open now.
#[derive(Debug, Default)]
pub struct StreamWriters {
    writers: DashMap<ConnectionId, mpsc::Sender<Vec<u8>>>,
    next: AtomicU64,
}

/// A connection's registration: its id, and its queue's receiving end.
/// Dropping it takes the writer out.
pub struct Registration {
    pub id: ConnectionId,
    pub queue: mpsc::Receiver<Vec<u8>>,
    writers: Arc<StreamWriters>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.writers.writers.remove(&self.id);
    }
}

impl StreamWriters {
    /// Registers a new connection.
    pub fn register(self: &Arc<Self>) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (sender, queue) = mpsc::channel(QUEUE);
        self.writers.insert(id, sender);
        Registration {
            id,
            queue,
            writers: Arc::clone(self),
        }
    }

    /// Queues `bytes` for connection `id`; whether it is still open and
    /// had room.
    pub fn send(&self, id: ConnectionId, bytes: Vec<u8>) -> bool {
        self.writers
            .get(&id)
            .is_some_and(|writer| writer.try_send(bytes).is_ok())
    }

    /// Connections registered now.
    pub fn open(&self) -> usize {
        self.writers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_connection_takes_no_more_bytes() {
        let writers = Arc::new(StreamWriters::default());
        let mut first = writers.register();
        let second = writers.register();
        assert_ne!(first.id, second.id);
        assert!(writers.send(first.id, b"SIP/2.0 100 Trying\r\n".to_vec()));
        assert_eq!(
            first.queue.try_recv().ok().as_deref(),
            Some(&b"SIP/2.0 100 Trying\r\n"[..])
        );
        let id = second.id;
        drop(second);
        assert!(!writers.send(id, b"late".to_vec()));
        assert_eq!(writers.open(), 1);
    }

    #[test]
    fn a_full_queue_refuses() {
        let writers = Arc::new(StreamWriters::default());
        let slow = writers.register();
        for _ in 0..QUEUE {
            assert!(writers.send(slow.id, Vec::new()));
        }
        assert!(!writers.send(slow.id, Vec::new()));
    }
}
