//! /proc/PID/limits: the soft and hard resource limits.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{lines, text, tokens};

/// A limit value: a number, or unlimited (RLIM_INFINITY).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitValue {
    /// No limit (RLIM_INFINITY).
    Unlimited,
    /// A finite limit, in the limit's unit.
    Value(u64),
}

/// One line of /proc/PID/limits.
#[derive(Debug, Clone, Serialize)]
pub struct Limit {
    /// As the kernel names it: "Max open files".
    pub name: String,
    /// The soft limit: what the kernel enforces.
    pub soft: LimitValue,
    /// The hard limit: the ceiling an unprivileged process may raise the soft one to.
    pub hard: LimitValue,
    /// "files", "bytes", "seconds"; empty where the kernel prints none.
    pub unit: String,
}

fn value(tok: &[u8]) -> Option<LimitValue> {
    if tok == b"unlimited" {
        Some(LimitValue::Unlimited)
    } else {
        crate::parse::u64_dec(tok).map(LimitValue::Value)
    }
}

/// Parses the table. Names contain spaces and some rows have no unit column, so each
/// row is read from the right: [unit] hard soft, and the name is what remains.
pub fn parse_limits(buf: &[u8]) -> Val<Vec<Limit>> {
    let mut out = Vec::new();
    for line in lines(buf).skip(1) {
        let toks: Vec<&[u8]> = tokens(line).collect();
        let mut end = toks.len();
        let unit = match toks.last() {
            Some(t) if value(t).is_none() => {
                end -= 1;
                text(t)
            }
            _ => String::new(),
        };
        if end < 3 {
            return Err(Missing::malformed(
                "limits",
                format!("short row: {}", text(line)),
            ));
        }
        let (Some(soft), Some(hard)) = (value(toks[end - 2]), value(toks[end - 1])) else {
            return Err(Missing::malformed(
                "limits",
                format!("bad values: {}", text(line)),
            ));
        };
        let name = toks[..end - 2]
            .iter()
            .map(|t| text(t))
            .collect::<Vec<_>>()
            .join(" ");
        out.push(Limit {
            name,
            soft,
            hard,
            unit,
        });
    }
    if out.is_empty() {
        return Err(Missing::malformed("limits", "no rows"));
    }
    Ok(out)
}

/// Finds one limit by its kernel name.
pub fn find<'a>(limits: &'a [Limit], name: &str) -> Option<&'a Limit> {
    limits.iter().find(|l| l.name == name)
}

/// Reads only the soft and hard "Max open files" limit: the one figure the per-pass
/// process table needs, without building the whole table.
pub fn parse_nofile(buf: &[u8]) -> Val<(LimitValue, LimitValue)> {
    let line = lines(buf)
        .find(|l| l.starts_with(b"Max open files"))
        .ok_or_else(|| Missing::not_in_kernel("Max open files"))?;
    let mut t = tokens(&line[b"Max open files".len()..]);
    match (t.next().and_then(value), t.next().and_then(value)) {
        (Some(s), Some(h)) => Ok((s, h)),
        _ => Err(Missing::malformed("limits", "Max open files")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] =
        b"Limit                     Soft Limit           Hard Limit           Units     \n\
Max cpu time              unlimited            unlimited            seconds   \n\
Max open files            1024                 1048576              files     \n\
Max nice priority         0                    0                    \n\
Max realtime timeout      unlimited            unlimited            us        \n";

    #[test]
    fn parses_rows_with_and_without_units() {
        let l = parse_limits(SAMPLE).unwrap();
        assert_eq!(l.len(), 4);
        let nofile = find(&l, "Max open files").unwrap();
        assert_eq!(nofile.soft, LimitValue::Value(1024));
        assert_eq!(nofile.hard, LimitValue::Value(1048576));
        assert_eq!(nofile.unit, "files");
        let nice = find(&l, "Max nice priority").unwrap();
        assert_eq!(nice.unit, "");
        assert_eq!(
            find(&l, "Max cpu time").unwrap().soft,
            LimitValue::Unlimited
        );
    }

    #[test]
    fn nofile_fast_path_agrees() {
        let (s, h) = parse_nofile(SAMPLE).unwrap();
        assert_eq!(
            (s, h),
            (LimitValue::Value(1024), LimitValue::Value(1048576))
        );
    }

    #[test]
    fn issue_23_a_row_is_a_name_of_one_word_or_more_then_soft_hard_and_unit() {
        let one_word = parse_limits(b"header\nStack 8 9 bytes\nCore 0 0\n").unwrap();
        assert_eq!(find(&one_word, "Stack").unwrap().hard, LimitValue::Value(9));
        assert_eq!(find(&one_word, "Core").unwrap().unit, "");
        assert!(parse_limits(b"header\n8 9 bytes\n").is_err());
    }

    #[test]
    fn garbage_rows_are_malformed() {
        assert!(parse_limits(b"header\nMax open files x y\n").is_err());
        assert!(parse_limits(b"").is_err());
    }
}
