//! Where the file lives, and whether its directory can be trusted.
//!
//! By default the file is in a private directory of the user: on Unix of mode 0700 and owned by
//! the process's user (made so, or refused), the first of a few places that can be trusted
//! ([`default_path`] says which, and why in that order); on Windows in the user's local
//! application data, which only the user (and administrators) may open, and whose rules the
//! directory inherits.
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

/// The places the shared file may take by default on Unix, in the order they are tried (see
/// [`default_path`]).
#[cfg(unix)]
#[derive(Clone, Debug)]
pub(super) struct Places {
    /// `$XDG_RUNTIME_DIR/capmonster`, when that variable is an absolute path.
    pub runtime: Option<PathBuf>,
    /// `capmonster-<uid>` in the temporary directory.
    pub temp: PathBuf,
    /// The user's cache directory (`$XDG_CACHE_HOME` when absolute, else `$HOME/.cache`), when
    /// the user has a home directory.
    pub cache: Option<PathBuf>,
}

#[cfg(unix)]
impl Places {
    /// The places the environment names.
    fn from_environment() -> Places {
        let absolute = |name: &str| std::env::var_os(name).map(PathBuf::from).filter(|path| path.is_absolute());
        // SAFETY: geteuid has no preconditions and cannot fail.
        let uid = unsafe { libc::geteuid() };
        // `home_dir`: $HOME, else the user's entry in the password database.
        #[allow(deprecated)]
        let home = std::env::home_dir().filter(|home| home.is_absolute());
        Places {
            runtime: absolute("XDG_RUNTIME_DIR").map(|runtime| runtime.join("capmonster")),
            temp: std::env::temp_dir().join(format!("capmonster-{uid}")),
            cache: absolute("XDG_CACHE_HOME").or_else(|| home.map(|home| home.join(".cache"))),
        }
    }

    /// The place in the home cache.
    fn home(&self) -> Option<PathBuf> {
        self.cache.as_ref().map(|cache| cache.join("capmonster"))
    }
}

/// Where the shared file is by default on Unix: the first of these places that this user can
/// trust (a private directory: see `private_dir`), or why none can be (the process then
/// counts alone):
/// 1. `$XDG_RUNTIME_DIR/capmonster/`, when that variable is set: the per-user tmpfs of a login
///    session on Linux, which no other user can enter (when it is not usable, say after `su`
///    kept another user's, the places below are tried);
/// 2. `capmonster-<uid>/` in the temporary directory (`$TMPDIR`, else `/tmp`), when it exists
///    and is ours;
/// 3. `capmonster/` in the user's cache directory (`$XDG_CACHE_HOME`, else `~/.cache`), when
///    the file is already there (a process fell back to it before) and nothing is at the place
///    of 2, on a local filesystem;
/// 4. `capmonster-<uid>/` in the temporary directory, made now;
/// 5. `capmonster/` in the user's cache directory, made now, on a local filesystem.
///
/// Why this order. Every process of the user must choose the same file, whatever order they
/// start in. The temporary directory is local and is where earlier versions put the file, but
/// another user may make `capmonster-<uid>` there first (a squatter), and may remove it later:
/// if the home cache came only after a temporary directory that cannot be used, processes
/// started before and after that removal would count apart. So once a process fell back to the
/// home cache, its file there (3) is chosen before a temporary directory is made (4), and a
/// removal changes nothing; a directory of ours in the temporary directory (2) can be removed
/// by no one else (the directory is sticky), so while it exists every process takes it. The
/// home cache is never the first choice: a home directory may be on a network filesystem that
/// several machines mount, and a file mapped on two machines is not one file (`MAP_SHARED`
/// does not cohere across hosts; the counts would be lost). It is used only on a filesystem
/// known to be local (`local_filesystem`), and then stays the user's place on this machine
/// until its file is removed.
#[cfg(unix)]
pub fn default_path() -> Result<PathBuf, String> {
    choose(&Places::from_environment())
}

/// [`default_path`] among `places`.
#[cfg(unix)]
pub(super) fn choose(places: &Places) -> Result<PathBuf, String> {
    let mut refused = Vec::new();
    let mut take = |dir: &Path, checked: Result<(), String>| match checked {
        Ok(()) => Some(dir.join(FILE_NAME)),
        Err(why) => {
            refused.push(format!("{}: {why}", dir.display()));
            None
        }
    };
    if let Some(runtime) = &places.runtime {
        if let Some(path) = take(runtime, private_dir(runtime)) {
            return Ok(path);
        }
    }
    let home = places.home();
    // Where a process fell back before (3), when nothing is at the temporary place: a directory
    // of ours there (2) is taken below, and one of another user's is refused.
    let fell_back = std::fs::symlink_metadata(&places.temp).is_err()
        && home.as_ref().is_some_and(|home| home.join(FILE_NAME).is_file());
    if let (true, Some(home)) = (fell_back, &home) {
        if let Some(path) = take(home, home_dir(places, home)) {
            return Ok(path);
        }
    }
    if let Some(path) = take(&places.temp, private_dir(&places.temp)) {
        return Ok(path);
    }
    match &home {
        Some(home) if !fell_back => {
            if let Some(path) = take(home, home_dir(places, home)) {
                return Ok(path);
            }
        }
        Some(_) => {}
        None => refused.push("no home directory for a cache".to_owned()),
    }
    Err(format!("no place for the shared file can be trusted ({})", refused.join("; ")))
}

/// Makes `home` (the home cache's `capmonster/`) a private directory, after checking that its
/// parent, the cache directory, is local and only ours to change. The cache directory is made
/// (mode 0700, as the XDG specification asks) if missing, but never changed: it is the user's.
#[cfg(unix)]
fn home_dir(places: &Places, home: &Path) -> Result<(), String> {
    let cache = places.cache.as_deref().unwrap_or(home);
    local_filesystem(home)?;
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(cache) {
        Ok(()) => {}
        Err(error) => return Err(format!("its parent cannot be made: {error}")),
    }
    // The cache directory may be a link (to another disk, say): its target is what counts.
    let meta = std::fs::metadata(cache).map_err(|error| format!("its parent: {error}"))?;
    // SAFETY: no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    if meta.uid() != uid {
        return Err(format!("its parent belongs to another user (uid {})", meta.uid()));
    }
    // Writable by others, they could put a directory of theirs in its place; by its group,
    // only when that is the user's own (a user private group).
    if meta.mode() & 0o002 != 0 || (meta.mode() & 0o020 != 0 && meta.gid() != gid) {
        return Err(format!("its parent is writable by other users (mode {:o})", meta.mode() & 0o777));
    }
    private_dir(home)
}

/// Whether `path` (or, while it does not exist, its nearest ancestor) is on a filesystem that
/// only this machine maps: Linux tells the filesystem's kind (`statfs`); a network or cluster
/// filesystem, or a FUSE one (sshfs and the like: its kind is unknown), is refused. Other Unix
/// systems are not asked: the home cache is not used there (macOS's temporary directory is
/// already the user's own).
#[cfg(unix)]
fn local_filesystem(path: &Path) -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        // Bounded by the path's depth.
        for ancestor in path.ancestors() {
            let Ok(name) = std::ffi::CString::new(ancestor.as_os_str().as_bytes()) else { break };
            let mut stat = std::mem::MaybeUninit::<libc::statfs>::uninit();
            // SAFETY: a NUL-terminated path and room for its statfs.
            if unsafe { libc::statfs(name.as_ptr(), stat.as_mut_ptr()) } != 0 {
                continue;
            }
            // SAFETY: statfs succeeded, so it filled `stat`.
            let kind = unsafe { stat.assume_init() }.f_type as u32;
            return match shared_filesystem(kind) {
                Some(name) => Err(format!("it is on a {name} filesystem, which other machines may map too")),
                None => Ok(()),
            };
        }
        Err("its filesystem cannot be told".to_owned())
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Err("this system cannot tell whether it is on a local filesystem".to_owned())
    }
}

/// The name of a filesystem kind (`statfs`'s `f_type`, from Linux's `magic.h`) that other
/// machines may mount too.
#[cfg(target_os = "linux")]
fn shared_filesystem(kind: u32) -> Option<&'static str> {
    Some(match kind {
        0x6969 => "NFS",
        0x517B | 0xFF53_4D42 | 0xFE53_4D42 => "SMB",
        0x5346_414F | 0x6B41_4653 => "AFS",
        0x7375_7245 => "Coda",
        0x564C => "NCP",
        0x0102_1997 => "9P",
        0x00C3_6400 => "Ceph",
        0x0BD0_0BD0 => "Lustre",
        0x4750_4653 => "GPFS",
        0x0116_1970 => "GFS2",
        0x7461_636F => "OCFS2",
        0x2003_0528 => "OrangeFS",
        0x1983_0326 => "BeeGFS",
        0x6573_5546 => "FUSE",
        _ => return None,
    })
}

/// Where the shared file is by default on Windows: `%LOCALAPPDATA%\capmonster\` (the user's
/// local application data, which Windows sets for every session since Vista), else
/// `capmonster\` in the user's temporary directory (also the user's own). Never refused here:
/// opening the file checks its directory (`open.rs`).
#[cfg(windows)]
pub fn default_path() -> Result<PathBuf, String> {
    let base = match std::env::var_os("LOCALAPPDATA").map(PathBuf::from) {
        Some(local) if local.is_absolute() => local,
        _ => std::env::temp_dir(),
    };
    Ok(base.join("capmonster").join(FILE_NAME))
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

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// A fresh directory for one test, and the places in it: no runtime directory, the
    /// temporary one `tmp/capmonster-<uid>`, the cache `home/.cache`.
    fn places(name: &str) -> (PathBuf, Places) {
        let root = std::env::temp_dir().join(format!("capmonster-place-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("tmp")).unwrap();
        std::fs::create_dir_all(root.join("home")).unwrap();
        let places = Places {
            runtime: None,
            temp: root.join("tmp").join(format!("capmonster-{}", unsafe { libc::geteuid() })),
            cache: Some(root.join("home").join(".cache")),
        };
        (root, places)
    }

    /// Another user takes `dir` first: as root, a directory of uid 65534; otherwise a link to a
    /// directory elsewhere (refused as well).
    fn squat(dir: &Path) {
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::fs::create_dir(dir).unwrap();
            std::os::unix::fs::chown(dir, Some(65534), Some(65534)).unwrap();
        } else {
            std::os::unix::fs::symlink(dir.with_file_name("elsewhere"), dir).unwrap();
        }
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o777
    }

    #[test]
    fn the_runtime_directory_comes_first_then_the_temporary_one() {
        let (root, mut places) = places("order");
        assert_eq!(choose(&places).unwrap(), places.temp.join(FILE_NAME));
        assert_eq!(mode(&places.temp), 0o700);
        assert!(!places.cache.as_ref().unwrap().exists(), "the home cache is not touched");
        let runtime = root.join("run").join("capmonster");
        std::fs::create_dir_all(runtime.parent().unwrap()).unwrap();
        places.runtime = Some(runtime.clone());
        assert_eq!(choose(&places).unwrap(), runtime.join(FILE_NAME));
        assert_eq!(mode(&runtime), 0o700);
        // A runtime directory that cannot be used (here a link) is passed over.
        std::fs::remove_dir(&runtime).unwrap();
        std::os::unix::fs::symlink(root.join("tmp"), &runtime).unwrap();
        assert_eq!(choose(&places).unwrap(), places.temp.join(FILE_NAME));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_squatted_temporary_directory_falls_back_to_the_home_cache_for_good() {
        let (root, places) = places("squat");
        squat(&places.temp);
        let home = places.cache.as_ref().unwrap().join("capmonster");
        assert_eq!(choose(&places).unwrap(), home.join(FILE_NAME));
        assert_eq!((mode(places.cache.as_ref().unwrap()), mode(&home)), (0o700, 0o700));
        // The file made there (by the first open) keeps every later process there, even once
        // the squatter removed the directory: no process makes one in the temporary directory.
        std::fs::write(home.join(FILE_NAME), b"").unwrap();
        assert_eq!(choose(&places).unwrap(), home.join(FILE_NAME));
        std::fs::remove_dir(&places.temp).or_else(|_| std::fs::remove_file(&places.temp)).unwrap();
        assert_eq!(choose(&places).unwrap(), home.join(FILE_NAME));
        assert!(std::fs::symlink_metadata(&places.temp).is_err(), "no directory was made in the temporary directory");
        // A directory of ours in the temporary directory, which no one else can remove, wins.
        std::fs::create_dir(&places.temp).unwrap();
        assert_eq!(choose(&places).unwrap(), places.temp.join(FILE_NAME));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_home_cache_others_can_change_is_refused_and_says_why() {
        let (root, mut places) = places("refused");
        squat(&places.temp);
        let cache = places.cache.clone().unwrap();
        std::fs::create_dir(&cache).unwrap();
        std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
        let why = choose(&places).unwrap_err();
        assert!(why.contains("no place for the shared file can be trusted"), "{why}");
        assert!(why.contains(&places.temp.display().to_string()), "{why}");
        assert!(why.contains("writable by other users (mode 777)"), "{why}");
        assert!(!cache.join("capmonster").exists());
        // Another user's cache directory (only root can make one here).
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::os::unix::fs::chown(&cache, Some(65534), Some(65534)).unwrap();
            assert!(choose(&places).unwrap_err().contains("its parent belongs to another user (uid 65534)"));
        }
        places.cache = None;
        assert!(choose(&places).unwrap_err().contains("no home directory"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn network_filesystems_are_not_local() {
        assert_eq!(shared_filesystem(0x6969), Some("NFS"));
        assert_eq!(shared_filesystem(0xFF53_4D42), Some("SMB"));
        assert_eq!(shared_filesystem(0xEF53), None, "ext4");
        assert_eq!(shared_filesystem(0x0102_1994), None, "tmpfs");
        let missing = std::env::temp_dir().join("capmonster-place-test-missing").join("deeper");
        assert_eq!(local_filesystem(&missing), Ok(()), "a missing path is judged by its nearest ancestor");
    }
}
