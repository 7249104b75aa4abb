//! The lock that orders giving slots to new tasks (and repairs), never held across a request:
//! `flock` on the file on Unix, `LockFileEx` on one byte far past the table on Windows, whose
//! locks are mandatory. The kernel drops these locks with their process, so a process killed
//! while it holds one blocks no one.

use std::fs::File;
use std::io;

/// Holds the lock (`flock(LOCK_EX)`; `LockFileEx` on Windows) until dropped.
pub(super) struct Locked<'a>(&'a File);

#[cfg(unix)]
impl<'a> Locked<'a> {
    pub(super) fn new(file: &'a File) -> io::Result<Locked<'a>> {
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
    pub(super) fn new(file: &'a File) -> io::Result<Locked<'a>> {
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
