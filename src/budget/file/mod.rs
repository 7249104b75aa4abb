//! The request budget in a file that every process of the user shares (Unix and Windows).
//!
//! A fixed-size table, mapped into every process that uses it: a 64-byte header, then
//! `BUCKETS` buckets of `WAYS` slots of 32 bytes (`FILE_BYTES` in all, about 4 MiB). A task's
//! slot lives in the bucket its (key digest, task id) hashes to; a new task takes an empty slot,
//! else one idle for `budget::IDLE_EXPIRY`, else the bucket's least recently used. So a task is
//! forgotten only when 32 others of its bucket were used after it: with the table far from
//! full, practically never.
//!
//! Counting a task the table already holds (every poll but a task's first) makes no system
//! call on Windows and one `fstat` on Unix (see below): the slot's state (requests sent, a
//! generation, last use) is one 64-bit word, and one compare-and-swap both checks that the slot
//! still holds the task it was found with and adds the request. Giving a slot to a new task
//! runs under a lock, `flock` on the file (`LockFileEx` on one byte far past the table on
//! Windows, whose locks are mandatory): the slot is first marked busy under a new generation,
//! then filled, then published. The kernel drops these locks with their process, so a process
//! killed at any point blocks no one; a busy slot seen under the lock was left by a killed
//! process and is free again; and a kill loses at most the request being counted.
//!
//! Mapping a file has one hazard: a file cut short behind the library's back makes access past
//! its end a SIGBUS (a crash of the host program). The library never shrinks the file below its
//! size and reserves its blocks (`posix_fallocate`), so a full disk cannot cause it either. On
//! Unix each count first checks the file's size (`fstat`, well under a microsecond) and restores
//! a file cut short before touching it; only a program of the same user that cuts the file
//! within that microsecond could still crash a host, and `CAPMONSTER_BUDGET=process` avoids the
//! file altogether. Windows refuses to cut short a file that is mapped.
//!
//! Trust: the file holds no key (only a digest of it, see `budget::KeyDigest`). It is opened
//! without following symlinks, in a directory of mode 0700, as a regular file of mode 0600 owned
//! by the process's user. What the library owns it repairs (mode, size, header); anything else
//! (another user's file or directory, a symlink) is not used: the process counts alone. On
//! Windows the default directory is in the user's local application data, which only the user
//! (and administrators) may open; the file inherits that, and symlinks (reparse points) are
//! refused as on Unix. Modes and owners are not checked there. The words are in the machine's
//! byte order: the file never leaves the machine.

use std::fs::File;
use std::io;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{fence, AtomicU64, Ordering};
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

const MAGIC: &[u8; 8] = b"CMBUDGT\x02";
/// The header: magic, then the geometry, so that a file of another layout is never misread.
fn header() -> [u8; HEADER_BYTES] {
    let mut header = [0u8; HEADER_BYTES];
    header[..8].copy_from_slice(MAGIC);
    header[8..12].copy_from_slice(&(BUCKETS as u32).to_le_bytes());
    header[12..16].copy_from_slice(&(WAYS as u32).to_le_bytes());
    header[16..20].copy_from_slice(&(SLOT_BYTES as u32).to_le_bytes());
    header
}

/// The file's name in the default directory (v2: the lock-free layout; v1 counted under the
/// lock only, so the two must never share a file).
const FILE_NAME: &str = "budget-v2";

/// Where the shared file is by default: `$XDG_RUNTIME_DIR/capmonster/` when set (a per-user
/// tmpfs on Linux), else `capmonster-<uid>/` in the temporary directory.
#[cfg(unix)]
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

/// Where the shared file is by default on Windows: `%LOCALAPPDATA%\capmonster\` (the user's
/// local application data, which Windows sets for every session since Vista), else
/// `capmonster\` in the user's temporary directory (also the user's own).
#[cfg(windows)]
pub fn default_path() -> PathBuf {
    let base = match std::env::var_os("LOCALAPPDATA").map(PathBuf::from) {
        Some(local) if local.is_absolute() => local,
        _ => std::env::temp_dir(),
    };
    base.join("capmonster").join(FILE_NAME)
}

/// The file mapped into memory: `FILE_BYTES` at a page-aligned address, shared with every
/// process that maps the file.
struct Mapping {
    base: *mut u8,
    #[cfg(windows)]
    handle: windows_sys::Win32::Foundation::HANDLE,
}

impl Mapping {
    #[cfg(unix)]
    fn new(file: &File) -> io::Result<Mapping> {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid descriptor opened for reading and writing; the kernel picks the
        // address. The file is FILE_BYTES long (the caller made it so under the lock).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                FILE_BYTES as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { base: base.cast() })
    }

    #[cfg(windows)]
    fn new(file: &File) -> io::Result<Mapping> {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Win32::Foundation::CloseHandle;
        use windows_sys::Win32::System::Memory::{
            CreateFileMappingW, MapViewOfFile, FILE_MAP_READ, FILE_MAP_WRITE, PAGE_READWRITE,
        };
        // SAFETY: a valid file handle opened for reading and writing; size 0 maps the whole
        // file (FILE_BYTES, made so by the caller under the lock); no name, default security.
        let handle = unsafe {
            CreateFileMappingW(file.as_raw_handle(), std::ptr::null(), PAGE_READWRITE, 0, 0, std::ptr::null())
        };
        if handle.is_null() {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a valid mapping handle; the view covers the file.
        let view = unsafe { MapViewOfFile(handle, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, FILE_BYTES as usize) };
        if view.Value.is_null() {
            let error = io::Error::last_os_error();
            // SAFETY: the handle made above, closed once.
            unsafe { CloseHandle(handle) };
            return Err(error);
        }
        Ok(Mapping { base: view.Value.cast(), handle })
    }

    /// The 64-bit words of the table, from the header's end: slot `i` is words `4i..4i+4`.
    fn words(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is FILE_BYTES long and lives as long as `self`; HEADER_BYTES is a
        // multiple of 8 and the base is page-aligned, so every word is aligned. Other processes
        // change these words concurrently, so they are only ever accessed atomically.
        unsafe {
            std::slice::from_raw_parts(
                self.base.add(HEADER_BYTES).cast::<AtomicU64>(),
                (FILE_BYTES as usize - HEADER_BYTES) / 8,
            )
        }
    }

    fn header(&self) -> [u8; HEADER_BYTES] {
        let mut found = [0u8; HEADER_BYTES];
        // SAFETY: the header is in the mapping; it is written only under the lock, which the
        // callers hold.
        unsafe { std::ptr::copy_nonoverlapping(self.base, found.as_mut_ptr(), HEADER_BYTES) };
        found
    }

    /// Under the lock: an empty table behind a fresh header. Atomic stores, because processes
    /// that found the file whole a moment ago may be counting in it.
    fn rebuild(&self) {
        for word in self.words() {
            word.store(0, Ordering::Relaxed);
        }
        // SAFETY: as in `header`.
        unsafe { std::ptr::copy_nonoverlapping(header().as_ptr(), self.base, HEADER_BYTES) };
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no reference into it outlives
        // `self` (`words` borrows it).
        #[cfg(unix)]
        unsafe {
            libc::munmap(self.base.cast(), FILE_BYTES as usize);
        }
        #[cfg(windows)]
        unsafe {
            use windows_sys::Win32::System::Memory::{UnmapViewOfFile, MEMORY_MAPPED_VIEW_ADDRESS};
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: self.base.cast() });
            windows_sys::Win32::Foundation::CloseHandle(self.handle);
        }
    }
}

// SAFETY: the mapping is plain shared memory, accessed only through atomics (and the header
// under the lock); the Windows handle may be used and closed from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

/// An open, checked, mapped budget file.
pub(crate) struct BudgetFile {
    map: Mapping,
    file: File,
    path: PathBuf,
    /// `forks()` when it was opened: a forked child shares the open file, and with it the
    /// lock, so it must open its own.
    #[cfg(unix)]
    forks: u64,
}

/// Forks as this process sees them: `pthread_atfork`'s child handler adds one in every child.
/// Cheaper than comparing `getpid` on every count, a system call since glibc stopped caching it.
#[cfg(unix)]
static FORKS: AtomicU64 = AtomicU64::new(0);

#[cfg(unix)]
extern "C" fn count_fork_in_child() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

#[cfg(unix)]
fn forks() -> u64 {
    static HANDLER: std::sync::Once = std::sync::Once::new();
    HANDLER.call_once(|| {
        // SAFETY: the handler only adds to an atomic, which a child of a threaded parent may do.
        // glibc drops the registration if this library is unloaded.
        unsafe { libc::pthread_atfork(None, None, Some(count_fork_in_child)) };
    });
    FORKS.load(Ordering::Relaxed)
}

/// A slot's state in one word, so that one compare-and-swap both proves that the slot still
/// holds the task it was found with and counts: bits 0-31 the last use (Unix seconds), 32-55
/// the generation (bumped whenever the slot is given to another task), 56-63 the requests sent
/// (0: empty; `BUSY`: being given to a task).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct State(u64);

/// `State::sent` of a slot being filled; seen under the lock, its filler was killed.
const BUSY: u32 = 0xFF;
const GENERATION_MASK: u64 = 0xFF_FFFF;

impl State {
    fn new(sent: u32, generation: u64, last_used: u64) -> State {
        State(u64::from(sent) << 56 | (generation & GENERATION_MASK) << 32 | (last_used & 0xFFFF_FFFF))
    }
    fn sent(self) -> u32 {
        (self.0 >> 56) as u32
    }
    fn generation(self) -> u64 {
        (self.0 >> 32) & GENERATION_MASK
    }
    fn last_used(self) -> u64 {
        self.0 & 0xFFFF_FFFF
    }
    /// Holds a task (neither empty nor being filled).
    fn live(self) -> bool {
        self.sent() != 0 && self.sent() != BUSY
    }
}

/// What a look at one slot found.
enum Held {
    /// It holds the task, in this state.
    Yes(State),
    No,
    /// It changed hands while it was read.
    Changed,
}

/// One slot's words: digest of the key (0: none), task id, state, and one word spare.
struct SlotCell<'a>(&'a [AtomicU64]);

impl SlotCell<'_> {
    fn state(&self) -> State {
        State(self.0[2].load(Ordering::Acquire))
    }

    /// Whether the slot holds the task, read as a seqlock reader reads: the state, then the
    /// task, then the state again, of the same generation.
    fn holds(&self, digest: KeyDigest, task_id: i64) -> Held {
        let before = self.state();
        if !before.live() {
            return Held::No;
        }
        let same_task =
            self.0[0].load(Ordering::Relaxed) == digest.value() && self.0[1].load(Ordering::Relaxed) == task_id as u64;
        fence(Ordering::Acquire);
        let after = State(self.0[2].load(Ordering::Relaxed));
        if after.generation() != before.generation() || !after.live() {
            Held::Changed
        } else if same_task {
            Held::Yes(after)
        } else {
            Held::No
        }
    }

    /// Counts one request on a slot found holding the task in state `found`: `Some(Ok(sent))`,
    /// `Some(Err(sent))` when all are spent, `None` when the slot was given to another task
    /// meanwhile. A damaged count over the limit reads as spent.
    fn count(&self, mut found: State, now: u64) -> Option<Result<u32, u32>> {
        // Bounded: each failed swap is another process's count of this task (at most
        // REQUESTS_PER_TASK succeed before all are refused without a write) or the end of the
        // slot's generation, which returns.
        loop {
            if found.sent() >= REQUESTS_PER_TASK {
                return Some(Err(found.sent().min(REQUESTS_PER_TASK)));
            }
            let counted = State::new(found.sent() + 1, found.generation(), now);
            match self.0[2].compare_exchange(found.0, counted.0, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Some(Ok(counted.sent())),
                Err(now_state) if State(now_state).generation() == found.generation() && State(now_state).live() => {
                    found = State(now_state)
                }
                Err(_) => return None,
            }
        }
    }

    /// Under the lock: gives the slot, last seen in state `seen`, to the task with its first
    /// request counted. False when another process counted on it meanwhile (pick again).
    fn claim(&self, seen: State, digest: KeyDigest, task_id: i64, now: u64) -> bool {
        let generation = seen.generation() + 1;
        let busy = State::new(BUSY, generation, now);
        if self.0[2].compare_exchange(seen.0, busy.0, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            return false;
        }
        // Readers that see the new task below also see the busy state (seqlock writer).
        fence(Ordering::Release);
        self.0[0].store(digest.value(), Ordering::Relaxed);
        self.0[1].store(task_id as u64, Ordering::Relaxed);
        self.0[2].store(State::new(1, generation, now).0, Ordering::Release);
        true
    }
}

/// Unix seconds, as a slot keeps them (32 bits: until 2106).
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs().min(u64::from(u32::MAX)))
}

/// The bucket of a task: a mix of both halves of the key, so consecutive task ids spread.
fn bucket_of(digest: KeyDigest, task_id: i64) -> usize {
    let mut x = digest.value() ^ (task_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x % BUCKETS as u64) as usize
}

/// What a look through a bucket found.
enum Scan {
    Counted(Result<u32, u32>),
    Missing,
    /// A slot changed hands while it was being counted on: look again.
    Changed,
}

/// Times the lock-free path looks through a bucket before it takes the lock (slots changing
/// hands under it every time means heavy eviction: the lock then orders it).
const LOCK_FREE_SCANS: usize = 4;
/// Looks under the lock (where no slot changes hands, only counts change): the bound of the
/// pick-and-claim loop is every slot of the bucket reaching the limit meanwhile.
const LOCKED_PICKS: usize = WAYS * (REQUESTS_PER_TASK as usize + 1);

/// Holds `flock(LOCK_EX)` on the file until dropped.
struct Locked<'a>(&'a File);

#[cfg(unix)]
impl<'a> Locked<'a> {
    fn new(file: &'a File) -> io::Result<Locked<'a>> {
        use std::os::fd::AsRawFd;
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

#[cfg(unix)]
impl Drop for Locked<'_> {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: as above. Closing the descriptor or ending the process would release it too.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// The byte the Windows lock covers: far past the table, so the lock (mandatory on Windows)
/// never refuses a read or write of the table itself. Locks beyond the end of a file are valid.
#[cfg(windows)]
const LOCK_OFFSET: u64 = 1 << 62;

#[cfg(windows)]
fn lock_overlapped() -> windows_sys::Win32::System::IO::OVERLAPPED {
    // SAFETY: OVERLAPPED is plain data; all zeros is its documented initial state.
    let mut overlapped: windows_sys::Win32::System::IO::OVERLAPPED = unsafe { std::mem::zeroed() };
    overlapped.Anonymous.Anonymous.Offset = LOCK_OFFSET as u32;
    overlapped.Anonymous.Anonymous.OffsetHigh = (LOCK_OFFSET >> 32) as u32;
    overlapped
}

#[cfg(windows)]
impl<'a> Locked<'a> {
    fn new(file: &'a File) -> io::Result<Locked<'a>> {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Win32::Storage::FileSystem::{LockFileEx, LOCKFILE_EXCLUSIVE_LOCK};
        let mut overlapped = lock_overlapped();
        // SAFETY: a valid handle of a synchronous file (the call waits for the lock); the
        // OVERLAPPED outlives the call.
        if unsafe { LockFileEx(file.as_raw_handle(), LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &mut overlapped) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Locked(file))
    }
}

#[cfg(windows)]
impl Drop for Locked<'_> {
    fn drop(&mut self) {
        use std::os::windows::io::AsRawHandle;
        let mut overlapped = lock_overlapped();
        // SAFETY: as above; unlocks the byte this value locked. Closing the handle or ending
        // the process would release it too.
        unsafe {
            windows_sys::Win32::Storage::FileSystem::UnlockFileEx(self.0.as_raw_handle(), 0, 1, 0, &mut overlapped)
        };
    }
}

/// Reserves the file's blocks, so that no write through the mapping can meet a full disk (a
/// SIGBUS). Windows allocates them when the file is extended.
fn reserve(file: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid descriptor; posix_fallocate returns the error rather than setting errno.
        let error = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, FILE_BYTES as libc::off_t) };
        if error != 0 {
            return Err(io::Error::from_raw_os_error(error));
        }
    }
    let _ = file;
    Ok(())
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
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create(true);
        #[cfg(unix)]
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
        // The link itself, not its target: it is then refused below as a symbolic link.
        #[cfg(windows)]
        std::os::windows::fs::OpenOptionsExt::custom_flags(
            &mut options,
            windows_sys::Win32::Storage::FileSystem::FILE_FLAG_OPEN_REPARSE_POINT,
        );
        let file = options.open(path).map_err(|error| {
            #[cfg(unix)]
            if error.raw_os_error() == Some(libc::ELOOP) {
                return format!("{shown} is a symbolic link");
            }
            format!("{shown}: {error}")
        })?;
        let meta = file.metadata().map_err(|error| format!("{shown}: {error}"))?;
        if meta.file_type().is_symlink() {
            return Err(format!("{shown} is a symbolic link"));
        }
        if !meta.file_type().is_file() {
            return Err(format!("{shown} is not a regular file"));
        }
        let mut notes = Vec::new();
        #[cfg(unix)]
        Self::check_owner_and_mode(&file, &meta, path, &mut notes)?;
        let (map, repair) = Self::map_checked(&file).map_err(|error| format!("{shown}: {error}"))?;
        notes.extend(repair);
        let note = (!notes.is_empty()).then(|| format!("the shared budget file {shown}: {}", notes.join("; ")));
        #[cfg(unix)]
        let budget = BudgetFile { map, file, path: path.to_owned(), forks: forks() };
        #[cfg(windows)]
        let budget = BudgetFile { map, file, path: path.to_owned() };
        Ok((budget, note))
    }

    /// Unix: the file must be the process user's; its mode is made 0600.
    #[cfg(unix)]
    fn check_owner_and_mode(
        file: &File,
        meta: &std::fs::Metadata,
        path: &Path,
        notes: &mut Vec<String>,
    ) -> Result<(), String> {
        let shown = path.display();
        // SAFETY: no preconditions.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid {
            return Err(format!("{shown} belongs to another user (uid {})", meta.uid()));
        }
        if meta.mode() & 0o777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|error| {
                format!("{shown}: its mode {:o} could not be set to 600: {error}", meta.mode() & 0o777)
            })?;
            notes.push(format!("its mode was {:o}, now 600", meta.mode() & 0o777));
        }
        Ok(())
    }

    /// Under the lock: the file made `FILE_BYTES` long with its blocks reserved, mapped, and
    /// rebuilt empty when it was new or damaged (wrong size or header). Returns the mapping and
    /// what was repaired. Never shrinks the file below its size: others may have it mapped.
    fn map_checked(file: &File) -> io::Result<(Mapping, Option<String>)> {
        let _lock = Locked::new(file)?;
        let size = file.metadata()?.len();
        if size != FILE_BYTES {
            file.set_len(FILE_BYTES)?;
        }
        reserve(file)?;
        let map = Mapping::new(file)?;
        if size == FILE_BYTES && map.header() == header() {
            return Ok((map, None));
        }
        map.rebuild();
        Ok((
            map,
            match size {
                0 => None,
                FILE_BYTES => Some("its header was damaged; it was rebuilt empty".to_owned()),
                other => Some(format!("it was {other} bytes, not {FILE_BYTES}; it was rebuilt empty")),
            },
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process opened the file (false in a forked child: reopen).
    pub fn opened_here(&self) -> bool {
        #[cfg(unix)]
        return self.forks == forks();
        #[cfg(windows)]
        true
    }

    /// Unix: a file cut short behind the library's back is restored (rebuilt empty) before the
    /// mapping is touched, which would otherwise be a SIGBUS. One `fstat` per count. Windows
    /// refuses to cut short a mapped file.
    fn restore_if_cut_short(&self) -> io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd;
            let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: a valid descriptor and room for its stat.
            if unsafe { libc::fstat(self.file.as_raw_fd(), stat.as_mut_ptr()) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fstat succeeded, so it filled `stat`.
            if (unsafe { stat.assume_init() }.st_size as u64) < FILE_BYTES {
                let _lock = Locked::new(&self.file)?;
                if self.file.metadata()?.len() < FILE_BYTES {
                    self.file.set_len(FILE_BYTES)?;
                    reserve(&self.file)?;
                    self.map.rebuild();
                }
            }
        }
        Ok(())
    }

    fn bucket(&self, digest: KeyDigest, task_id: i64) -> [SlotCell<'_>; WAYS] {
        let words = &self.map.words()[bucket_of(digest, task_id) * BUCKET_BYTES / 8..];
        std::array::from_fn(|way| SlotCell(&words[way * SLOT_BYTES / 8..(way + 1) * SLOT_BYTES / 8]))
    }

    /// Takes one request for the task: `Ok(Ok(sent))`, `Ok(Err(sent))` when all are spent, or
    /// an I/O error (the caller falls back). Counting a known task takes no lock; giving a slot
    /// to a new task does.
    pub fn take(&self, digest: KeyDigest, task_id: i64) -> io::Result<Result<u32, u32>> {
        self.restore_if_cut_short()?;
        let now = unix_now();
        let bucket = self.bucket(digest, task_id);
        for _ in 0..LOCK_FREE_SCANS {
            match scan(&bucket, digest, task_id, now) {
                Scan::Counted(taken) => return Ok(taken),
                Scan::Missing => break,
                Scan::Changed => {}
            }
        }
        let _lock = Locked::new(&self.file)?;
        for _ in 0..LOCKED_PICKS {
            match scan(&bucket, digest, task_id, now) {
                Scan::Counted(taken) => return Ok(taken),
                Scan::Changed => continue,
                Scan::Missing => {}
            }
            let states: [State; WAYS] = std::array::from_fn(|way| bucket[way].state());
            let way = pick_free_way(&states, now);
            if bucket[way].claim(states[way], digest, task_id, now) {
                return Ok(Ok(1));
            }
        }
        Err(io::Error::other("a bucket of the budget file kept changing under its lock (is it damaged?)"))
    }

    /// Requests counted for the task (0 when unknown or forgotten).
    pub fn sent(&self, digest: KeyDigest, task_id: i64) -> io::Result<u32> {
        self.restore_if_cut_short()?;
        let bucket = self.bucket(digest, task_id);
        // Bounded: a look that meets a slot changing hands is repeated under the lock, where
        // no slot changes hands.
        for attempt in 0..2 {
            let _lock = if attempt == 0 { None } else { Some(Locked::new(&self.file)?) };
            let found = bucket.iter().map(|cell| cell.holds(digest, task_id)).try_fold(0, |sent, held| match held {
                Held::Yes(state) => Some(state.sent().min(REQUESTS_PER_TASK)),
                Held::No => Some(sent),
                Held::Changed => None,
            });
            if let Some(sent) = found {
                return Ok(sent);
            }
        }
        Ok(0)
    }
}

/// Looks through a bucket for the task and counts on its slot.
fn scan(bucket: &[SlotCell<'_>; WAYS], digest: KeyDigest, task_id: i64, now: u64) -> Scan {
    let mut changed = false;
    for cell in bucket {
        match cell.holds(digest, task_id) {
            Held::Yes(found) => return cell.count(found, now).map_or(Scan::Changed, Scan::Counted),
            Held::No => {}
            Held::Changed => changed = true,
        }
    }
    if changed {
        Scan::Changed
    } else {
        Scan::Missing
    }
}

/// The slot a new task takes: an empty one (or one whose filler was killed: the caller holds
/// the lock), else one idle for [`IDLE_EXPIRY`], else the least recently used. A clock that
/// went back makes a slot look recent, never expired.
fn pick_free_way(states: &[State; WAYS], now: u64) -> usize {
    let idle = |s: &State| now.saturating_sub(s.last_used()) >= IDLE_EXPIRY.as_secs();
    if let Some(way) = states.iter().position(|s| !s.live() || idle(s)) {
        return way;
    }
    states.iter().enumerate().min_by_key(|(_, s)| s.last_used()).map_or(0, |(way, _)| way)
}

/// Makes `dir` (and only its last component) a private directory of this user: created with
/// mode 0700 if missing; an existing one must be ours and not a symlink, and is set to 0700.
/// On Windows it inherits the parent's access rules (the user's own local application data)
/// and must not be a symlink.
fn private_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    let created = std::fs::DirBuilder::new().mode(0o700).create(dir);
    #[cfg(windows)]
    let created = std::fs::DirBuilder::new().create(dir);
    match created {
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
    #[cfg(unix)]
    {
        // SAFETY: no preconditions.
        let uid = unsafe { libc::geteuid() };
        if meta.uid() != uid {
            return Err(format!("it belongs to another user (uid {})", meta.uid()));
        }
        if meta.mode() & 0o777 != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|error| error.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
        assert_eq!(meta.len(), FILE_BYTES);
        #[cfg(unix)]
        assert_eq!(meta.mode() & 0o777, 0o600);
        let text = std::fs::read(&path).unwrap();
        assert!(!text.windows(3).any(|w| w == b"key"), "no key in the file");
    }

    #[test]
    fn a_full_bucket_gives_up_its_least_recently_used_slot() {
        let now = unix_now();
        let states: [State; WAYS] = std::array::from_fn(|way| State::new(1, 0, now - 10 - way as u64));
        assert_eq!(pick_free_way(&states, now), WAYS - 1);
        let mut with_idle = states;
        with_idle[3] = State::new(1, 0, now - IDLE_EXPIRY.as_secs() - 1);
        assert_eq!(pick_free_way(&with_idle, now), 3);
        let mut with_empty = states;
        with_empty[5] = State(0);
        assert_eq!(pick_free_way(&with_empty, now), 5);
        let mut with_busy = states;
        with_busy[7] = State::new(BUSY, 4, now);
        assert_eq!(pick_free_way(&with_busy, now), 7, "under the lock, a busy slot's filler was killed");
    }

    /// The slot of a task, found through the file's own words.
    fn slot_of<'a>(file: &'a BudgetFile, digest: KeyDigest, task_id: i64) -> SlotCell<'a> {
        let way = file
            .bucket(digest, task_id)
            .iter()
            .position(|cell| matches!(cell.holds(digest, task_id), Held::Yes(_)))
            .unwrap();
        let words = &file.map.words()[(bucket_of(digest, task_id) * WAYS + way) * 4..];
        SlotCell(&words[..4])
    }

    #[test]
    fn damaged_files_are_rebuilt_and_counts_over_the_limit_read_as_spent() {
        let path = scratch("damaged");
        std::fs::write(&path, b"not a budget file").unwrap();
        let (file, note) = BudgetFile::open(&path, false).unwrap();
        assert!(note.unwrap().contains("rebuilt"));
        let digest = KeyDigest::of("key", "x");
        file.take(digest, 9).unwrap().unwrap();
        // Damage the slot's count: over the limit reads as spent, never as fresh.
        let slot = slot_of(&file, digest, 9);
        let state = slot.state();
        slot.0[2].store(State::new(200, state.generation(), state.last_used()).0, Ordering::Relaxed);
        assert_eq!(file.take(digest, 9).unwrap(), Err(REQUESTS_PER_TASK));
        assert_eq!(file.sent(digest, 9).unwrap(), REQUESTS_PER_TASK);
        // A damaged header: the next process to open the file rebuilds it.
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(b"garbage!").unwrap();
        let (again, note) = BudgetFile::open(&path, false).unwrap();
        assert!(note.unwrap().contains("header was damaged"));
        assert_eq!(again.sent(digest, 9).unwrap(), 0);
        // Cut short behind its back: restored before the mapping is touched (no SIGBUS).
        // Windows refuses to cut short a mapped file (ERROR_USER_MAPPED_FILE).
        let cut = std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(100);
        #[cfg(windows)]
        assert_eq!(cut.unwrap_err().raw_os_error(), Some(1224));
        #[cfg(not(windows))]
        {
            cut.unwrap();
            assert_eq!(file.take(digest, 9).unwrap(), Ok(1));
            assert_eq!(std::fs::metadata(&path).unwrap().len(), FILE_BYTES);
            assert_eq!(again.take(digest, 9).unwrap(), Ok(2), "both mappings see the restored file");
        }
    }

    #[test]
    fn a_slot_left_busy_by_a_killed_process_is_reused_and_changes_of_hands_are_seen() {
        let path = scratch("busy");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        let digest = KeyDigest::of("key", "busy");
        assert_eq!(file.take(digest, 1).unwrap(), Ok(1));
        // A process killed while giving the slot to another task leaves it busy, half filled.
        let slot = slot_of(&file, digest, 1);
        let found = slot.state();
        slot.0[2].store(State::new(BUSY, found.generation() + 1, found.last_used()).0, Ordering::Relaxed);
        assert!(matches!(slot.holds(digest, 1), Held::No));
        assert_eq!(file.sent(digest, 1).unwrap(), 0);
        assert_eq!(file.take(digest, 1).unwrap(), Ok(1), "the busy slot is claimed again under the lock");
        // A count on a slot that changed hands since it was found is refused: look again.
        let slot = slot_of(&file, digest, 1);
        let found = slot.state();
        assert!(slot.claim(found, KeyDigest::of("other", "busy"), 1, found.last_used()));
        assert_eq!(slot.count(found, found.last_used()), None);
        assert!(!slot.claim(found, digest, 1, found.last_used()), "a stale claim is refused too");
    }

    /// Threads with a mapping each stand in for processes: 32 tasks of one bucket (so slots are
    /// claimed while others count), each polled 240 times in all, count exactly 120 each.
    #[test]
    fn concurrent_mappings_count_every_task_exactly_to_the_limit() {
        let path = scratch("concurrent");
        let digest = KeyDigest::of("key", "concurrent");
        let bucket = bucket_of(digest, 0);
        let tasks: Vec<i64> = (0..).filter(|&id| bucket_of(digest, id) == bucket).take(WAYS).collect();
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (path, tasks, start) = (path.clone(), tasks.clone(), start.clone());
                std::thread::spawn(move || {
                    let (file, _) = BudgetFile::open(&path, false).unwrap();
                    let mut granted = vec![0u32; tasks.len()];
                    // All at once, in the same order: new tasks are claimed by several at a time.
                    start.wait();
                    for _ in 0..30 {
                        for (at, &task) in tasks.iter().enumerate() {
                            granted[at] += u32::from(file.take(digest, task).unwrap().is_ok());
                        }
                    }
                    granted
                })
            })
            .collect();
        let mut granted = vec![0u32; tasks.len()];
        for thread in threads {
            for (total, mine) in granted.iter_mut().zip(thread.join().unwrap()) {
                *total += mine;
            }
        }
        assert_eq!(granted, vec![REQUESTS_PER_TASK; tasks.len()]);
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        assert!(tasks.iter().all(|&task| file.sent(digest, task).unwrap() == REQUESTS_PER_TASK));
    }

    #[cfg(unix)]
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
