//! Byte-level helpers shared by every hand-written parser. The per-sample files are
//! parsed by hand, without per-line allocation: the general procfs crate allocates
//! ~237 times per process for stat + status + smaps_rollup (measured on the dev host).

use std::fmt;

use serde::{Serialize, Serializer};

/// Splits `buf` into lines without the trailing newline.
pub fn lines(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    buf.split(|&b| b == b'\n').filter(|l| !l.is_empty())
}

/// `Key:   value...` -> (`Key`, `value...`), the value with leading blanks removed.
pub fn key_value(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let colon = line.iter().position(|&b| b == b':')?;
    Some((&line[..colon], trim_start(&line[colon + 1..])))
}

/// `s` without leading ASCII whitespace.
pub fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

/// `s` without leading and trailing ASCII whitespace.
pub fn trim(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |i| i + 1);
    &s[..end]
}

/// The first whitespace-separated token.
pub fn first_token(s: &[u8]) -> &[u8] {
    let s = trim_start(s);
    let end = s
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[..end]
}

/// Whitespace-separated tokens.
pub fn tokens(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|b| b.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
}

/// Parses an unsigned decimal number (the first token), with overflow checks.
pub fn u64_dec(s: &[u8]) -> Option<u64> {
    let t = first_token(s);
    if t.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &b in t {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(v)
}

/// Parses a signed decimal number (the first token), with overflow checks.
pub fn i64_dec(s: &[u8]) -> Option<i64> {
    let t = first_token(s);
    match t.first() {
        Some(b'-') => u64_dec(&t[1..])
            .and_then(|v| i64::try_from(v).ok())
            .map(|v| -v),
        _ => u64_dec(t).and_then(|v| i64::try_from(v).ok()),
    }
}

/// `1234 kB` -> bytes.
pub fn kb_as_bytes(s: &[u8]) -> Option<u64> {
    u64_dec(s)?.checked_mul(1024)
}

/// A hexadecimal mask such as SigBlk's `0000000000010000`.
pub fn u64_hex(s: &[u8]) -> Option<u64> {
    let t = first_token(s);
    if t.is_empty() || t.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in t {
        let d = (b as char).to_digit(16)?;
        v = (v << 4) | u64::from(d);
    }
    Some(v)
}

/// Bytes to text for display; invalid UTF-8 is replaced, not rejected.
pub fn text(s: &[u8]) -> String {
    String::from_utf8_lossy(s).into_owned()
}

/// A short string kept inline, so hot-path samples never allocate for names.
/// Longer input is cut at a character boundary.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineStr<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> InlineStr<N> {
    /// The text of `s` (invalid UTF-8 replaced), cut to at most N bytes.
    pub fn new(s: &[u8]) -> Self {
        let s = String::from_utf8_lossy(s);
        let mut cut = s.len().min(N).min(u8::MAX as usize);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut bytes = [0u8; N];
        bytes[..cut].copy_from_slice(&s.as_bytes()[..cut]);
        InlineStr {
            len: cut as u8,
            bytes,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl<const N: usize> Default for InlineStr<N> {
    fn default() -> Self {
        InlineStr {
            len: 0,
            bytes: [0; N],
        }
    }
}

impl<const N: usize> fmt::Debug for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> fmt::Display for InlineStr<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> Serialize for InlineStr<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Decodes the octal escapes (`\040`) that mountinfo and /proc/PID/status use.
pub fn unescape_octal(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\'
            && i + 4 <= s.len()
            && s[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (s[i + 1] - b'0') as u32 * 64
                + (s[i + 2] - b'0') as u32 * 8
                + (s[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_23_trim_keeps_the_last_byte_that_is_not_space() {
        assert_eq!(trim(b"  ab c \n"), b"ab c");
        assert_eq!(trim(b"x"), b"x");
        assert_eq!(trim(b"\tx"), b"x");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(trim(b""), b"");
    }

    #[test]
    fn numbers() {
        assert_eq!(u64_dec(b"  123 kB"), Some(123));
        assert_eq!(u64_dec(b"18446744073709551616"), None);
        assert_eq!(u64_dec(b"x"), None);
        assert_eq!(i64_dec(b"-1000"), Some(-1000));
        assert_eq!(kb_as_bytes(b"4 kB"), Some(4096));
        assert_eq!(u64_hex(b"0000000000010000"), Some(0x10000));
        assert_eq!(u64_hex(b"zz"), None);
    }

    #[test]
    fn key_values() {
        assert_eq!(
            key_value(b"VmRSS:\t  1234 kB"),
            Some((&b"VmRSS"[..], &b"1234 kB"[..]))
        );
        assert_eq!(key_value(b"nocolon"), None);
    }

    #[test]
    fn inline_str_cuts_on_char_boundary() {
        let s = InlineStr::<4>::new("aé€".as_bytes());
        assert_eq!(s.as_str(), "aé");
    }

    #[test]
    fn octal_escapes() {
        assert_eq!(unescape_octal(br"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_octal(br"/x\04"), r"/x\04");
    }
}
