//! Output formats: text for people, JSON for programs. Everything measured arrives
//! here as figures and tables; this layer only formats.

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

use crate::model::figure::{Unit, Value};
pub use crate::model::units::{bytes, duration};

pub mod html;
pub mod learn;
pub mod safe;
pub mod text;

/// Human output fits this many columns.
pub const WIDTH: usize = 100;

/// The width for tables that can use more room: `COLUMNS` when set, else the
/// terminal's width, else [`WIDTH`]; never below [`WIDTH`].
pub fn table_width() -> usize {
    let from_env = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse().ok());
    let from_tty = || {
        let out = io::stdout();
        out.is_terminal()
            .then(|| rustix::termios::tcgetwinsize(&out).ok())
            .flatten()
            .map(|w| usize::from(w.ws_col))
    };
    from_env
        .or_else(from_tty)
        .unwrap_or(WIDTH)
        .clamp(WIDTH, 400)
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

/// Cuts `s` to `width` characters, marking the cut with an ellipsis at the end.
pub fn fit_end(s: &str, width: usize) -> String {
    let s: &str = &safe::clean(s);
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Cuts `s` to `width` characters keeping the end (paths: the file name matters).
/// Like every layout helper here, it shows control characters escaped ([`safe::clean`]).
pub fn fit_start(s: &str, width: usize) -> String {
    let s: &str = &safe::clean(s);
    let n = s.chars().count();
    if n <= width {
        return s.to_owned();
    }
    let mut out = String::from("…");
    out.extend(s.chars().skip(n - width.saturating_sub(1)));
    out
}

/// Wraps words to lines of at most `width` characters.
pub fn wrap(s: &str, width: usize) -> Vec<String> {
    let s: &str = &safe::clean(s);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
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
    fn fitting() {
        assert_eq!(fit_end("abcdef", 4), "abc…");
        assert_eq!(fit_start("/a/b/c/file", 6), "…/file");
        assert_eq!(fit_start("short", 10), "short");
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
    }
}
