//! The shared-libraries lesson: relocations under lazy and eager binding, and what Pss
//! says of a library many processes map.

use crate::learn::{evidence, AnswerKind, Choice, Exercise, Lesson, Measured, Question, Tolerance};

fn relocations(r: &crate::lab::report::LabReport) -> Result<(f64, f64, String), String> {
    evidence(r, "relocations at start (lazy -> LD_BIND_NOW)")
}

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "/bin/true is started with LD_DEBUG=statistics, lazily bound and with \
            LD_BIND_NOW=1; a library is dlopen'ed with RTLD_LAZY and RTLD_NOW; a child reads \
            its libc mappings' Rss and Pss in smaps.",
    draws: &[],
    questions: &[
        Question {
            id: "lazy_relocations",
            ask: |_| "How many relocations does the dynamic linker process at the start of /bin/true, lazily bound (LD_DEBUG=statistics counts them)?".into(),
            answer: AnswerKind::Number { unit: "relocations", tolerance: Tolerance::Factor(2.0) },
            measure: |r, _| relocations(r).map(|(lazy, _, from)| Measured::exact(lazy, from)),
            explain: |_, _| "Each shared object's data relocations (pointers to fix up) are processed at load; function calls go through the PLT and are bound on their first call, so the count at start is what the program's and libc's data need, a few dozen to hundreds for a small program.".into(),
            quotes: &["LD_BIND_NOW makes the dynamic linker"],
        },
        Question {
            id: "bind_now",
            ask: |_| "With LD_BIND_NOW=1, does the dynamic linker process more, the same, or fewer relocations at start?".into(),
            answer: AnswerKind::Choice(&[
                Choice { id: "more", text: "more" },
                Choice { id: "same", text: "the same" },
                Choice { id: "fewer", text: "fewer" },
            ]),
            measure: |r, _| {
                let (lazy, now, from) = relocations(r)?;
                let id = if now > lazy { "more" } else if now < lazy { "fewer" } else { "same" };
                Ok(Measured::option(id, from))
            },
            explain: |_, _| "LD_BIND_NOW binds every PLT entry before main, including functions never called: more relocations at start, none later. Distributions build hardened binaries with -z now (full RELRO) for the same reason: the GOT can then be made read-only.".into(),
            quotes: &[],
        },
        Question {
            id: "libc_pss",
            ask: |_| "libc is mapped by many processes. In this process's smaps, how does libc's Pss compare with its Rss?".into(),
            answer: AnswerKind::Choice(&[
                Choice { id: "equal", text: "Pss equals Rss" },
                Choice { id: "less", text: "Pss is less than Rss" },
                Choice { id: "more", text: "Pss is more than Rss" },
            ]),
            measure: |r, _| {
                let (rss, pss, from) = evidence(r, "Rss -> Pss")?;
                let id = if pss < rss { "less" } else if pss > rss { "more" } else { "equal" };
                Ok(Measured::option(id, from))
            },
            explain: |_, _| "Pss divides each resident page by the number of processes mapping it: a library shared by N processes costs each about 1/N of its pages. Summing Rss over processes counts shared libraries N times; summing Pss does not.".into(),
            quotes: &["libc's Pss < Rss"],
        },
    ],
    exercise: Exercise {
        goal: "make dlopen with RTLD_NOW take at least 1.2x as long as with RTLD_LAZY",
        hint: "which library is loaded, and how many functions must RTLD_NOW bind at once? (--params lists library)",
        reached: |r| {
            let timing = |mode: &str| r.metrics.iter().find(|m| m.name.starts_with("dlopen(") && m.name.contains(mode)).ok_or(format!("no {mode} timing"));
            let (now, lazy) = (timing("RTLD_NOW")?, timing("RTLD_LAZY")?);
            let ratio = Measured::ratio(now, lazy)?;
            Ok((ratio.value >= 1.2, format!("RTLD_NOW at {}x RTLD_LAZY", crate::learn::trim(ratio.value))))
        },
        explain: "RTLD_NOW resolves every undefined function of the library before dlopen returns; RTLD_LAZY leaves them to their first call. The difference grows with the number of functions the library imports.",
    },
};
