//! Making sled's files durable beyond what sled does itself.
//!
//! sled 0.34 writes large values and large consolidated tree nodes to files of their own
//! under `blobs/` (one file per blob, written once with `create_new`, never changed) and
//! never fsyncs them or the directory; its `flush` fsyncs none of them either. A power cut
//! can then lose a blob that an acknowledged write points to, and the store cannot be
//! opened again. [`StoreFiles::sync_new`] fsyncs every blob file not yet synced, then the
//! `blobs/` directory and the store directory (their entries: a new file's name survives
//! only once its directory is synced). Blobs are immutable, so each is synced once.
//!
//! Must not: know sled's formats (only its directory layout), or read the clock.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The directory of one sled store and the blob files of it already fsynced.
#[derive(Debug)]
pub struct StoreFiles {
    dir: PathBuf,
    synced: Mutex<HashSet<OsString>>,
    /// The store directory itself is synced once (its files are created at open).
    dir_synced: std::sync::atomic::AtomicBool,
}

impl StoreFiles {
    pub fn new(dir: &Path) -> StoreFiles {
        StoreFiles { dir: dir.to_path_buf(), synced: Mutex::new(HashSet::new()), dir_synced: Default::default() }
    }

    /// fsyncs the blob files written since the last call and, if there were any, the
    /// `blobs/` directory; the store directory on the first call. Call after sled's
    /// `flush` and before acknowledging anything: every blob the flushed log points to is
    /// written by then. Returns how many blob files were synced.
    pub fn sync_new(&self) -> std::io::Result<usize> {
        let blobs = self.dir.join("blobs");
        let mut synced = crate::lock(&self.synced);
        let mut new = 0;
        if let Ok(entries) = std::fs::read_dir(&blobs) {
            for e in entries {
                let e = e?;
                let name = e.file_name();
                if synced.contains(&name) {
                    continue;
                }
                match std::fs::File::open(e.path()) {
                    Ok(f) => f.sync_all()?,
                    // sled removed a blob no longer needed between the listing and here.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(err) => return Err(err),
                }
                synced.insert(name);
                new += 1;
            }
            // Names of blobs sled has since removed need not be remembered.
            if synced.len() > 4 * new.max(1024) {
                let present: HashSet<OsString> = std::fs::read_dir(&blobs)?.filter_map(|e| e.ok().map(|e| e.file_name())).collect();
                synced.retain(|n| present.contains(n));
            }
            if new > 0 {
                std::fs::File::open(&blobs)?.sync_all()?;
            }
        }
        if !self.dir_synced.load(std::sync::atomic::Ordering::Acquire) {
            std::fs::File::open(&self.dir)?.sync_all()?;
            self.dir_synced.store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_blob_files_are_synced_once_and_removed_ones_forgotten() {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = StoreFiles::new(dir.path());
        assert_eq!(files.sync_new().expect("no blobs dir yet"), 0);
        std::fs::create_dir(dir.path().join("blobs")).expect("blobs");
        std::fs::write(dir.path().join("blobs/1"), b"one").expect("write");
        std::fs::write(dir.path().join("blobs/2"), b"two").expect("write");
        assert_eq!(files.sync_new().expect("sync"), 2);
        assert_eq!(files.sync_new().expect("sync"), 0, "each blob once");
        std::fs::remove_file(dir.path().join("blobs/1")).expect("remove");
        std::fs::write(dir.path().join("blobs/3"), b"three").expect("write");
        assert_eq!(files.sync_new().expect("sync"), 1);
    }
}
