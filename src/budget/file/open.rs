//! Opening the file: created if missing, never through a symbolic link, and used only as a
//! regular file of the process's user; and knowing when a forked child must open its own.
//!
//! Trust: the file holds no key (only a digest of it, see `budget::KeyDigest`). It is opened
//! without following symlinks, as a regular file of mode 0600 owned by the process's user, in
//! the directory `place.rs` checks. What the library owns it repairs (mode here; size and
//! header in `repair.rs`); anything else (another user's file, a symlink) is not used: the
//! process counts alone. On Windows the file inherits its directory's access rules, and
//! symlinks (reparse points) are refused as on Unix; modes and owners are not checked there.

#[cfg(unix)]
use std::fs::File;
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
#[cfg(unix)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::budget::file::place::private_dir;
use crate::budget::file::BudgetFile;

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
        let budget = BudgetFile { map, file, threads: Mutex::new(()), path: path.to_owned(), forks: forks() };
        #[cfg(windows)]
        let budget = BudgetFile { map, file, threads: Mutex::new(()), path: path.to_owned() };
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
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn symlinks_and_foreign_files_are_not_used() {
        use crate::budget::file::testing::scratch;
        use crate::budget::file::BudgetFile;
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
