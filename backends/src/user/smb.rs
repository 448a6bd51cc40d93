//! `smb=dir[,smbserver=addr]`: the directory is shared with the guest by Samba's smbd,
//! the way QEMU does it: a private temporary directory holds an `smb.conf` (share
//! `qemu`, guest access mapped to the current user) and smbd's state, and each guest
//! connection to `smbserver` (default the network's .4) port 445 or 139 starts
//! `smbd -l DIR -s DIR/smb.conf` inetd-style, the connection on its stdin and stdout
//! (through the `guestfwd=...-cmd:` machinery). Nothing listens on the host, so no other
//! local user can reach the share. The directory is removed when the network is
//! dropped.

use std::ffi::{CStr, CString};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use super::guestfwd::{FwdTarget, GuestFwd};

/// The SMB ports forwarded to smbd: SMB over TCP and NetBIOS session service.
pub(crate) const PORTS: [u16; 2] = [445, 139];

/// Where smbd is looked for before `$PATH` (QEMU's default `CONFIG_SMBD_COMMAND` is the
/// first).
const SMBD_PATHS: &[&str] = &["/usr/sbin/smbd", "/usr/local/sbin/smbd"];

/// A running `smb=` share: its private directory and the smbd command line.
#[derive(Debug)]
pub(crate) struct SmbServer {
    dir: PathBuf,
    command: String,
}

fn err(kind: io::ErrorKind, msg: String) -> io::Error {
    io::Error::new(kind, format!("smb=: {msg}"))
}

/// The smbd executable, if installed.
pub(crate) fn find_smbd() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    SMBD_PATHS
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path).map(|d| d.join("smbd")))
        .find(|p| p.is_file())
}

/// `s` as one single-quoted `/bin/sh` word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The name of the effective user, which the share's files are accessed as.
fn user_name() -> io::Result<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data; all-zero is a valid value.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer points at live storage of the stated size; on success `out`
    // points at `pw`, whose strings live in `buf`.
    let r = unsafe {
        libc::getpwuid_r(
            libc::geteuid(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut out,
        )
    };
    if r != 0 || out.is_null() || pw.pw_name.is_null() {
        return Err(err(
            io::ErrorKind::NotFound,
            "cannot find the current user's name".into(),
        ));
    }
    // SAFETY: pw_name is a NUL-terminated string inside `buf`, alive here.
    let name = unsafe { CStr::from_ptr(pw.pw_name) };
    Ok(name.to_string_lossy().into_owned())
}

/// Creates a private (mode 0700) directory `vm-nic-smb.XXXXXX` in the temporary
/// directory.
fn private_dir() -> io::Result<PathBuf> {
    let template = std::env::temp_dir().join("vm-nic-smb.XXXXXX");
    let mut bytes = CString::new(template.into_os_string().into_vec())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in TMPDIR"))?
        .into_bytes_with_nul();
    // SAFETY: bytes is a writable NUL-terminated template ending in XXXXXX.
    let p = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    bytes.pop();
    Ok(PathBuf::from(std::ffi::OsString::from_vec(bytes)))
}

/// QEMU's smb.conf: everything smbd keeps lives in `dir`; one share `qemu`.
fn config(dir: &str, share: &str, user: &str) -> String {
    format!(
        "[global]\n\
         private dir={dir}\n\
         interfaces=127.0.0.1\n\
         bind interfaces only=yes\n\
         pid directory={dir}\n\
         lock directory={dir}\n\
         state directory={dir}\n\
         cache directory={dir}\n\
         ncalrpc dir={dir}/ncalrpc\n\
         log file={dir}/log.smbd\n\
         smb passwd file={dir}/smbpasswd\n\
         security = user\n\
         map to guest = Bad User\n\
         load printers = no\n\
         printing = bsd\n\
         disable spoolss = yes\n\
         usershare max shares = 0\n\
         [qemu]\n\
         path={share}\n\
         read only=no\n\
         guest ok=yes\n\
         force user={user}\n"
    )
}

/// A path as UTF-8 without line breaks (it goes into smb.conf and a shell command).
fn conf_str<'a>(what: &str, p: &'a Path) -> io::Result<&'a str> {
    p.to_str()
        .filter(|s| !s.contains(['\n', '\r']))
        .ok_or_else(|| {
            err(
                io::ErrorKind::InvalidInput,
                format!("{what} '{}' must be UTF-8 without line breaks", p.display()),
            )
        })
}

impl SmbServer {
    /// Checks smbd and the shared directory, and writes the configuration.
    pub fn start(share: &Path) -> io::Result<SmbServer> {
        let smbd = find_smbd().ok_or_else(|| {
            err(
                io::ErrorKind::NotFound,
                "smbd not found; install samba".into(),
            )
        })?;
        let share = std::fs::canonicalize(share)
            .and_then(|p| std::fs::read_dir(&p).map(|_| p))
            .map_err(|e| {
                err(
                    e.kind(),
                    format!(
                        "cannot use '{}' as the shared directory: {e}",
                        share.display()
                    ),
                )
            })?;
        let user = user_name()?;
        let dir = private_dir()
            .map_err(|e| err(e.kind(), format!("cannot create a private directory: {e}")))?;
        // From here on, dropping `server` removes the directory again.
        let mut server = SmbServer {
            dir,
            command: String::new(),
        };
        let dir_s = conf_str("the temporary directory", &server.dir)?.to_string();
        let share_s = conf_str("the shared directory", &share)?;
        let smbd_s = conf_str("smbd", &smbd)?;
        let conf = server.dir.join("smb.conf");
        std::fs::write(&conf, config(&dir_s, share_s, &user))?;
        server.command = format!(
            "exec {} -l {} -s {}",
            sh_quote(smbd_s),
            sh_quote(&dir_s),
            sh_quote(&format!("{dir_s}/smb.conf"))
        );
        log::debug!("user: smb= shares {share_s} through {}", server.command);
        Ok(server)
    }

    /// The guest forwards serving SMB at `server`.
    pub fn forwards(&self, server: Ipv4Addr) -> Vec<GuestFwd> {
        PORTS
            .iter()
            .map(|&p| GuestFwd {
                addr: SocketAddrV4::new(server, p),
                target: FwdTarget::Cmd(self.command.clone()),
            })
            .collect()
    }

    /// The private directory (configuration, smbd's state and log).
    #[cfg(test)]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SmbServer {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            log::warn!("user: cannot remove {}: {e}", self.dir.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn config_has_qemus_keys() {
        let c = config("/t", "/srv/share", "alice");
        for line in [
            "[global]",
            "private dir=/t",
            "interfaces=127.0.0.1",
            "map to guest = Bad User",
            "ncalrpc dir=/t/ncalrpc",
            "[qemu]",
            "path=/srv/share",
            "read only=no",
            "guest ok=yes",
            "force user=alice",
        ] {
            assert!(c.lines().any(|l| l == line), "{line} missing from\n{c}");
        }
    }

    #[test]
    fn private_dir_is_removed_on_drop() {
        if find_smbd().is_none() {
            let e = SmbServer::start(Path::new("/")).unwrap_err();
            assert_eq!(e.to_string(), "smb=: smbd not found; install samba");
            return;
        }
        let share = std::env::temp_dir();
        let s = SmbServer::start(&share).unwrap();
        let dir = s.dir().to_path_buf();
        let conf = std::fs::read_to_string(dir.join("smb.conf")).unwrap();
        assert!(conf.contains("[qemu]"));
        let fwd = s.forwards(Ipv4Addr::new(10, 0, 2, 4));
        assert_eq!(fwd.len(), 2);
        assert_eq!(fwd[0].addr, "10.0.2.4:445".parse().unwrap());
        drop(s);
        assert!(!dir.exists(), "{} left behind", dir.display());
        let e = SmbServer::start(Path::new("/nonexistent/share")).unwrap_err();
        assert!(e.to_string().contains("shared directory"), "{e}");
    }
}
