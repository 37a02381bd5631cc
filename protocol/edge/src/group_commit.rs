//! Group commit: one flush + fsync makes durable every write that was made before it
//! started, so writers that finish their writes together share one fsync instead of
//! taking one each (HQ: batches of many branches; the branch: concurrent posts).
//!
//! A writer writes first, then calls [`GroupCommit::durable`] from the same thread: it
//! takes a ticket, and either runs the next flush itself for everyone waiting, or waits
//! for a flush that began after its ticket. No lock is held while flushing. Decides
//! nothing and knows no store: the flush is the caller's.

use std::sync::{Condvar, Mutex};

/// Why [`GroupCommit::durable`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GroupFlushError<E: std::error::Error + 'static> {
    /// This caller ran the flush and it failed.
    #[error(transparent)]
    Flush(E),
    /// Another caller ran the flush that covered this write, and it failed.
    #[error("the flush that covered this write failed")]
    Shared,
}

#[derive(Default)]
pub struct GroupCommit {
    state: Mutex<Tickets>,
    done: Condvar,
}

#[derive(Default)]
struct Tickets {
    /// Tickets handed out: each is a write that wants to be durable.
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// Tickets up to this one were covered by a flush that failed (and, if `durable` is
    /// below them, by no later flush that succeeded).
    failed: u64,
    flushing: bool,
    flushes: u64,
    tickets_flushed: u64,
}

impl GroupCommit {
    /// Makes everything the calling thread wrote before this call durable, sharing the
    /// flush with every other writer that asks meanwhile. Returns only once a flush that
    /// began after this call has finished.
    pub fn durable<E: std::error::Error + 'static>(&self, flush: impl FnOnce() -> Result<(), E>) -> Result<(), GroupFlushError<E>> {
        let mut flush = Some(flush);
        let mut t = self.state.lock().unwrap_or_else(|p| p.into_inner());
        t.issued += 1;
        let ticket = t.issued;
        loop {
            if t.durable >= ticket {
                return Ok(());
            }
            if t.failed >= ticket {
                return Err(GroupFlushError::Shared);
            }
            if t.flushing {
                t = self.done.wait(t).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Everyone who took a ticket so far has written: this flush covers them all.
            let target = t.issued;
            let covered = target - t.durable.max(t.failed);
            t.flushing = true;
            drop(t);
            let f = flush.take().expect("a caller runs at most one flush: it returns right after it");
            let result = f();
            t = self.state.lock().unwrap_or_else(|p| p.into_inner());
            t.flushing = false;
            match result {
                Ok(()) => {
                    t.durable = t.durable.max(target);
                    t.flushes += 1;
                    t.tickets_flushed += covered;
                    self.done.notify_all();
                    return Ok(());
                }
                Err(e) => {
                    t.failed = t.failed.max(target);
                    self.done.notify_all();
                    return Err(GroupFlushError::Flush(e));
                }
            }
        }
    }

    /// (flushes run, writes they made durable) so far: the grouping, for logs and
    /// benchmarks.
    pub fn stats(&self) -> (u64, u64) {
        let t = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (t.flushes, t.tickets_flushed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn every_writer_returns_after_a_flush_that_began_after_its_write() {
        let gc = GroupCommit::default();
        // "Disk": the write counter as of the last flush's start.
        let written = AtomicU64::new(0);
        let flushed_upto = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..50 {
                        let mine = written.fetch_add(1, Ordering::SeqCst) + 1;
                        gc.durable(|| {
                            flushed_upto.fetch_max(written.load(Ordering::SeqCst), Ordering::SeqCst);
                            Ok::<(), std::io::Error>(())
                        })
                        .expect("flush");
                        assert!(flushed_upto.load(Ordering::SeqCst) >= mine, "returned before a flush covered write {mine}");
                    }
                });
            }
        });
        let (flushes, tickets) = gc.stats();
        assert_eq!(tickets, 400);
        assert!(flushes <= tickets);
    }

    #[test]
    fn a_failed_flush_fails_the_writers_it_covered() {
        let gc = GroupCommit::default();
        let e = gc.durable(|| Err(std::io::Error::other("disk gone"))).expect_err("fails");
        assert!(matches!(e, GroupFlushError::Flush(_)));
        gc.durable(|| Ok::<(), std::io::Error>(())).expect("a later flush succeeds");
    }
}
