//! HQ's group commit: the store's flush run through `edge::GroupCommit`, so batches of
//! many branches that finished their writes together share one flush + fsync. Must not
//! write anything itself.

use super::error::{Result, StoreError};
use super::Store;

impl Store {
    /// Makes everything this thread wrote so far durable, sharing the flush with every
    /// other writer that asks meanwhile. Returns only once a flush that began after the
    /// caller's write has finished.
    pub(crate) fn flush_grouped(&self) -> Result<()> {
        self.group.durable(|| self.flush()).map_err(|e| match e {
            edge::GroupFlushError::Flush(e) => e,
            edge::GroupFlushError::Shared => StoreError::Io {
                what: "group flush of the HQ store".into(),
                source: std::io::Error::other("the flush covering this write failed"),
            },
        })
    }

    /// (group flushes, writes they made durable) since open.
    pub fn group_commit_stats(&self) -> (u64, u64) {
        self.group.stats()
    }
}
