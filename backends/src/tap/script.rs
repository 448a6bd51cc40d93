//! QEMU's tap network scripts: `script=` runs after the tap exists, `downscript=` before
//! it is closed, each with the interface name as `$1` and no descriptor but stdin,
//! stdout and stderr.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

/// QEMU's default `script=`.
pub const DEFAULT_SCRIPT: &str = "/etc/qemu-ifup";
/// QEMU's default `downscript=`.
pub const DEFAULT_DOWNSCRIPT: &str = "/etc/qemu-ifdown";

/// Marks every descriptor above 2 close-on-exec in the child, so the script inherits
/// nothing of the VMM (taps, sockets, guest memory files).
pub(crate) fn close_other_fds() -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range only changes descriptor flags; async-signal-safe.
    let r = unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC) };
    if r == 0 {
        return Ok(());
    }
    // Older kernels: walk the descriptor table up to the soft limit.
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into `lim`; fcntl only sets flags. Both async-signal-safe.
    unsafe {
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur.min(1 << 20) as i32
        } else {
            1024
        };
        for fd in 3..max {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(())
}

/// Runs `script IFNAME` and waits for it. Errors name the script and say what failed:
/// "could not launch network script PATH" when it cannot be executed, or its exit status.
pub fn run(script: &Path, ifname: &str) -> Result<(), String> {
    let mut cmd = Command::new(script);
    cmd.arg(ifname);
    // SAFETY: the closure only calls async-signal-safe functions.
    unsafe {
        cmd.pre_exec(close_other_fds);
    }
    let status = cmd.status().map_err(|e| {
        let what_to_do = if script == Path::new(DEFAULT_SCRIPT) || script == Path::new(DEFAULT_DOWNSCRIPT) {
            format!(
                "; create an executable {} (it gets the interface name as $1), or pass script=no,downscript=no",
                script.display()
            )
        } else {
            "; check the path and that the file is executable, or pass script=no".to_string()
        };
        format!("could not launch network script {}: {e}{what_to_do}", script.display())
    })?;
    if status.success() {
        return Ok(());
    }
    Err(match status.code() {
        Some(code) => format!(
            "network script {} failed with status {code}",
            script.display()
        ),
        None => format!("network script {} was killed ({status})", script.display()),
    })
}

/// QEMU's spelling for "no script": empty or `no`.
pub fn disabled(value: &str) -> bool {
    value.is_empty() || value == "no"
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(name: &str, body: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("vmnic-script-{}-{name}", std::process::id()));
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn exit_status_and_launch_failures_are_named() {
        let ok = script("ok", "[ \"$1\" = tapX ] || exit 9");
        assert_eq!(run(&ok, "tapX"), Ok(()));
        assert_eq!(
            run(&ok, "other"),
            Err(format!(
                "network script {} failed with status 9",
                ok.display()
            ))
        );
        let e = run(Path::new("/nonexistent/ifup"), "tap0").unwrap_err();
        assert!(
            e.starts_with("could not launch network script /nonexistent/ifup"),
            "{e}"
        );
        assert!(e.contains("script=no"), "{e}");
        std::fs::remove_file(ok).unwrap();
        assert!(disabled("no") && disabled("") && !disabled("/etc/qemu-ifup"));
    }

    #[test]
    fn script_inherits_no_other_descriptor() {
        // A descriptor without close-on-exec, as a careless VMM might hold.
        let marker = script("marker", "");
        let f = std::fs::File::open(&marker).unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(f);
        // SAFETY: clearing FD_CLOEXEC on our own descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
        let s = script(
            "fds",
            &format!(
                "for f in /proc/$$/fd/*; do [ \"$(readlink $f)\" = {} ] && exit 3; done; exit 0",
                marker.display()
            ),
        );
        assert_eq!(run(&s, "tap0"), Ok(()));
        // SAFETY: closing the descriptor opened above.
        unsafe { libc::close(fd) };
        std::fs::remove_file(s).unwrap();
        std::fs::remove_file(marker).unwrap();
    }
}
