//! The file in memory, and the guards against its one hazard.
//!
//! Mapping a file has one hazard: a file cut short behind the library's back makes access past
//! its end a SIGBUS (a crash of the host program). The library never shrinks the file below its
//! size and reserves its blocks (`posix_fallocate`, [`reserve`]), so a full disk cannot cause it
//! either. On Unix each count first checks the file's size (`fstat`, well under a microsecond)
//! and restores a file cut short before touching it
//! ([`restore_if_cut_short`](BudgetFile::restore_if_cut_short)); only a program of the same
//! user that cuts the file within that microsecond could still crash a host, and
//! `CAPMONSTER_BUDGET=process` avoids the file altogether. Windows refuses to cut short a file
//! that is mapped.

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::budget::file::layout::{header, FILE_BYTES, HEADER_BYTES};
use crate::budget::file::BudgetFile;

/// The file mapped into memory: `FILE_BYTES` at a page-aligned address, shared with every
/// process that maps the file.
pub(super) struct Mapping {
    base: *mut u8,
    #[cfg(windows)]
    handle: windows_sys::Win32::Foundation::HANDLE,
}

impl Mapping {
    #[cfg(unix)]
    pub(super) fn new(file: &File) -> io::Result<Mapping> {
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
    pub(super) fn new(file: &File) -> io::Result<Mapping> {
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
    pub(super) fn words(&self) -> &[AtomicU64] {
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

    pub(super) fn header(&self) -> [u8; HEADER_BYTES] {
        let mut found = [0u8; HEADER_BYTES];
        // SAFETY: the header is in the mapping; it is written only under the lock, which the
        // callers hold.
        unsafe { std::ptr::copy_nonoverlapping(self.base, found.as_mut_ptr(), HEADER_BYTES) };
        found
    }

    /// Under the lock: an empty table behind a fresh header. Atomic stores, because processes
    /// that found the file whole a moment ago may be counting in it.
    pub(super) fn rebuild(&self) {
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

/// Reserves the file's blocks, so that no write through the mapping can meet a full disk (a
/// SIGBUS). Windows allocates them when the file is extended.
pub(super) fn reserve(file: &File) -> io::Result<()> {
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
    /// Unix: a file cut short behind the library's back is restored (rebuilt empty) before the
    /// mapping is touched, which would otherwise be a SIGBUS. One `fstat` per count. Windows
    /// refuses to cut short a mapped file.
    pub(super) fn restore_if_cut_short(&self) -> io::Result<()> {
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
                let _lock = self.lock()?;
                if self.file.metadata()?.len() < FILE_BYTES {
                    self.file.set_len(FILE_BYTES)?;
                    reserve(&self.file)?;
                    self.map.rebuild();
                }
            }
        }
        Ok(())
    }
}
