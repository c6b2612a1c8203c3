//! Pressure stall information: /proc/pressure/* and a v2 cgroup's *.pressure files.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{lines, tokens};

/// One line of a pressure file: the share of wall time in which some (or all) tasks
/// were stalled on the resource, averaged over 10, 60 and 300 s, and the total stall.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PsiLine {
    /// Share of the last 10 s stalled, in percent.
    pub avg10: f64,
    /// Share of the last 60 s stalled, in percent.
    pub avg60: f64,
    /// Share of the last 300 s stalled, in percent.
    pub avg300: f64,
    /// Total time stalled, in microseconds.
    pub total_us: u64,
}

/// A pressure file: `some` (at least one task stalled) and `full` (all non-idle tasks).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Psi {
    /// At least one task was stalled.
    pub some: PsiLine,
    /// Absent for the system-wide cpu file on older kernels.
    pub full: Option<PsiLine>,
}

fn parse_line(rest: &[u8]) -> Option<PsiLine> {
    let mut line = PsiLine {
        avg10: 0.0,
        avg60: 0.0,
        avg300: 0.0,
        total_us: 0,
    };
    let mut seen = 0;
    for t in tokens(rest) {
        let eq = t.iter().position(|&b| b == b'=')?;
        let (k, v) = (&t[..eq], std::str::from_utf8(&t[eq + 1..]).ok()?);
        match k {
            b"avg10" => line.avg10 = v.parse().ok()?,
            b"avg60" => line.avg60 = v.parse().ok()?,
            b"avg300" => line.avg300 = v.parse().ok()?,
            b"total" => line.total_us = v.parse().ok()?,
            _ => continue,
        }
        seen += 1;
    }
    (seen == 4).then_some(line)
}

/// Parses a pressure file; malformed without a valid `some` line.
pub fn parse_psi(buf: &[u8]) -> Val<Psi> {
    let mut some = None;
    let mut full = None;
    for line in lines(buf) {
        if let Some(rest) = line.strip_prefix(b"some ") {
            some = parse_line(rest);
        } else if let Some(rest) = line.strip_prefix(b"full ") {
            full = parse_line(rest);
        }
    }
    match some {
        Some(some) => Ok(Psi { some, full }),
        None => Err(Missing::malformed("pressure", "no valid 'some' line")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_some_and_full() {
        let p = parse_psi(
            b"some avg10=1.50 avg60=0.20 avg300=0.00 total=12345\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n",
        )
        .unwrap();
        assert_eq!(p.some.avg10, 1.5);
        assert_eq!(p.some.total_us, 12345);
        assert_eq!(p.full.unwrap().total_us, 7);
        assert!(parse_psi(b"some avg10=x").is_err());
    }
}
