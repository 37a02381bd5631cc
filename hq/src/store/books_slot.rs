//! Each branch's books at HQ as two things: the writer's working copy, which only the
//! branch's apply touches (its mutex is the branch's serialization: one batch of a
//! branch at a time, different branches in parallel), and the published snapshot that
//! reports and drill-through read without waiting for any write.
//!
//! The working copy is posted into in place before its batch is durable (cloning it per
//! batch would cost more than the write), so nobody reads it while a batch is under way:
//! a reader takes it only with `try_lock`, i.e. between batches, when it holds exactly
//! what disk holds. A snapshot is a clone of a durable working copy, made when a reader
//! asks (at the end of the next commit, or at once when the writer is idle), so a branch
//! nobody reads costs no clone per batch. Must not touch sled or post anything.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

use protocol::books::Books;

/// One branch's books: the writer's copy and the readers' snapshot.
#[derive(Default)]
pub struct BranchBooks {
    /// The books as of the branch's durable head whenever unlocked; `None` when they must
    /// be rebuilt from disk (a write failed and so did the rebuild, or never loaded).
    work: Mutex<Option<Books>>,
    /// The last snapshot published: books as of some durable head, never ahead of disk.
    published: Mutex<Option<Arc<Books>>>,
    /// The working copy has commits the snapshot lacks.
    stale: AtomicBool,
    /// A reader found the snapshot stale while the writer was busy: the writer publishes
    /// at the end of its commit.
    wanted: AtomicBool,
}

impl BranchBooks {
    /// Books loaded at start (durable by construction), published at once: a report that
    /// asks while the branch's first batch holds the writer's lock is served these, not
    /// "no books" (a full run saw that 404 once). One copy of the books, at load.
    pub fn new(books: Books) -> BranchBooks {
        let published = Mutex::new(Some(Arc::new(books.clone())));
        BranchBooks { work: Mutex::new(Some(books)), published, ..Default::default() }
    }

    /// The writer's lock: held by the branch's session step from its decision to its
    /// durable commit, so one branch's batches apply one at a time.
    pub fn writer(&self) -> MutexGuard<'_, Option<Books>> {
        // A panic ends the process (`edge::stop_on_panic`); a poisoned lock is never used.
        edge::lock(&self.work)
    }

    /// Called by the writer, still holding its lock, once a batch is durable.
    pub fn committed(&self, books: &Books) {
        if self.wanted.swap(false, Ordering::AcqRel) {
            self.publish(books);
        } else {
            self.stale.store(true, Ordering::Release);
        }
    }

    /// Called by the writer after a failed write whose rebuild also failed: the snapshot
    /// (as of the last durable head) stays, the working copy is rebuilt next time.
    pub fn lost(&self) {
        self.stale.store(false, Ordering::Release);
    }

    fn publish(&self, books: &Books) {
        let snap = Arc::new(books.clone());
        *edge::lock(&self.published) = Some(snap);
        self.stale.store(false, Ordering::Release);
    }

    /// A consistent snapshot of the branch's books as of a durable head, without waiting
    /// for a write under way: if the writer is busy the previous snapshot is served (and
    /// the writer refreshes it at its commit). `None`: no books in memory (reports omit
    /// the branch until an apply rebuilds them).
    pub fn snapshot(&self) -> Option<Arc<Books>> {
        if self.stale.load(Ordering::Acquire) {
            self.wanted.store(true, Ordering::Release);
            let work = match self.work.try_lock() {
                Ok(g) => Some(g),
                Err(TryLockError::Poisoned(_)) => {
                    panic!("a branch's books lock was poisoned by an earlier panic; refusing to use what it guards")
                }
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(work) = work {
                self.wanted.store(false, Ordering::Release);
                match work.as_ref() {
                    Some(b) => self.publish(b),
                    None => self.stale.store(false, Ordering::Release),
                }
            }
        }
        edge::lock(&self.published).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_sees_the_committed_books_and_never_the_ones_being_written() {
        let slot = BranchBooks::new(Books::default());
        let first = slot.snapshot().expect("loaded books");
        let mut w = slot.writer();
        let mut books = w.take().expect("working copy");
        books.absorb(&Books::default());
        // While the writer holds its lock a reader gets the last snapshot at once.
        assert!(Arc::ptr_eq(&slot.snapshot().expect("snapshot"), &first));
        slot.committed(&books);
        *w = Some(books);
        drop(w);
        // The reader asked while the writer was busy: the commit published a new one.
        assert!(!Arc::ptr_eq(&slot.snapshot().expect("snapshot"), &first));
    }
}
