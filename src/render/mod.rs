//! Output formats: text for people, JSON for programs. Everything measured arrives
//! here as figures and tables; this layer only formats.

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::model::figure::{Unit, Value};
pub use crate::model::units::{bytes, duration};

pub mod html;
pub mod learn;
pub mod plot_check;
pub mod safe;
pub mod text;
pub mod window;

/// The width text output fits when neither the terminal nor `COLUMNS` says.
pub const WIDTH: usize = 100;

/// The narrowest width laid out: below it the fixed columns (figures, metrics) cannot
/// shrink further, and lines are left to the terminal.
pub const MIN_WIDTH: usize = 40;

/// The widest width laid out, whatever the terminal or `COLUMNS` claims.
pub const MAX_WIDTH: usize = 500;

/// The width every text command lays out to: the terminal's when stdout is one
/// (`tcgetwinsize`), else `COLUMNS`, else [`WIDTH`] (see [`width_from`]).
pub fn width() -> usize {
    let out = io::stdout();
    let tty = out
        .is_terminal()
        .then(|| rustix::termios::tcgetwinsize(&out).ok())
        .flatten()
        .map(|w| usize::from(w.ws_col));
    width_from(tty, std::env::var("COLUMNS").ok().as_deref())
}

/// The width from the terminal's columns, else the `COLUMNS` variable, else [`WIDTH`],
/// within [`MIN_WIDTH`]..=[`MAX_WIDTH`]. A zero or unparsable size (a serial console
/// reports 0) falls through to the next source.
pub fn width_from(tty: Option<usize>, columns: Option<&str>) -> usize {
    let env = || columns.and_then(|c| c.trim().parse::<usize>().ok());
    tty.filter(|&w| w > 0)
        .or_else(|| env().filter(|&w| w > 0))
        .unwrap_or(WIDTH)
        .clamp(MIN_WIDTH, MAX_WIDTH)
}

/// Colour and emphasis, off unless stdout is a terminal and NO_COLOR is unset.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Whether to emit colour escapes.
    pub color: bool,
}

/// When to colour, as the `--color` flag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorChoice {
    /// On a terminal, unless NO_COLOR is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorChoice {
    /// Every choice, as `--color` lists them.
    pub const ALL: [ColorChoice; 3] = [ColorChoice::Auto, ColorChoice::Always, ColorChoice::Never];

    /// The choice as written on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ColorChoice::Auto => "auto",
            ColorChoice::Always => "always",
            ColorChoice::Never => "never",
        }
    }
}

impl Style {
    /// The style `choice` asks for; `auto` colours a terminal unless NO_COLOR is set.
    pub fn new(choice: ColorChoice) -> Style {
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            // https://no-color.org: any non-empty NO_COLOR disables colour.
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && io::stdout().is_terminal()
            }
        };
        Style { color }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    /// Bold, for headings.
    pub fn heading(&self, s: &str) -> String {
        self.paint("1", s)
    }

    /// Dim, for sources and remarks.
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    /// Yellow, for warnings.
    pub fn warn(&self, s: &str) -> String {
        self.paint("33", s)
    }

    /// Green, for what is fine.
    pub fn good(&self, s: &str) -> String {
        self.paint("32", s)
    }

    /// Red, for errors and failed claims.
    pub fn bad(&self, s: &str) -> String {
        self.paint("31", s)
    }
}

/// Writes any report as pretty JSON followed by a newline.
pub fn json<T: Serialize>(out: &mut dyn Write, value: &T) -> io::Result<()> {
    // io::Error::from keeps an I/O error's kind, so a closed pipe stays BrokenPipe and
    // ends quietly like text output (issue 14).
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::from)?;
    writeln!(out)
}

/// A number with its unit, for people.
pub fn value(v: &Value, unit: Unit) -> String {
    let num = match v {
        Value::Unsigned(n) => *n as f64,
        Value::Signed(n) => *n as f64,
        Value::Float(f) => *f,
        Value::Text(t) => return safe::clean(t).into_owned(),
        Value::List(l) if l.is_empty() => return "none".to_owned(),
        Value::List(l) => return safe::clean(&l.join(", ")).into_owned(),
    };
    match unit {
        Unit::Bytes => bytes(num),
        Unit::BytesPerSecond => format!("{}/s", bytes(num)),
        Unit::Count => match v {
            Value::Float(f) => format!("{f:.1}"),
            _ => format!("{num:.0}"),
        },
        Unit::PerSecond => format!("{num:.1}/s"),
        Unit::Seconds => duration(num),
        Unit::Nanoseconds => duration(num / 1e9),
        Unit::Ratio => format!("{:.1}%", num * 100.0),
        Unit::None => match v {
            Value::Float(f) => format!("{f:.2}"),
            _ => format!("{num:.0}"),
        },
    }
}

/// The columns `s` takes on a terminal: wide (East Asian) characters count two,
/// combining marks and zero-width characters none.
pub fn display_width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// `s` followed by spaces to `width` display columns (`format!`'s `{:<w$}` counts
/// characters, not columns).
pub fn pad_end(s: &str, width: usize) -> String {
    format!("{s}{:1$}", "", width.saturating_sub(display_width(s)))
}

/// `s` after spaces to `width` display columns, for numbers.
pub fn pad_start(s: &str, width: usize) -> String {
    format!("{:1$}{s}", "", width.saturating_sub(display_width(s)))
}

/// Breaks one unbreakable value (a thread name, a path) into pieces of at most `width`
/// display columns, each break after a separator (`/ - : _ . @`) where one falls in the
/// piece's second half: for a column too narrow for the value, which then continues on
/// the next lines rather than being cut. Control characters are shown escaped.
pub fn break_value(s: &str, width: usize) -> Vec<String> {
    let s: &str = &safe::clean(s);
    let width = width.max(1);
    let mut pieces = Vec::new();
    let mut left = s;
    while display_width(left) > width {
        // The longest prefix that fits, in char boundaries.
        let mut end = 0;
        let mut w = 0;
        for (i, c) in left.char_indices() {
            let cw = unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
            if w + cw > width {
                break;
            }
            w += cw;
            end = i + c.len_utf8();
        }
        if end == 0 {
            // A character wider than the width: it goes alone.
            end = left.chars().next().map_or(left.len(), char::len_utf8);
        }
        let fits = &left[..end];
        let at = fits
            .char_indices()
            .rev()
            .find(|&(i, c)| i + 1 >= end / 2 && "/-:_.@".contains(c))
            .map(|(i, c)| i + c.len_utf8())
            .unwrap_or(end);
        pieces.push(left[..at].to_owned());
        left = &left[at..];
    }
    if !left.is_empty() || pieces.is_empty() {
        pieces.push(left.to_owned());
    }
    pieces
}

/// Wraps `s` at its spaces to lines of at most `width` display columns.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    wrap_hanging(s, width, width)
}

/// Wraps `s` at its spaces: the first line holds at most `first` display columns, the
/// others `rest` (the difference is a hanging indent the caller writes). A word longer
/// than its line is never cut: it stays whole, on a line of its own. The spaces between
/// two words on one line are kept as they were (a double space stays double); those at
/// a break are dropped. Control characters are shown escaped ([`safe::clean`]).
pub fn wrap_hanging(s: &str, first: usize, rest: usize) -> Vec<String> {
    let s: &str = &safe::clean(s);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_w = 0;
    let mut left = s;
    loop {
        let after = left.trim_start_matches(' ');
        let gap = &left[..left.len() - after.len()];
        if after.is_empty() {
            break;
        }
        let (word, next) = after.split_at(after.find(' ').unwrap_or(after.len()));
        left = next;
        let word_w = display_width(word);
        let room = if lines.is_empty() { first } else { rest };
        if !line.is_empty() {
            if line_w + gap.len() + word_w > room {
                lines.push(std::mem::take(&mut line));
                line_w = 0;
            } else {
                line.push_str(gap);
                line_w += gap.len();
            }
        }
        line.push_str(word);
        line_w += word_w;
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Writes `s` wrapped to `width` display columns: the first line after `lead`, the
/// others after `indent` (both plain text, counted in the width); `paint` styles each
/// line's text (not its lead). Nothing is written for an empty `s`.
pub fn write_wrapped(
    out: &mut dyn Write,
    s: &str,
    width: usize,
    lead: &str,
    indent: &str,
    paint: impl Fn(&str) -> String,
) -> io::Result<()> {
    let first = width.saturating_sub(display_width(lead));
    let rest = width.saturating_sub(display_width(indent));
    for (i, line) in wrap_hanging(s, first, rest).iter().enumerate() {
        writeln!(out, "{}{}", if i == 0 { lead } else { indent }, paint(line))?;
    }
    Ok(())
}

/// Text as it is: the `paint` of [`write_wrapped`] for unstyled lines.
pub fn plain(s: &str) -> String {
    s.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_units() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
        assert_eq!(duration(2.5e-6), "2.5 us");
        assert_eq!(value(&Value::Float(0.123), Unit::Ratio), "12.3%");
        assert_eq!(value(&Value::List(vec![]), Unit::None), "none");
        assert_eq!(value(&Value::Unsigned(1500), Unit::Nanoseconds), "1.5 us");
    }

    #[test]
    fn issue_19_break_value_keeps_every_character_and_breaks_after_separators() {
        let name = "kworker/1:1-cgroup_pidlist_destroy";
        let pieces = break_value(name, 20);
        assert_eq!(pieces, ["kworker/1:1-cgroup_", "pidlist_destroy"]);
        assert_eq!(pieces.concat(), name);
        // No separator in the second half: a hard break at the width.
        assert_eq!(break_value("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(break_value("short", 10), ["short"]);
        assert_eq!(break_value("", 10), [""]);
        // Wide characters count two columns and are never split.
        assert_eq!(break_value("日本語", 4), ["日本", "語"]);
        for p in break_value(name, 7) {
            assert!(display_width(&p) <= 7, "{p}");
        }
    }

    #[test]
    fn issue_19_width_is_the_terminal_then_columns_then_100() {
        assert_eq!(width_from(Some(132), Some("80")), 132);
        assert_eq!(width_from(None, Some("80")), 80);
        assert_eq!(width_from(None, Some(" 90\n")), 90);
        assert_eq!(width_from(None, None), WIDTH);
        // A serial console reports 0 columns; garbage in COLUMNS is ignored.
        assert_eq!(width_from(Some(0), Some("72")), 72);
        assert_eq!(width_from(None, Some("wide")), WIDTH);
        assert_eq!(width_from(None, Some("0")), WIDTH);
        assert_eq!(width_from(Some(10), None), MIN_WIDTH);
        assert_eq!(width_from(None, Some("100000")), MAX_WIDTH);
    }

    #[test]
    fn issue_19_wrap_breaks_at_words_and_never_cuts_one() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("aa bb cc", 8), vec!["aa bb cc"]);
        // A word longer than the line stays whole, on a line of its own.
        assert_eq!(
            wrap("see /proc/24585/status now", 8),
            vec!["see", "/proc/24585/status", "now"]
        );
        assert_eq!(wrap("/proc/24585/status", 4), vec!["/proc/24585/status"]);
        // Spaces inside a line are kept; at a break, and at either end, dropped.
        assert_eq!(wrap("  a  b   ", 10), vec!["a  b"]);
        assert_eq!(wrap("a  b", 2), vec!["a", "b"]);
        assert!(wrap("", 10).is_empty());
        assert!(wrap("   ", 10).is_empty());
        // Control characters arrive escaped, and are measured as shown.
        assert_eq!(wrap("a\tb c", 5), vec!["a\\x09b", "c"]);
        // Every line fits, or is one word.
        let text = "the kernel walks the target's page tables under its mmap lock to build it";
        for w in 1..40 {
            for l in wrap(text, w) {
                assert!(l.len() <= w || !l.contains(' '), "{w}: {l:?}");
            }
            assert_eq!(wrap(text, w).join(" "), text, "{w}: a word was lost or cut");
        }
    }

    #[test]
    fn issue_19_wrap_hangs_the_lines_after_the_first() {
        assert_eq!(
            wrap_hanging("one two three four", 7, 5),
            vec!["one two", "three", "four"]
        );
        let mut out = Vec::new();
        write_wrapped(&mut out, "alpha beta gamma", 12, "  - ", "    ", plain).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "  - alpha\n    beta\n    gamma\n"
        );
        let mut out = Vec::new();
        write_wrapped(&mut out, "ab cd", 20, "> ", "  ", |l| format!("[{l}]")).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "> [ab cd]\n");
    }

    #[test]
    fn issue_19_wrap_counts_display_columns_not_characters() {
        // Three characters, six columns each side: together 13 columns.
        assert_eq!(display_width("日本語"), 6);
        assert_eq!(wrap("日本語 テキスト", 10), vec!["日本語", "テキスト"]);
        assert_eq!(wrap("日本語 テキスト", 15), vec!["日本語 テキスト"]);
        // A combining accent takes no column of its own.
        assert_eq!(display_width("cafe\u{301}"), 4);
        assert_eq!(wrap("cafe\u{301} noir", 9), vec!["cafe\u{301} noir"]);
        assert_eq!(pad_end("日本", 6), "日本  ");
        assert_eq!(pad_start("日本", 6), "  日本");
    }
}
