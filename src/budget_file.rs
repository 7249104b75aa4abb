//! The request budget in a file that every process of the user shares (Unix).
//!
//! A fixed-size table: a 64-byte header, then `BUCKETS` buckets of `WAYS` slots of 32 bytes
//! (`FILE_BYTES` in all, about 4 MiB). A task's slot lives in the bucket its (key digest, task
//! id) hashes to; a new task takes an empty slot, else one idle for `budget::IDLE_EXPIRY`, else
//! the bucket's least recently used. So a task is forgotten only when 32 others of its bucket
//! were used after it: with the table far from full, practically never.
//!
//! Every take runs under the process's mutex (threads) and `flock` on the file (processes): read
//! the bucket (`pread`, 1 KiB), write back the one slot (`pwrite`, 32 bytes). The kernel drops a
//! `flock` with its process, so a process killed at any point blocks no one; a single `pwrite`
//! lands whole or not at all, so the most a kill can lose is the request being counted.
//!
//! Why not `mmap`: a file cut short behind the library's back (by any program that ignores the
//! lock) would make every access past its end a SIGBUS, a crash of the host program. `pread`
//! just reads short, and the file is rebuilt.
//!
//! Trust: the file holds no key (only a digest of it, see `budget::KeyDigest`). It is opened
//! without following symlinks, in a directory of mode 0700, as a regular file of mode 0600 owned
//! by the process's user. What the library owns it repairs (mode, size, header); anything else
//! (another user's file or directory, a symlink) is not used: the process counts alone.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::budget::{KeyDigest, IDLE_EXPIRY, REQUESTS_PER_TASK};

/// Buckets of the table.
pub const BUCKETS: usize = 4096;
/// Slots per bucket.
pub const WAYS: usize = 32;
const SLOT_BYTES: usize = 32;
const BUCKET_BYTES: usize = WAYS * SLOT_BYTES;
const HEADER_BYTES: usize = 64;
/// The file's size: header and table.
pub const FILE_BYTES: u64 = (HEADER_BYTES + BUCKETS * BUCKET_BYTES) as u64;
/// Tasks the table can hold.
pub const CAPACITY: usize = BUCKETS * WAYS;

const MAGIC: &[u8; 8] = b"CMBUDGT\x01";
/// The header: magic, then the geometry, so that a file of another layout is never misread.
fn header() -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&(BUCKETS as u32).to_le_bytes());
    header[12..16].copy_from_slice(&(WAYS as u32).to_le_bytes());
    header[16..20].copy_from_slice(&(SLOT_BYTES as u32).to_le_bytes());
    header
}

/// The file's name in the default directory.
const FILE_NAME: &str = "budget-v1";

/// Where the shared file is by default: `$XDG_RUNTIME_DIR/capmonster/` when set (a per-user
/// tmpfs on Linux), else `capmonster-<uid>/` in the temporary directory.
pub fn default_path() -> PathBuf {
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(runtime) if runtime.is_absolute() => runtime.join("capmonster"),
        _ => {
            // SAFETY: geteuid has no preconditions and cannot fail.
            let uid = unsafe { libc::geteuid() };
            std::env::temp_dir().join(format!("capmonster-{uid}"))
        }
    };
    dir.join(FILE_NAME)
}

/// An open, checked budget file.
pub(crate) struct BudgetFile {
    file: File,
    path: PathBuf,
    /// The process that opened it: a forked child shares the open file, and with it the lock,
    /// so it must open its own.
    pid: u32,
}

/// One slot: (digest, task id, requests sent, last use in Unix seconds); digest 0 is empty.
#[derive(Clone, Copy, Default)]
struct Slot {
    digest: u64,
    task_id: i64,
    sent: u32,
    last_used: u64,
}

impl Slot {
    fn read(bytes: &[u8]) -> Slot {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or([0; 8]));
        Slot {
            digest: word(0),
            task_id: word(8) as i64,
            // A count over the limit is damage: read as the limit, so nothing more is sent.
            sent: (word(16) as u32).min(REQUESTS_PER_TASK),
            last_used: word(24),
        }
    }

    fn bytes(&self) -> [u8; SLOT_BYTES] {
        let mut bytes = [0u8; SLOT_BYTES];
        bytes[0..8].copy_from_slice(&self.digest.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.task_id.to_le_bytes());
        bytes[16..24].copy_from_slice(&u64::from(self.sent).to_le_bytes());
        bytes[24..32].copy_from_slice(&self.last_used.to_le_bytes());
        bytes
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// The bucket of a task: a mix of both halves of the key, so consecutive task ids spread.
fn bucket_of(digest: KeyDigest, task_id: i64) -> usize {
    let mut x = digest.value() ^ (task_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % BUCKETS as u64) as usize
}

/// Holds `flock(LOCK_EX)` on the file until dropped.
struct Locked<'a>(&'a File);

impl<'a> Locked<'a> {
    fn new(file: &'a File) -> io::Result<Locked<'a>> {
        // Bounded: retried only when a signal interrupts the wait.
        loop {
            // SAFETY: a valid descriptor; flock has no memory effects.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Locked(file));
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: as above. Closing the descriptor or ending the process would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl BudgetFile {
    /// Opens (creating or repairing what this user owns) the file at `path`. `Ok` carries a
    /// note when something had to be repaired; `Err` says why the file cannot be trusted.
    pub fn open(path: &Path, default_location: bool) -> Result<(BudgetFile, Option<String>), String> {
        let shown = path.display();
        if default_location {
            if let Some(dir) = path.parent() {
                private_dir(dir).map_err(|why| format!("the budget directory {}: {why}", dir.display()))?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|error| match error.raw_os_error() {
                Some(libc::ELOOP) => format!("{shown} is a symbolic link"),
                _ => format!("{shown}: {error}"),
            })?;
        let meta = file.metadata().map_err(|error| format!("{shown}: {error}"))?;
        // SAFETY: no preconditions.
        let uid = unsafe { libc::geteuid() };
        if !meta.file_type().is_file() {
            return Err(format!("{shown} is not a regular file"));
        }
        if meta.uid() != uid {
            return Err(format!("{shown} belongs to another user (uid {})", meta.uid()));
        }
        let mut notes = Vec::new();
        if meta.mode() & 0o777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|error| {
                format!("{shown}: its mode {:o} could not be set to 600: {error}", meta.mode() & 0o777)
            })?;
            notes.push(format!("its mode was {:o}, now 600", meta.mode() & 0o777));
        }
        let budget = BudgetFile { file, path: path.to_owned(), pid: std::process::id() };
        if let Some(repair) = budget.check_or_rebuild().map_err(|error| format!("{shown}: {error}"))? {
            notes.push(repair);
        }
        let note = (!notes.is_empty()).then(|| format!("the shared budget file {shown}: {}", notes.join("; ")));
        Ok((budget, note))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process opened the file (false in a forked child: reopen).
    pub fn opened_here(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Under the lock: a new file is laid out, a damaged one (wrong size or header) rebuilt
    /// empty. Returns what was repaired, if anything.
    fn check_or_rebuild(&self) -> io::Result<Option<String>> {
        let _lock = Locked::new(&self.file)?;
        self.check_or_rebuild_locked()
    }

    fn check_or_rebuild_locked(&self) -> io::Result<Option<String>> {
        let size = self.file.metadata()?.len();
        let mut found = [0u8; HEADER_BYTES];
        let whole = size == FILE_BYTES && self.file.read_exact_at(&mut found, 0).is_ok();
        if whole && found == header() {
            return Ok(None);
        }
        // Emptied, then extended with zeros: every slot empty.
        self.file.set_len(0)?;
        self.file.set_len(FILE_BYTES)?;
        self.file.write_all_at(&header(), 0)?;
        Ok(match size {
            0 => None,
            FILE_BYTES => Some("its header was damaged; it was rebuilt empty".to_owned()),
            other => Some(format!("it was {other} bytes, not {FILE_BYTES}; it was rebuilt empty")),
        })
    }

    /// Takes one request for the task: `Ok(Ok(sent))`, `Ok(Err(sent))` when all are spent, or
    /// an I/O error (the caller falls back). A file cut short since it was checked is rebuilt.
    pub fn take(&self, digest: KeyDigest, task_id: i64) -> io::Result<Result<u32, u32>> {
        let _lock = Locked::new(&self.file)?;
        let bucket = bucket_of(digest, task_id);
        let offset = (HEADER_BYTES + bucket * BUCKET_BYTES) as u64;
        let mut bytes = [0u8; BUCKET_BYTES];
        if self.file.read_exact_at(&mut bytes, offset).is_err() {
            self.check_or_rebuild_locked()?;
            bytes = [0u8; BUCKET_BYTES];
        }
        let now = unix_now();
        let slots = bytes.chunks_exact(SLOT_BYTES).map(Slot::read);
        let (way, mut slot) = match slots.clone().position(|s| s.digest == digest.value() && s.task_id == task_id) {
            Some(way) => (way, Slot::read(&bytes[way * SLOT_BYTES..])),
            None => (pick_free_way(slots, now), Slot { digest: digest.value(), task_id, sent: 0, last_used: now }),
        };
        if slot.sent >= REQUESTS_PER_TASK {
            return Ok(Err(slot.sent));
        }
        slot.sent += 1;
        slot.last_used = now;
        self.file.write_all_at(&slot.bytes(), offset + (way * SLOT_BYTES) as u64)?;
        Ok(Ok(slot.sent))
    }

    /// Requests counted for the task (0 when unknown or forgotten).
    pub fn sent(&self, digest: KeyDigest, task_id: i64) -> io::Result<u32> {
        let _lock = Locked::new(&self.file)?;
        let offset = (HEADER_BYTES + bucket_of(digest, task_id) * BUCKET_BYTES) as u64;
        let mut bytes = [0u8; BUCKET_BYTES];
        self.file.read_exact_at(&mut bytes, offset)?;
        Ok(bytes
            .chunks_exact(SLOT_BYTES)
            .map(Slot::read)
            .find(|s| s.digest == digest.value() && s.task_id == task_id)
            .map_or(0, |s| s.sent))
    }
}

/// The slot a new task takes: an empty one, else one idle for [`IDLE_EXPIRY`], else the least
/// recently used. A clock that went back makes a slot look recent, never expired.
fn pick_free_way(slots: impl Iterator<Item = Slot> + Clone, now: u64) -> usize {
    let idle = |s: &Slot| now.saturating_sub(s.last_used) >= IDLE_EXPIRY.as_secs();
    if let Some(way) = slots.clone().position(|s| s.digest == 0 || idle(&s)) {
        return way;
    }
    slots.enumerate().min_by_key(|(_, s)| s.last_used).map_or(0, |(way, _)| way)
}

/// Makes `dir` (and only its last component) a private directory of this user: created with
/// mode 0700 if missing; an existing one must be ours and not a symlink, and is set to 0700.
fn private_dir(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(error) => return Err(error.to_string()),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(|error| error.to_string())?;
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link".to_owned());
    }
    if !meta.is_dir() {
        return Err("it is not a directory".to_owned());
    }
    // SAFETY: no preconditions.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(format!("it belongs to another user (uid {})", meta.uid()));
    }
    if meta.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|error| error.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("capmonster-budget-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("budget")
    }

    #[test]
    fn counts_to_the_limit_and_persists_across_opens() {
        let path = scratch("persist");
        let (file, note) = BudgetFile::open(&path, false).unwrap();
        assert!(note.is_none(), "{note:?}");
        let digest = KeyDigest::of("key", "http://127.0.0.1:1");
        for n in 1..=REQUESTS_PER_TASK {
            assert_eq!(file.take(digest, 7).unwrap(), Ok(n));
        }
        assert_eq!(file.take(digest, 7).unwrap(), Err(REQUESTS_PER_TASK));
        let (again, _) = BudgetFile::open(&path, false).unwrap();
        assert_eq!(again.sent(digest, 7).unwrap(), REQUESTS_PER_TASK);
        assert_eq!(again.take(digest, 8).unwrap(), Ok(1));
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.len(), meta.mode() & 0o777), (FILE_BYTES, 0o600));
        let text = std::fs::read(&path).unwrap();
        assert!(!text.windows(3).any(|w| w == b"key"), "no key in the file");
    }

    #[test]
    fn a_full_bucket_gives_up_its_least_recently_used_slot() {
        let now = unix_now();
        let slot = |last_used| Slot { digest: 1, task_id: 1, sent: 1, last_used };
        let slots: Vec<Slot> = (0..WAYS as u64).map(|n| slot(now - 10 - n)).collect();
        assert_eq!(pick_free_way(slots.iter().copied(), now), WAYS - 1);
        let mut with_idle = slots.clone();
        with_idle[3].last_used = now - IDLE_EXPIRY.as_secs() - 1;
        assert_eq!(pick_free_way(with_idle.iter().copied(), now), 3);
        let mut with_empty = slots;
        with_empty[5] = Slot::default();
        assert_eq!(pick_free_way(with_empty.iter().copied(), now), 5);
    }

    #[test]
    fn damaged_files_are_rebuilt_and_counts_over_the_limit_read_as_spent() {
        let path = scratch("damaged");
        std::fs::write(&path, b"not a budget file").unwrap();
        let (file, note) = BudgetFile::open(&path, false).unwrap();
        assert!(note.unwrap().contains("rebuilt"));
        let digest = KeyDigest::of("key", "x");
        file.take(digest, 9).unwrap().unwrap();
        // Damage one slot's count: it reads as spent, never as fresh.
        let offset = (HEADER_BYTES + bucket_of(digest, 9) * BUCKET_BYTES) as u64;
        let mut bucket = [0u8; BUCKET_BYTES];
        file.file.read_exact_at(&mut bucket, offset).unwrap();
        let way = bucket.chunks_exact(SLOT_BYTES).position(|s| Slot::read(s).task_id == 9).unwrap();
        file.file.write_all_at(&u64::MAX.to_le_bytes(), offset + (way * SLOT_BYTES + 16) as u64).unwrap();
        assert_eq!(file.take(digest, 9).unwrap(), Err(REQUESTS_PER_TASK));
        // Cut short behind its back: rebuilt at the next take, no crash.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(100).unwrap();
        assert_eq!(file.take(digest, 9).unwrap(), Ok(1));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_BYTES);
    }

    #[test]
    fn symlinks_and_foreign_files_are_not_used() {
        let path = scratch("symlink");
        let target = path.with_file_name("target");
        std::fs::write(&target, b"").unwrap();
        std::os::unix::fs::symlink(&target, &path).unwrap();
        assert!(BudgetFile::open(&path, false).err().unwrap().contains("symbolic link"));
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let foreign = scratch("foreign");
            std::fs::write(&foreign, b"").unwrap();
            std::os::unix::fs::chown(&foreign, Some(65534), Some(65534)).unwrap();
            assert!(BudgetFile::open(&foreign, false).err().unwrap().contains("another user"));
        }
    }
}
