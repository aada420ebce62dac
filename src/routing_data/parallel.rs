//! One work loop for spreading independent items over scoped threads: the
//! loader compiling changed files, `switchboard diff` compiling two data
//! sets, and the diff walking changed accounts all use it.
//!
//! Items differ in cost (one account file may hold most of the contacts),
//! so workers take the next item from a shared index as they free up
//! instead of being handed fixed slices; results come back in item order
//! whatever order they finished in.
//!
//! The panic policy lives here, once: each item runs under `catch_unwind`,
//! so a panic is the outcome of that item alone, named by its index, and
//! never ends a worker, skips the items after it, or silently drops the
//! results of the items before it. What a panic then means (a refused
//! load, a diff that is unavailable) is the caller's decision, but it
//! cannot go unnoticed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};

/// An item whose work panicked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the work on item {index} panicked: {message}")]
pub struct WorkerPanicked {
    /// The item's position in the slice given to the map.
    pub index: usize,
    /// The panic's message, when it was a string.
    pub message: String,
}

/// The machine's cores, the usual number of workers: the work is CPU-bound.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f` over `items` on up to `workers` threads (one: on the calling
/// thread, spawning none), each item's own outcome in item order: its
/// result, or how it panicked. Every item is run, whatever panicked before.
pub fn map_each<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<Result<R, WorkerPanicked>> {
    // `f` is shared and borrowed, never left half-updated by this loop: a
    // panic inside it can break only the item it was working on, and that
    // item's outcome is the panic.
    let one = |index: usize, item: &T| {
        catch_unwind(AssertUnwindSafe(|| f(item))).map_err(|payload| WorkerPanicked {
            index,
            message: panic_message(payload.as_ref()),
        })
    };
    let workers = workers.min(items.len());
    if workers <= 1 {
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| one(i, item))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let run = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, one(i, item)));
        }
    };
    let mut results: Vec<(usize, Result<R, WorkerPanicked>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(run)).collect();
        handles
            .into_iter()
            .flat_map(|h| {
                // `run` catches every panic of `f`; what is left (the
                // allocator failing to grow `done`) aborts rather than
                // unwinds, so a join error cannot happen. Were it to, the
                // items that worker took would be missing: said below.
                h.join().unwrap_or_default()
            })
            .collect()
    });
    results.sort_unstable_by_key(|(i, _)| *i);
    // Belt and braces for the join above: an item without an outcome is
    // reported as panicked, never dropped.
    let mut outcomes = Vec::with_capacity(items.len());
    let mut results = results.into_iter().peekable();
    for index in 0..items.len() {
        match results.next_if(|(i, _)| *i == index) {
            Some((_, outcome)) => outcomes.push(outcome),
            None => outcomes.push(Err(WorkerPanicked {
                index,
                message: "its worker thread ended without a result".to_owned(),
            })),
        }
    }
    outcomes
}

/// `f` over `items` on up to `workers` threads, the results in item
/// order; if any item panicked, the error names the first such item (the
/// other items were still run, and their results are discarded with the
/// whole map).
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Result<Vec<R>, WorkerPanicked> {
    map_each(items, workers, f).into_iter().collect()
}

/// What a panic said, from its payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(not a string)".to_owned())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[test]
    fn results_come_back_in_item_order_on_any_number_of_workers() {
        let items: Vec<u64> = (0..200).collect();
        for workers in [0, 1, 2, 3, 8, 500] {
            // Uneven work, so that workers finish out of order.
            let squares = parallel_map(&items, workers, |&n| {
                if n % 7 == 0 {
                    std::thread::yield_now();
                }
                n * n
            });
            let expected: Vec<u64> = items.iter().map(|n| n * n).collect();
            assert_eq!(squares, Ok(expected), "{workers} workers");
        }
        assert_eq!(parallel_map(&[] as &[u8], 4, |_| 1), Ok(vec![]));
    }

    #[test]
    fn a_panic_on_item_k_names_item_k_and_no_other_item_is_lost() {
        let items: Vec<usize> = (0..64).collect();
        for workers in [1, 4] {
            let runs = AtomicUsize::new(0);
            let outcomes = map_each(&items, workers, |&i| {
                runs.fetch_add(1, Ordering::Relaxed);
                if i == 17 {
                    panic!("injected on item {i}");
                }
                i * 10
            });
            assert_eq!(runs.load(Ordering::Relaxed), 64, "{workers} workers");
            assert_eq!(outcomes.len(), 64);
            for (i, outcome) in outcomes.iter().enumerate() {
                if i == 17 {
                    assert_eq!(
                        outcome,
                        &Err(WorkerPanicked {
                            index: 17,
                            message: "injected on item 17".to_owned(),
                        })
                    );
                } else {
                    assert_eq!(outcome, &Ok(i * 10), "item {i}, {workers} workers");
                }
            }
            let all = parallel_map(&items, workers, |&i| {
                assert!(i != 17 && i != 40, "item {i} refused");
                i
            });
            let err = all.expect_err("a panicking item fails the map");
            assert_eq!(err.index, 17, "the first panicking item is named");
            assert_eq!(err.message, "item 17 refused");
        }
    }
}
