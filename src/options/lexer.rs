//! Splits a command line into words and an option argument into `key=value` parameters,
//! remembering the column every character came from.
//!
//! QEMU's parameter syntax (`qemu_opts_parse`): parameters are separated by `,`; a value
//! runs up to the next single `,` and `,,` inside it stands for one `,`; the first element
//! may omit its key (the implied key: `type` for `-net`/`-netdev`/`-nic`, `driver` for
//! `-device`, `qom-type` for `-object`); a later element without `=` is a flag set to
//! `on`; a trailing `,` is accepted.

/// One word of the command line, with the 1-based column of each of its characters.
#[derive(Clone, Debug)]
pub(crate) struct Word {
    pub text: Vec<char>,
    pub cols: Vec<usize>,
    /// Column of the first character, or where an empty word stands.
    pub start: usize,
    /// Column of the whitespace just before the word, when there is one.
    pub gap: Option<usize>,
}

impl Word {
    pub fn as_string(&self) -> String {
        self.text.iter().collect()
    }

    /// Column of character `i`, or just past the word for `i == len`.
    pub fn col(&self, i: usize) -> usize {
        match self.cols.get(i) {
            Some(&c) => c,
            None => self.cols.last().map_or(self.start, |c| c + 1),
        }
    }
}

/// Splits one command-line string on whitespace. Single and double quotes group text
/// (without escapes), as a shell would for these simple cases.
pub(crate) fn words_from_line(line: &str) -> Result<Vec<Word>, (usize, String)> {
    let mut words = Vec::new();
    let mut cur: Option<Word> = None;
    let mut quote: Option<(char, usize)> = None;
    let mut last_space: Option<usize> = None;
    for (idx, ch) in line.chars().enumerate() {
        let col = idx + 1;
        if let Some((q, _)) = quote {
            if ch == q {
                quote = None;
            } else if let Some(w) = cur.as_mut() {
                w.text.push(ch);
                w.cols.push(col);
            }
            continue;
        }
        if ch.is_whitespace() {
            if let Some(w) = cur.take() {
                words.push(w);
            }
            last_space = Some(col);
            continue;
        }
        let w = cur.get_or_insert_with(|| Word {
            text: Vec::new(),
            cols: Vec::new(),
            start: col,
            gap: last_space.filter(|&s| s + 1 == col),
        });
        if ch == '"' || ch == '\'' {
            quote = Some((ch, col));
        } else {
            w.text.push(ch);
            w.cols.push(col);
        }
    }
    if let Some((q, col)) = quote {
        return Err((col, format!("unterminated {q} quote")));
    }
    words.extend(cur);
    Ok(words)
}

/// Turns an argument vector into words; columns are those of the arguments joined by
/// single spaces, which is also the line returned.
pub(crate) fn words_from_args<S: AsRef<str>>(args: &[S]) -> (Vec<Word>, String) {
    let mut words = Vec::with_capacity(args.len());
    let mut line = String::new();
    let mut col = 1;
    for (i, a) in args.iter().enumerate() {
        let a = a.as_ref();
        if i > 0 {
            line.push(' ');
            col += 1;
        }
        let text: Vec<char> = a.chars().collect();
        let cols = (col..col + text.len()).collect();
        words.push(Word {
            start: col,
            gap: (i > 0).then(|| col - 1),
            cols,
            text,
        });
        col += a.chars().count();
        line.push_str(a);
    }
    (words, line)
}

/// One `key=value` parameter of an option argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// The key (the implied key for a first element written without one).
    pub key: String,
    /// The value, with `,,` turned into `,`; `on` for a bare flag.
    pub value: String,
    /// 1-based column of the key (of the value for an implied key).
    pub key_col: usize,
    /// 1-based column of the value.
    pub value_col: usize,
}

/// Reads a value from `i` up to the next single `,` (consumed), turning `,,` into `,`.
fn read_value(c: &[char], i: &mut usize) -> String {
    let mut v = String::new();
    while *i < c.len() {
        if c[*i] == ',' {
            if c.get(*i + 1) == Some(&',') {
                v.push(',');
                *i += 2;
                continue;
            }
            *i += 1;
            break;
        }
        v.push(c[*i]);
        *i += 1;
    }
    v
}

const WS_BETWEEN: &str = "whitespace is not allowed between parameters: remove the space \
                          after ',' (a shell splits the option there)";

/// Splits an option argument into parameters; `implied` is the key of a first element
/// written without `=`. Errors carry the column of the offending character.
pub(crate) fn split_params(w: &Word, implied: &str) -> Result<Vec<Param>, (usize, String)> {
    let c = &w.text;
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        let start = i;
        while i < c.len() && c[i] != '=' && c[i] != ',' {
            i += 1;
        }
        let name: String = c[start..i].iter().collect();
        if let Some(p) = c[start..i].iter().position(|ch| ch.is_whitespace()) {
            let msg = if p == 0 && start > 0 {
                WS_BETWEEN.to_string()
            } else {
                format!("whitespace is not allowed in '{}'", name.trim())
            };
            return Err((w.col(start + p), msg));
        }
        if i < c.len() && c[i] == '=' {
            if name.is_empty() {
                return Err((w.col(start), "a parameter has no name before '='".into()));
            }
            i += 1;
            let vstart = i;
            let value = read_value(c, &mut i);
            out.push(Param {
                key: name,
                value,
                key_col: w.col(start),
                value_col: w.col(vstart),
            });
        } else if out.is_empty() && start == 0 {
            i = start;
            let value = read_value(c, &mut i);
            out.push(Param {
                key: implied.to_string(),
                value,
                key_col: w.col(start),
                value_col: w.col(start),
            });
        } else if name.is_empty() {
            return Err((w.col(start), "empty parameter between two commas".into()));
        } else {
            i += 1; // the ',' ending the flag, if any
            out.push(Param {
                key: name,
                value: "on".into(),
                key_col: w.col(start),
                value_col: w.col(start),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(s: &str) -> Word {
        words_from_line(s).unwrap().remove(0)
    }

    #[test]
    fn splits_with_escapes_and_implied_key() {
        let p = split_params(&word("tap,script=/a,,b,vhost,id=x,"), "type").unwrap();
        let kv: Vec<_> = p
            .iter()
            .map(|p| (p.key.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(
            kv,
            [
                ("type", "tap"),
                ("script", "/a,b"),
                ("vhost", "on"),
                ("id", "x")
            ]
        );
        assert_eq!(p[1].key_col, 5);
        assert_eq!(p[1].value_col, 12);
    }

    #[test]
    fn space_after_comma_inside_one_word() {
        let w = word("'tap,ifname=tap0, script=no'");
        let (col, msg) = split_params(&w, "type").unwrap_err();
        assert_eq!(col, 18);
        assert!(msg.contains("whitespace is not allowed between parameters"));
    }

    #[test]
    fn columns_of_args_follow_the_joined_line() {
        let (w, line) = words_from_args(&["-net", "nic", "", "x"]);
        assert_eq!(line, "-net nic  x");
        assert_eq!(w[1].start, 6);
        assert_eq!(w[3].start, 11);
        assert_eq!(w[3].gap, Some(10));
    }

    #[test]
    fn unterminated_quote_is_an_error() {
        assert_eq!(words_from_line("-net 'nic").unwrap_err().0, 6);
    }
}
