//! Where the file lives, and whether its directory can be trusted.
//!
//! By default the file is in a private directory of the user: on Unix of mode 0700 and owned by
//! the process's user (made so, or refused); on Windows in the user's local application data,
//! which only the user (and administrators) may open, and whose rules the directory inherits.
//! A symbolic link (a reparse point on Windows) is refused in place of the directory. A path
//! the user chose (`CAPMONSTER_BUDGET_FILE`) is taken as it is: only the file is checked
//! (`open.rs`).

use std::io;
#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The file's name in the default directory. v3 adds the account guard's stops after the table;
/// v2 was the lock-free layout; v1 counted under the lock only. Layouts never share a file: an
/// older library would cut a newer, longer file to its own size.
const FILE_NAME: &str = "budget-v4";

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

/// Makes `dir` (and only its last component) a private directory of this user: created with
/// mode 0700 if missing; an existing one must be ours and not a symlink, and is set to 0700.
/// On Windows it inherits the parent's access rules (the user's own local application data)
/// and must not be a symlink.
pub(super) fn private_dir(dir: &Path) -> Result<(), String> {
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
