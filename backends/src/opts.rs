//! The shape in which QEMU-style `-netdev TYPE,key=value,...` options reach a backend.
//!
//! The option parser in the `vm-nic` crate splits a command-line argument into ordered
//! `(key, value)` pairs and remembers where each came from. Each backend module offers
//! `open(opts: &[(String, String)]) -> Result<Box<dyn NetBackend>, OptError>` plus a
//! `KEYS` list of the keys it accepts (without the generic `id`/`vlan`/`name`), and names
//! the offending key in its [`OptError`] so the parser can point at its column.

use std::fmt;
use std::os::fd::RawFd;

/// A backend option that is missing, unknown, malformed or impossible to honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptError {
    /// The key the error is about, if one (the parser points at it).
    pub key: Option<String>,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

impl OptError {
    /// An error about `key`.
    pub fn at(key: &str, message: impl Into<String>) -> Self {
        OptError {
            key: Some(key.to_string()),
            message: message.into(),
        }
    }

    /// An error about the option as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        OptError {
            key: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for OptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(k) => write!(f, "{k}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for OptError {}

/// Looks up the last value given for `key` (QEMU lets a later key override an earlier one).
pub fn get<'a>(opts: &'a [(String, String)], key: &str) -> Option<&'a str> {
    opts.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Checks every key is in `valid`; the error lists the valid keys.
pub fn check_keys(kind: &str, opts: &[(String, String)], valid: &[&str]) -> Result<(), OptError> {
    for (k, _) in opts {
        if !valid.contains(&k.as_str()) {
            return Err(OptError::at(
                k,
                format!(
                    "'{k}' is not a valid parameter for '{kind}'; valid: {}",
                    valid.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Parses QEMU's boolean spellings: on/off, yes/no, true/false, y/n.
pub fn parse_bool(key: &str, value: &str) -> Result<bool, OptError> {
    match value {
        "on" | "yes" | "true" | "y" => Ok(true),
        "off" | "no" | "false" | "n" => Ok(false),
        _ => Err(OptError::at(
            key,
            format!("'{value}' is not a boolean; use on or off"),
        )),
    }
}

/// Parses a file-descriptor number and checks it is open.
pub fn parse_fd(key: &str, s: &str) -> Result<RawFd, OptError> {
    let fd: RawFd = s
        .parse()
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| OptError::at(key, format!("'{s}' is not a file descriptor number")))?;
    // SAFETY: F_GETFD only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return Err(OptError::at(
            key,
            format!("file descriptor {fd} is not open"),
        ));
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn last_value_wins_and_keys_are_checked() {
        let opts = o(&[("a", "1"), ("a", "2")]);
        assert_eq!(get(&opts, "a"), Some("2"));
        assert!(check_keys("t", &opts, &["a"]).is_ok());
        let e = check_keys("tap", &o(&[("bogus", "1")]), &["ifname", "script"]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("bogus"));
        assert!(e.message.contains("valid: ifname, script"));
        assert_eq!(parse_bool("x", "on"), Ok(true));
        assert!(parse_bool("x", "maybe").is_err());
    }
}
