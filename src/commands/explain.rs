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
    /// What a learner asks next, one short item each ending with where to read it: the
    /// list under explain.md's `## More` heading.
    pub more: Vec<&'static str>,
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

/// The line of explain.md that starts its "More" list.
const MORE_HEADING: &str = "\n## More\n";

/// Splits explain.md into its paragraphs (separated by blank lines) and the items of its
/// "More" list (lines starting with `- ` after the `## More` line).
fn split_page(text: &'static str) -> (Vec<&'static str>, Vec<&'static str>) {
    let (body, more) = text.split_once(MORE_HEADING).unwrap_or((text, ""));
    let paragraphs = body
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let items = more
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(str::trim)
        .collect();
    (paragraphs, items)
}

fn dir_name(id: ConceptId) -> String {
    id.slug().replace('-', "_")
}

/// The explanation of `id`, from the texts and lab source in its room.
pub fn explanation(id: ConceptId) -> Explanation {
    let d = def(id);
    let (text, read, source) = (d.explain, d.read_next, d.lab_source);
    let (paragraphs, more) = split_page(text);
    Explanation {
        concept: id,
        title: id.title(),
        paragraphs,
        more,
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

    /// The man pages (`name(section)`) and kernel Documentation paths `text` names,
    /// outside `code` spans (where `malloc_trim(0)` is a call, not a page).
    fn references(text: &str) -> Vec<String> {
        let prose: String = text.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let man = regex::Regex::new(r"[A-Za-z0-9_.+:-]+\([0-9][^)]*\)").unwrap();
        let docs = regex::Regex::new(r"Documentation/[^\s,;]*").unwrap();
        let pages = man.find_iter(&prose).map(|m| m.as_str());
        // A path ends at a space or list punctuation; a full stop or bracket after it is
        // the sentence's.
        let paths = docs
            .find_iter(&prose)
            .map(|m| m.as_str().trim_end_matches(['.', ')']));
        pages.chain(paths).map(str::to_owned).collect()
    }

    /// Whether `r` has a form a reader can look up: `man SECTION NAME`, or a path in the
    /// kernel tree's Documentation/ (a page, a plain-text file, a directory or an ABI file).
    fn can_be_looked_up(r: &str) -> bool {
        let man = regex::Regex::new(r"^[a-z_][a-z0-9_.+:-]*\([1-8][a-z]*\)$").unwrap();
        let docs =
            regex::Regex::new(r"^Documentation/([A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]*$").unwrap();
        man.is_match(r)
            || (docs.is_match(r)
                && (r.ends_with(".rst")
                    || r.ends_with(".txt")
                    || r.ends_with('/')
                    || r.starts_with("Documentation/ABI/")))
    }

    #[test]
    fn issue_21_every_page_has_a_more_list_with_references() {
        for c in &CONCEPTS {
            let e = explanation(c.id);
            let text = def(c.id).explain;
            let listed = text.split_once(MORE_HEADING).map_or(0, |(_, more)| {
                more.lines().filter(|l| !l.trim().is_empty()).count()
            });
            assert!(!e.more.is_empty(), "{}: no \"## More\" list", c.slug);
            assert_eq!(
                e.more.len(),
                listed,
                "{}: a More line without \"- \"",
                c.slug
            );
            for m in &e.more {
                assert!(
                    !references(m).is_empty(),
                    "{}: names nothing to read: {m}",
                    c.slug
                );
            }
            assert!(
                e.paragraphs.iter().all(|p| !p.contains("## ")),
                "{}: a heading inside the paragraphs",
                c.slug
            );
        }
    }

    /// The kernel Documentation paths the pages may name, each checked to exist in
    /// torvalds/linux (a path missing here fails the test, so a typo is caught).
    const KERNEL_DOCS: &[&str] = &[
        "Documentation/ABI/stable/sysfs-block",
        "Documentation/accounting/psi.rst",
        "Documentation/admin-guide/blockdev/zram.rst",
        "Documentation/admin-guide/cgroup-v1/",
        "Documentation/admin-guide/cgroup-v2.rst",
        "Documentation/admin-guide/ext4.rst",
        "Documentation/admin-guide/kernel-parameters.txt",
        "Documentation/admin-guide/mm/concepts.rst",
        "Documentation/admin-guide/mm/multigen_lru.rst",
        "Documentation/admin-guide/mm/transhuge.rst",
        "Documentation/admin-guide/mm/userfaultfd.rst",
        "Documentation/admin-guide/mm/zswap.rst",
        "Documentation/admin-guide/sysctl/fs.rst",
        "Documentation/admin-guide/sysctl/kernel.rst",
        "Documentation/admin-guide/sysctl/user.rst",
        "Documentation/admin-guide/sysctl/vm.rst",
        "Documentation/arch/x86/pti.rst",
        "Documentation/arch/x86/tlb.rst",
        "Documentation/core-api/errseq.rst",
        "Documentation/core-api/memory-allocation.rst",
        "Documentation/filesystems/proc.rst",
        "Documentation/filesystems/tmpfs.rst",
        "Documentation/locking/",
        "Documentation/locking/pi-futex.rst",
        "Documentation/locking/robust-futexes.rst",
        "Documentation/memory-barriers.txt",
        "Documentation/mm/overcommit-accounting.rst",
        "Documentation/mm/slub.rst",
        "Documentation/scheduler/sched-bwc.rst",
        "Documentation/scheduler/sched-deadline.rst",
        "Documentation/scheduler/sched-design-CFS.rst",
        "Documentation/scheduler/sched-eevdf.rst",
        "Documentation/scheduler/sched-ext.rst",
        "Documentation/scheduler/sched-rt-group.rst",
        "Documentation/userspace-api/futex2.rst",
        "Documentation/userspace-api/seccomp_filter.rst",
    ];

    #[test]
    fn issue_21_references_resolve() {
        assert_eq!(
            references("see mmap(2), `malloc_trim(0)` and Documentation/mm/slub.rst."),
            ["mmap(2)", "Documentation/mm/slub.rst"]
        );
        assert!(can_be_looked_up("systemd.exec(5)") && can_be_looked_up("ld.so(8)"));
        assert!(!can_be_looked_up("mmap(9)") && !can_be_looked_up("Documentation/mm/slub"));
        for c in &CONCEPTS {
            let e = explanation(c.id);
            let texts = e.paragraphs.iter().chain(&e.more).chain(&e.read_next);
            let refs: Vec<String> = texts.flat_map(|t| references(t)).collect();
            assert!(refs.len() >= 3, "{}: {refs:?}", c.slug);
            for r in refs {
                assert!(can_be_looked_up(&r), "{}: {r:?}", c.slug);
                assert!(
                    !r.starts_with("Documentation/") || KERNEL_DOCS.contains(&r.as_str()),
                    "{}: {r:?} is not among the kernel's Documentation paths",
                    c.slug
                );
            }
        }
    }

    #[test]
    fn issue_21_every_lab_has_one_pair_of_quote_markers() {
        for c in &CONCEPTS {
            let src = def(c.id).lab_source;
            let at = |m: &str| -> Vec<usize> {
                src.lines()
                    .enumerate()
                    .filter(|(_, l)| l.trim_start().starts_with(m))
                    .map(|(i, _)| i)
                    .collect()
            };
            let (begin, end) = (at("// explain-begin"), at("// explain-end"));
            assert!(
                begin.len() == 1 && end.len() == 1 && begin[0] < end[0],
                "{}: explain-begin at {begin:?}, explain-end at {end:?}",
                c.slug
            );
        }
    }

    #[test]
    fn issue_21_storage_quotes_the_directory_fsync() {
        let code = explanation(ConceptId::Storage).code;
        let (rename, dir_sync) = (code.find("rename("), code.find("File::open(dir)"));
        assert!(
            matches!((rename, dir_sync), (Some(r), Some(d)) if r < d),
            "{code}"
        );
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
