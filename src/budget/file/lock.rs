//! The lock that orders giving slots to new tasks (and repairs), never held across a request:
//! `flock` on the file on Unix, `LockFileEx` on one byte far past the table on Windows, whose
//! locks are mandatory. The kernel drops these locks with their process, so a process killed
//! while it holds one blocks no one.
//!
//! The file's lock orders processes, not the threads of one: they share one open file, and a
//! `flock` belongs to the open file, so a second thread's `flock` succeeds at once (the lock is
//! already this open file's) and either thread's unlock releases it for both. A mutex of the
//! open file's, taken first, orders its threads.

use std::fs::File;
use std::io;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::budget::file::BudgetFile;

/// Holds the lock (the open file's mutex, then `flock(LOCK_EX)`; `LockFileEx` on Windows)
/// until dropped: the file's lock is released first, then the mutex (the other way round, a
/// thread let in by the mutex could find the file still locked by its own open file, go on,
/// and lose the lock to this thread's unlock).
pub(super) struct Locked<'a> {
    file: &'a File,
    _threads: MutexGuard<'a, ()>,
}

impl BudgetFile {
    /// The lock, for this thread against the others of the process and for this process
    /// against the others.
    pub(super) fn lock(&self) -> io::Result<Locked<'_>> {
        Locked::new(&self.file, &self.threads)
    }
}

/// The mutex that orders the threads of one open file (a poisoned one only means a thread
/// panicked holding it: the table's words are atomics, always whole).
fn lock_threads(threads: &Mutex<()>) -> MutexGuard<'_, ()> {
    threads.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(unix)]
impl<'a> Locked<'a> {
    /// Locks `file`, which only the threads that share `threads` have open.
    pub(super) fn new(file: &'a File, threads: &'a Mutex<()>) -> io::Result<Locked<'a>> {
        use std::os::fd::AsRawFd;
        let threads = lock_threads(threads);
        // Bounded: retried only when a signal interrupts the wait.
        loop {
            // SAFETY: a valid descriptor; flock has no memory effects.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(Locked { file, _threads: threads });
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
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
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
    /// Locks `file`, which only the threads that share `threads` have open.
    pub(super) fn new(file: &'a File, threads: &'a Mutex<()>) -> io::Result<Locked<'a>> {
        use std::os::windows::io::AsRawHandle;
        use windows_sys::Win32::Storage::FileSystem::{LockFileEx, LOCKFILE_EXCLUSIVE_LOCK};
        let threads = lock_threads(threads);
        let mut overlapped = lock_overlapped();
        // SAFETY: a valid handle of a synchronous file (the call waits for the lock); the
        // OVERLAPPED outlives the call.
        if unsafe { LockFileEx(file.as_raw_handle(), LOCKFILE_EXCLUSIVE_LOCK, 0, 1, 0, &mut overlapped) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Locked { file, _threads: threads })
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
            windows_sys::Win32::Storage::FileSystem::UnlockFileEx(self.file.as_raw_handle(), 0, 1, 0, &mut overlapped)
        };
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use crate::budget::file::testing::scratch;
    use crate::budget::file::BudgetFile;

    /// Threads share the process's open file, whose `flock` would let a second thread in at
    /// once (and the first one's unlock would end both): the lock must keep it out.
    #[test]
    fn a_thread_waits_for_another_thread_holding_the_lock() {
        let path = scratch("lock-threads");
        let (file, _) = BudgetFile::open(&path, false).unwrap();
        let held = file.lock().unwrap();
        let (taken, heard) = mpsc::channel();
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let _lock = file.lock().unwrap();
                taken.send(()).unwrap();
            });
            assert!(heard.recv_timeout(Duration::from_millis(300)).is_err(), "let in while another thread held it");
            drop(held);
            heard.recv_timeout(Duration::from_secs(10)).expect("let in once released");
        });
    }
}
