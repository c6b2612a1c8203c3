//! The slab and buddy lesson: negative dentries the dcache keeps, and what held memory
//! takes from the buddy allocator's free lists.

use crate::lab::params::Value;
use crate::learn::{
    evidence, growth, shown, AnswerKind, Choice, Draw, Exercise, Lesson, Measured, Question,
    Tolerance, MIB,
};

/// The lesson.
pub static LESSON: Lesson = Lesson {
    setup: "A child stats names that do not exist on a disk file system, in two batches, while \
            the parent reads /proc/sys/fs/dentry-state and the dentry slab in /proc/slabinfo; \
            another child holds memory while /proc/buddyinfo is read.",
    draws: &[
        Draw { key: "names", values: &[Value::Int(10_000), Value::Int(20_000), Value::Int(50_000)] },
        Draw { key: "held", values: &[Value::Int(64 << 20), Value::Int(128 << 20), Value::Int(256 << 20)] },
    ],
    questions: &[
        Question {
            id: "negative_dentries",
            ask: |p| format!("The child stats {} names that do not exist, in each of two batches of different names. By how much does nr_negative in /proc/sys/fs/dentry-state grow?", shown(p, "names")),
            answer: AnswerKind::Number { unit: "dentries", tolerance: Tolerance::Relative(0.1) },
            measure: |r, _| growth(r, "nr_negative", 1.0),
            explain: |_, _| "A failed lookup is cached too: the dcache keeps a negative dentry for each missing name so the next lookup need not ask the file system. One per name, allocated from the dentry slab cache.".into(),
            quotes: &["stat of missing names on a disk file system adds negative dentries"],
        },
        Question {
            id: "after_exit",
            ask: |_| "After the child exits, what happens to those negative dentries?".into(),
            answer: AnswerKind::Choice(&[
                Choice { id: "freed", text: "they are freed with the process" },
                Choice { id: "kept", text: "they stay in the dentry cache" },
            ]),
            measure: |r, _| {
                let (before, after, from) = evidence(r, "nr_negative, 200 ms after the child exited")?;
                Ok(Measured::option(if after >= before * 0.9 { "kept" } else { "freed" }, from))
            },
            explain: |_, _| "The dcache belongs to the kernel, not the process: dentries stay until memory pressure makes the shrinker reclaim them (or drop_caches). An application that probes millions of missing paths grows the dentry slab for everyone.".into(),
            quotes: &[],
        },
        Question {
            id: "buddy_drop",
            ask: |p| format!("A child allocates and writes {}. By how much do the free pages in /proc/buddyinfo fall, in MiB?", shown(p, "held")),
            answer: AnswerKind::Number { unit: "MiB", tolerance: Tolerance::Relative(0.15) },
            measure: |r, _| {
                let (before, after, from) = evidence(r, "free pages, all zones (before -> held)")?;
                Ok(Measured::exact((before - after) * 4096.0 / MIB, from))
            },
            explain: |_, _| "Each written page comes from the buddy allocator's free lists (order 0 pages, split from larger blocks when needed, through the per-CPU page lists): the free count falls by about what was written, plus the child's page tables and whatever else the host did meanwhile.".into(),
            quotes: &[],
        },
    ],
    exercise: Exercise {
        goal: "make the missing-name lookups leave (almost) no negative dentries: under 1% of the names",
        hint: "does every file system keep what a failed lookup found? (--params lists names_on)",
        reached: |r| {
            let m = growth(r, "nr_negative", 1.0)?;
            let names = r.params.get("names").and_then(|v| v.as_f64()).ok_or("the report has no names")?;
            Ok((m.value < 0.01 * 2.0 * names, format!("nr_negative grew by {} for {} names", crate::learn::trim(m.value), 2.0 * names)))
        },
        explain: "tmpfs (like other in-memory file systems built on libfs) marks its dentries to be deleted as soon as they are unused: a failed lookup leaves nothing cached, since asking tmpfs again costs no I/O. Disk file systems keep negative dentries to spare the next lookup a trip to the disk.",
    },
};
