//! `syslens explain`: each concept in a few paragraphs, the lines of its lab that
//! provoke it (quoted from the lab's own source, so they cannot drift), and where to
//! read next. The text lives beside the concept's code, in its room.

use serde::Serialize;

use crate::catalogue::ConceptId;
use crate::concepts::def;

/// What `syslens explain ID` shows of one concept.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The concept explained.
    pub concept: ConceptId,
    /// Its title.
    pub title: &'static str,
    /// The text, paragraph by paragraph (from the concept's explain.md).
    pub paragraphs: Vec<&'static str>,
    /// The lines of the lab between its explain-begin and explain-end markers.
    pub code: String,
    /// The lab file the code is quoted from.
    pub code_file: String,
    /// Where to read next: man pages and kernel documentation (the room's read.md).
    pub read_next: Vec<&'static str>,
}

/// The marked lines of a lab's source, with the common indentation removed.
pub fn marked_lines(source: &str) -> String {
    let lines: Vec<&str> = source
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("// explain-begin"))
        .skip(1)
        .take_while(|l| !l.trim_start().starts_with("// explain-end"))
        .collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Splits a reading list at ", " outside parentheses: `proc(5) (SigPnd, ShdPnd)` is one
/// entry.
fn split_top_level(list: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    let bytes = list.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth -= 1,
            b',' if depth <= 0 && bytes.get(i + 1) == Some(&b' ') => {
                out.push(list[start..i].trim());
                start = i + 2;
            }
            _ => {}
        }
    }
    out.push(list[start..].trim());
    out.retain(|e| !e.is_empty());
    out
}

fn dir_name(id: ConceptId) -> String {
    id.slug().replace('-', "_")
}

/// The explanation of `id`, from the texts and lab source in its room.
pub fn explanation(id: ConceptId) -> Explanation {
    let d = def(id);
    let (text, read, source) = (d.explain, d.read_next, d.lab_source);
    Explanation {
        concept: id,
        title: id.title(),
        paragraphs: text
            .split("\n\n")
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect(),
        code: marked_lines(source),
        code_file: format!("src/concepts/{}/lab.rs", dir_name(id)),
        read_next: split_top_level(read.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::CONCEPTS;

    #[test]
    fn every_concept_has_text_code_and_reading() {
        for c in &CONCEPTS {
            let e = explanation(c.id);
            assert!(e.paragraphs.len() >= 2, "{}: too short", c.slug);
            assert!(
                e.paragraphs
                    .iter()
                    .any(|p| p.contains(&format!("syslens lab {}", c.slug))),
                "{}: must name its lab",
                c.slug
            );
            assert!(
                e.code.lines().count() >= 2,
                "{}: no marked lab code",
                c.slug
            );
            assert!(!e.code.contains("explain-"), "{}: markers leaked", c.slug);
            assert!(
                e.read_next
                    .iter()
                    .any(|r| r.contains('(') || r.contains("Documentation/")),
                "{}: {:?}",
                c.slug,
                e.read_next
            );
        }
    }

    #[test]
    fn issue_21_read_next_is_not_split_inside_parentheses() {
        assert_eq!(
            split_top_level("proc(5) (SigPnd, ShdPnd, SigBlk), signal(7)"),
            ["proc(5) (SigPnd, ShdPnd, SigBlk)", "signal(7)"]
        );
        for c in &CONCEPTS {
            for r in explanation(c.id).read_next {
                let open = r.matches('(').count();
                assert_eq!(open, r.matches(')').count(), "{}: {r:?}", c.slug);
            }
        }
    }

    #[test]
    fn marked_lines_are_dedented() {
        let src = "fn a() {\n    // explain-begin: x\n    let a = 1;\n        let b = 2;\n    // explain-end\n}\n";
        assert_eq!(marked_lines(src), "let a = 1;\n    let b = 2;");
        assert_eq!(marked_lines("no markers"), "");
    }
}
