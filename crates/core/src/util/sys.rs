//! The few operating-system calls Parachute makes through `libc`, each wrapped in a
//! safe function here so the rest of the workspace needs no `unsafe`.
#![allow(unsafe_code)]

use std::path::Path;

/// A signal the command line sends to a server it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGTERM`: ask the process to shut down cleanly.
    Term,
    /// `SIGKILL`: end the process at once.
    Kill,
}

/// Whether a process with this id exists (signal 0).
pub fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks for the process; no memory is involved.
    pid > 0 && unsafe { libc::kill(pid as libc::pid_t, 0) } == 0
}

/// Sends `signal` to `pid`; `true` when it was delivered.
pub fn send_signal(pid: u32, signal: Signal) -> bool {
    if pid == 0 {
        return false;
    }
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: a plain syscall on a process id; no memory is involved.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

/// Sends `signal` to every process of the process group `pgid` (a process started in a
/// group of its own, and whatever it started); `true` when it was delivered.
pub fn signal_group(pgid: u32, signal: Signal) -> bool {
    if pgid <= 1 {
        return false;
    }
    let sig = match signal {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: a plain syscall on a process group id; no memory is involved.
    unsafe { libc::kill(-(pgid as libc::pid_t), sig) == 0 }
}

/// Collects the exit status of `pid` if it is our exited child (never blocks).
pub fn reap_nohang(pid: u32) {
    // SAFETY: waitpid with WNOHANG and a null status pointer is allowed by POSIX.
    unsafe {
        libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), libc::WNOHANG);
    }
}

/// Bytes available to unprivileged users on the filesystem holding `path`.
pub fn free_disk_bytes(path: &Path) -> Option<u64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: statvfs is plain data, fully written by a successful call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated string and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some(st.f_bavail as u64 * st.f_frsize as u64)
}

/// The machine's physical memory, in bytes.
pub fn physical_memory_bytes() -> Option<u64> {
    // SAFETY: sysconf only reads system constants.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}

/// The user and group ids this process runs as.
pub fn ids() -> (u32, u32) {
    // SAFETY: getuid and getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

/// Gives `path` and everything below it to `uid`:`gid` (symlinks themselves, never
/// their targets).
pub fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if path.symlink_metadata()?.is_dir() {
        for e in std::fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}
