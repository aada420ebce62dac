//! Keeping a panic in one request from taking the server down. The parser
//! and handler are fuzzed and property-tested not to panic; this is the
//! second line: a panicking request is dropped and logged, and a worker
//! loop that panics anyway is started again.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tracing::error;

/// Runs `f`, turning a panic into `None` and an error log line.
pub fn contain<T>(what: &str, f: impl FnOnce() -> T) -> Option<T> {
    // The handler's state is either immutable or (the flood buckets) left
    // consistent between operations, so unwinding out of it is safe.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(payload) => {
            error!(
                panic = panic_message(payload.as_ref()),
                "{what} panicked; dropped"
            );
            None
        }
    }
}

/// Runs `worker` until it returns, starting it again each time it panics.
pub fn restart_on_panic(name: &str, mut worker: impl FnMut()) {
    while contain(name, &mut worker).is_none() {
        error!(worker = name, "restarting after a panic");
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_contained_and_the_worker_runs_again() {
        assert_eq!(contain("test", || 7), Some(7));
        assert_eq!(contain("test", || -> u8 { panic!("boom") }), None);
        let mut runs = 0;
        restart_on_panic("test worker", || {
            runs += 1;
            if runs < 3 {
                panic!("run {runs}");
            }
        });
        assert_eq!(runs, 3);
    }
}
