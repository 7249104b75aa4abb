//! Whether a process still exists: a probe's lease names its prober, and a lease whose
//! prober was killed is free at once rather than after [`PROBE_LEASE`](super::policy::PROBE_LEASE).

/// This process's id, as a lease records it.
pub(crate) fn this_process() -> u32 {
    std::process::id()
}

/// Whether process `pid` exists. Unknown ids and every doubt answer yes: a wrong yes costs
/// at most the lease's time bound, a wrong no a second probe. (A process of another pid
/// namespace sharing the file looks gone: the same second probe at worst.)
#[cfg(unix)]
pub(crate) fn exists(pid: u32) -> bool {
    // 0 and ids beyond pid_t would name process groups: never asked.
    let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
    if pid <= 0 {
        return true;
    }
    // SAFETY: signal 0 sends nothing; it only checks that the process exists.
    let sent = unsafe { libc::kill(pid, 0) };
    sent == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Whether process `pid` exists (and has not exited: its exit code is still `STILL_ACTIVE`).
#[cfg(windows)]
pub(crate) fn exists(pid: u32) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, GetLastError, ERROR_INVALID_PARAMETER, STILL_ACTIVE};
    use windows_sys::Win32::System::Threading::{GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};
    if pid == 0 {
        return true;
    }
    // SAFETY: plain calls on a handle this function owns and closes.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            return GetLastError() != ERROR_INVALID_PARAMETER;
        }
        let mut code = 0u32;
        let read = GetExitCodeProcess(handle, &mut code);
        CloseHandle(handle);
        read == 0 || code == STILL_ACTIVE as u32
    }
}

/// Elsewhere there is no way to ask: leases run their time.
#[cfg(not(any(unix, windows)))]
pub(crate) fn exists(_pid: u32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_exists_and_a_reaped_child_does_not() {
        assert!(exists(this_process()));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!exists(pid), "a child that exited and was reaped");
        assert!(exists(0), "unknown: taken as alive");
    }
}
