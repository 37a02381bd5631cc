//! Group commit: one flush + fsync makes durable every write that was in sled when it
//! started, so batches of many branches that finished their writes together wait for
//! one fsync, not one each.
//!
//! A caller writes first, then asks for durability: it takes a ticket, and either a
//! flush already under way started after its write (it cannot know that, so it waits for
//! the next one) or it runs the next flush itself for everyone waiting. Holds no lock
//! while flushing; must not write anything itself.

use std::sync::{Condvar, Mutex};

use super::error::{Result, StoreError};
use super::Store;

#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<Tickets>,
    done: Condvar,
}

#[derive(Default)]
struct Tickets {
    /// Tickets handed out: each is a write that wants to be durable.
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// Tickets up to this one were covered by a flush that failed (and by no later
    /// flush that succeeded: `durable` is checked first).
    failed: u64,
    flushing: bool,
    /// Flushes that made more than one ticket durable, and the tickets they covered: the
    /// grouping, for the log and the benchmark.
    flushes: u64,
    tickets_flushed: u64,
}

impl Store {
    /// Makes everything this thread wrote so far durable, sharing the flush with every
    /// other writer that asks meanwhile. Returns only once a flush that began after the
    /// caller's write has finished.
    pub(crate) fn flush_grouped(&self) -> Result<()> {
        let g = &self.group;
        let mut t = g.state.lock().unwrap_or_else(|p| p.into_inner());
        t.issued += 1;
        let ticket = t.issued;
        loop {
            if t.durable >= ticket {
                return Ok(());
            }
            if t.failed >= ticket {
                return Err(StoreError::Io {
                    what: "group flush of the HQ store".into(),
                    source: std::io::Error::other("the flush covering this write failed"),
                });
            }
            if t.flushing {
                t = g.done.wait(t).unwrap_or_else(|p| p.into_inner());
                continue;
            }
            // Everyone who took a ticket so far has written: this flush covers them all.
            let target = t.issued;
            let covered = target - t.durable;
            t.flushing = true;
            drop(t);
            let result = self.flush();
            t = g.state.lock().unwrap_or_else(|p| p.into_inner());
            t.flushing = false;
            match &result {
                Ok(()) => {
                    t.durable = t.durable.max(target);
                    t.flushes += 1;
                    t.tickets_flushed += covered;
                }
                Err(e) => {
                    tracing::error!(error = %e, "group flush failed");
                    t.failed = t.failed.max(target);
                }
            }
            g.done.notify_all();
        }
    }

    /// (group flushes, writes they made durable) since open.
    pub fn group_commit_stats(&self) -> (u64, u64) {
        let t = self.group.state.lock().unwrap_or_else(|p| p.into_inner());
        (t.flushes, t.tickets_flushed)
    }
}
