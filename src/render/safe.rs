//! Terminal safety: any user can put control characters in what syslens prints (a
//! process renames itself with `prctl(PR_SET_NAME, "\x1b]0;owned\x07")`, a path holds a
//! tab, a cgroup a newline), and printed raw they drive root's terminal. Text output
//! shows them escaped (`\x1b`), as `ps` shows them as `?`; JSON escapes them as JSON
//! does. Two layers: [`clean`] for each string a user controls where text is laid out
//! (so widths stay right and colour mode cannot be abused), and [`TerminalSafe`], a
//! writer that escapes whatever still reaches the terminal except syslens's own colours.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

/// The escape sequences [`super::Style`] emits: the only ones let through.
const OWN_SGR: [&[u8]; 6] = [
    b"\x1b[0m",
    b"\x1b[1m",
    b"\x1b[2m",
    b"\x1b[31m",
    b"\x1b[32m",
    b"\x1b[33m",
];

/// Whether a character must not reach a terminal raw: C0 controls (tab included),
/// DEL and the C1 controls (U+0080..U+009F; U+009B is a one-character CSI).
fn is_unsafe(c: char) -> bool {
    c.is_control()
}

fn escape_into(out: &mut String, c: char) {
    let _ = write!(out, "\\x{:02x}", u32::from(c));
}

/// `s` with every control character shown as `\xNN` (a newline too: one value is one
/// line). Borrowed when there is nothing to escape, which is nearly always.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`clean`], for a block of lines: newlines are kept.
pub fn clean_lines(s: &str) -> Cow<'_, str> {
    if !s.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c != '\n' && is_unsafe(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A writer that escapes control characters on their way to a terminal, except newlines
/// and (when colour is on) the exact colour sequences syslens's own styles write. Every
/// write is taken whole; a character split across two writes is joined first.
pub struct TerminalSafe<'a> {
    inner: &'a mut dyn Write,
    colour: bool,
    /// The start of a UTF-8 sequence that the last write ended in.
    carry: Vec<u8>,
}

impl std::fmt::Debug for TerminalSafe<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalSafe")
            .field("colour", &self.colour)
            .finish_non_exhaustive()
    }
}

impl<'a> TerminalSafe<'a> {
    /// Wraps `inner`; `colour` lets syslens's own colour sequences through.
    pub fn new(inner: &'a mut dyn Write, colour: bool) -> TerminalSafe<'a> {
        TerminalSafe {
            inner,
            colour,
            carry: Vec::new(),
        }
    }

    fn emit(&mut self, bytes: &[u8]) -> io::Result<()> {
        let text = String::from_utf8_lossy(bytes);
        let mut out = String::with_capacity(text.len());
        let mut rest: &str = &text;
        while let Some(c) = rest.chars().next() {
            if c == '\n' || !is_unsafe(c) {
                out.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            if self.colour {
                if let Some(sgr) = OWN_SGR.iter().find(|s| rest.as_bytes().starts_with(s)) {
                    out.push_str(&rest[..sgr.len()]);
                    rest = &rest[sgr.len()..];
                    continue;
                }
            }
            escape_into(&mut out, c);
            rest = &rest[c.len_utf8()..];
        }
        self.inner.write_all(out.as_bytes())
    }
}

/// The length of the longest prefix of `b` that ends on a UTF-8 character boundary.
fn complete_prefix(b: &[u8]) -> usize {
    // A sequence starts at the last byte that is not a continuation byte.
    let Some(start) = b.iter().rposition(|&x| x & 0xC0 != 0x80) else {
        return b.len();
    };
    let need = match b[start] {
        x if x < 0x80 => 1,
        x if x >> 5 == 0b110 => 2,
        x if x >> 4 == 0b1110 => 3,
        x if x >> 3 == 0b11110 => 4,
        _ => 1,
    };
    if b.len() - start >= need {
        b.len()
    } else {
        start
    }
}

impl Write for TerminalSafe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(buf);
        let whole = complete_prefix(&bytes);
        self.carry = bytes[whole..].to_vec();
        self.emit(&bytes[..whole])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.carry.is_empty() {
            let carry = std::mem::take(&mut self.carry);
            self.emit(&carry)?;
        }
        self.inner.flush()
    }
}

impl Drop for TerminalSafe<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn through(colour: bool, pieces: &[&[u8]]) -> String {
        let mut sink = Vec::new();
        {
            let mut w = TerminalSafe::new(&mut sink, colour);
            for p in pieces {
                w.write_all(p).unwrap_or_default();
            }
        }
        String::from_utf8(sink).unwrap_or_default()
    }

    #[test]
    fn issue_14_control_characters_are_escaped_and_own_colours_kept() {
        let hostile = "\x1b[31mX\x1b]0;p\x07";
        assert_eq!(clean(hostile), "\\x1b[31mX\\x1b]0;p\\x07");
        assert_eq!(clean("a\tb\u{9b}c"), "a\\x09b\\x9bc");
        assert!(matches!(clean("nginx"), Cow::Borrowed(_)));
        assert_eq!(clean_lines("a\nb\x1b"), "a\nb\\x1b");
        // Without colour nothing raw gets through; with colour only syslens's own.
        assert_eq!(
            through(false, &[b"\x1b[1mhi\x1b[0m\n"]),
            "\\x1b[1mhi\\x1b[0m\n"
        );
        assert_eq!(
            through(true, &[b"\x1b[1mhi\x1b[0m\n"]),
            "\x1b[1mhi\x1b[0m\n"
        );
        assert_eq!(through(true, &[b"\x1b]0;p\x07"]), "\\x1b]0;p\\x07");
        assert_eq!(through(true, &[b"\x1b[2J"]), "\\x1b[2J");
    }

    #[test]
    fn a_character_split_across_writes_is_joined() {
        let csi = "\u{9b}".as_bytes();
        assert_eq!(through(false, &[&csi[..1], &csi[1..]]), "\\x9b");
        let e = "é".as_bytes();
        assert_eq!(through(false, &[b"caf", &e[..1], &e[1..], b"!"]), "café!");
    }
}
