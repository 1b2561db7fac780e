//! A simulated disk for tests: every file keeps its synced bytes apart from the bytes only written,
//! and every directory its synced names apart from names only created or removed. A crash keeps
//! what was synced, plus a random prefix of what was not (its end optionally torn into garbage), and
//! forgets files whose creation was never synced. Any call can be made to fail.

use std::{
    collections::{BTreeMap, BTreeSet},
    io,
    path::{Path, PathBuf},
    sync::Arc,
};

use parking_lot::{Condvar, Mutex};

use super::fs::{FileSystem, LogFile};

#[derive(Debug, Clone, Default)]
pub struct SimFileSystem {
    disk: Arc<Mutex<Disk>>,
    /// Wakes fsyncs held by [`SimFileSystem::hold_syncs`].
    released: Arc<Condvar>,
}

#[derive(Debug, Default)]
struct Disk {
    /// What reads see now.
    files: BTreeMap<PathBuf, SimFile>,
    /// Files removed since their directory was last synced: a crash brings them back.
    removed: BTreeMap<PathBuf, SimFile>,
    /// Names a crash keeps.
    durable_names: BTreeSet<PathBuf>,
    fail_appends: u32,
    fail_syncs: u32,
    fail_dir_syncs: u32,
    /// While set, file fsyncs wait: a test can queue work behind one.
    hold_syncs: bool,
    /// File fsyncs waiting now.
    held: usize,
}

#[derive(Debug, Default, Clone)]
struct SimFile {
    data: Vec<u8>,
    /// `data[..synced]` survives a crash.
    synced: usize,
}

/// A small deterministic generator, so a crash is reproduced by its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        if n == 0 {
            0
        } else {
            (value % n as u64) as usize
        }
    }
}

impl SimFileSystem {
    /// The next `count` appends fail (writing nothing).
    pub fn fail_appends(&self, count: u32) {
        self.disk.lock().fail_appends = count;
    }

    /// The next `count` fsyncs fail (syncing nothing).
    pub fn fail_syncs(&self, count: u32) {
        self.disk.lock().fail_syncs = count;
    }

    /// The next `count` directory fsyncs fail.
    pub fn fail_dir_syncs(&self, count: u32) {
        self.disk.lock().fail_dir_syncs = count;
    }

    /// File fsyncs wait from now until [`SimFileSystem::release_syncs`].
    pub fn hold_syncs(&self) {
        self.disk.lock().hold_syncs = true;
    }

    pub fn release_syncs(&self) {
        self.disk.lock().hold_syncs = false;
        self.released.notify_all();
    }

    /// File fsyncs waiting behind [`SimFileSystem::hold_syncs`].
    pub fn held_syncs(&self) -> usize {
        self.disk.lock().held
    }

    /// Flips one bit of byte `offset` of the file at `path` (synced bytes included).
    pub fn flip_bit(&self, path: &Path, offset: usize, bit: u8) {
        let mut disk = self.disk.lock();
        let file = disk.files.get_mut(path).expect("a file to damage");
        file.data[offset] ^= 1 << bit;
    }

    pub fn file_len(&self, path: &Path) -> usize {
        self.disk.lock().files.get(path).map_or(0, |f| f.data.len())
    }

    fn handle(&self, path: &Path) -> SimHandle {
        SimHandle {
            disk: Arc::clone(&self.disk),
            released: Arc::clone(&self.released),
            path: path.to_owned(),
        }
    }

    /// Power loss: what a reboot finds. `seed` picks how much unsynced data survives and whether
    /// its end is torn into garbage.
    pub fn crash(&self, seed: u64) {
        let mut rng = Rng(seed | 1);
        let mut disk = self.disk.lock();
        let removed = std::mem::take(&mut disk.removed);
        let mut files: BTreeMap<PathBuf, SimFile> = std::mem::take(&mut disk.files);
        files.extend(removed);
        let mut survivors = BTreeMap::new();
        for (path, mut file) in files {
            if !disk.durable_names.contains(&path) {
                continue;
            }
            let pending = file.data.len() - file.synced;
            let kept = file.synced + rng.below(pending + 1);
            file.data.truncate(kept);
            let unsynced_kept = kept - file.synced;
            if unsynced_kept > 0 && rng.below(2) == 0 {
                let torn = 1 + rng.below(unsynced_kept);
                for byte in &mut file.data[kept - torn..] {
                    *byte = rng.below(256) as u8;
                }
            }
            file.synced = file.data.len();
            survivors.insert(path, file);
        }
        disk.files = survivors;
        disk.fail_appends = 0;
        disk.fail_syncs = 0;
        disk.fail_dir_syncs = 0;
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, path.display().to_string())
}

impl FileSystem for SimFileSystem {
    type File = SimHandle;

    fn create_new(&self, path: &Path) -> io::Result<SimHandle> {
        let mut disk = self.disk.lock();
        if disk.files.contains_key(path) {
            return Err(io::Error::new(io::ErrorKind::AlreadyExists, "exists"));
        }
        disk.removed.remove(path);
        disk.files.insert(path.to_owned(), SimFile::default());
        Ok(self.handle(path))
    }

    fn open_append(&self, path: &Path) -> io::Result<SimHandle> {
        if !self.disk.lock().files.contains_key(path) {
            return Err(not_found(path));
        }
        Ok(self.handle(path))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let disk = self.disk.lock();
        disk.files
            .get(path)
            .map(|file| file.data.clone())
            .ok_or_else(|| not_found(path))
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let disk = self.disk.lock();
        let file = disk
            .files
            .get(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        Ok(file.data.len() as u64)
    }

    fn truncate(&self, path: &Path, len: u64) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let file = disk.files.get_mut(path).ok_or_else(|| not_found(path))?;
        let len = usize::try_from(len).map_err(io::Error::other)?;
        file.data.truncate(len);
        // The cut is synced: what is left is durable as it is.
        file.synced = file.data.len();
        Ok(())
    }

    fn sync_file(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let file = disk.files.get_mut(path).ok_or_else(|| not_found(path))?;
        file.synced = file.data.len();
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        let file = disk.files.remove(path).ok_or_else(|| not_found(path))?;
        if disk.durable_names.contains(path) {
            disk.removed.insert(path.to_owned(), file);
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<PathBuf>> {
        let disk = self.disk.lock();
        Ok(disk
            .files
            .keys()
            .filter(|path| path.parent() == Some(dir))
            .cloned()
            .collect())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut disk = self.disk.lock();
        if disk.fail_dir_syncs > 0 {
            disk.fail_dir_syncs -= 1;
            return Err(io::Error::other("injected directory fsync failure"));
        }
        let in_dir = |path: &PathBuf| path.parent() == Some(dir);
        disk.removed.retain(|path, _| !in_dir(path));
        let live: Vec<PathBuf> = disk.files.keys().filter(|p| in_dir(p)).cloned().collect();
        disk.durable_names.retain(|path| !in_dir(path));
        disk.durable_names.extend(live);
        Ok(())
    }
}

/// An open simulated file.
#[derive(Debug)]
pub struct SimHandle {
    disk: Arc<Mutex<Disk>>,
    released: Arc<Condvar>,
    path: PathBuf,
}

impl LogFile for SimHandle {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut disk = self.disk.lock();
        if disk.fail_appends > 0 {
            disk.fail_appends -= 1;
            return Err(io::Error::other("injected write failure"));
        }
        let file = disk
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        file.data.extend_from_slice(bytes);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        let mut disk = self.disk.lock();
        disk.held += 1;
        while disk.hold_syncs {
            self.released.wait(&mut disk);
        }
        disk.held -= 1;
        if disk.fail_syncs > 0 {
            disk.fail_syncs -= 1;
            return Err(io::Error::other("injected fsync failure"));
        }
        let file = disk
            .files
            .get_mut(&self.path)
            .ok_or_else(|| not_found(&self.path))?;
        file.synced = file.data.len();
        Ok(())
    }
}
