//! Errors and warnings that point at a column of the command line.

use std::fmt;

/// A problem with the networking options, located at a column of the command line.
///
/// `column` is 1-based and counts characters (not bytes) of [`OptionsError::line`]; it
/// is always inside the line (a line that is empty gets column 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsError {
    /// The option the problem is in, as written: `-net`, `-netdev`, `-device`, `-nic`,
    /// `-object`, or the stray word itself.
    pub option: String,
    /// 1-based character column in [`OptionsError::line`].
    pub column: usize,
    /// What is wrong and, where possible, what to write instead.
    pub message: String,
    /// The whole command line the column refers to (arguments joined by single spaces).
    pub line: String,
}

impl OptionsError {
    /// The error as two lines of context (the command line and a caret under the
    /// column) followed by the message, the way compilers show it.
    pub fn render(&self) -> String {
        let caret = " ".repeat(self.column.saturating_sub(1));
        format!("{}\n{caret}^\n{self}", self.line)
    }
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: column {}: {}",
            self.option, self.column, self.message
        )
    }
}

impl std::error::Error for OptionsError {}

/// A configuration QEMU accepts but warns about (a hub with no NIC, a netdev with no
/// peer); the text is QEMU's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// QEMU's warning text, e.g. `hub 0 with no nics`.
    pub message: String,
    /// 1-based column of the option that caused it.
    pub column: usize,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}
