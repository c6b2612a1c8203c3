//! Issue 19, part 2: text fits the terminal. Every text command, run with `COLUMNS=80`
//! and stdout not a terminal, keeps every line within 80 display columns (a line made
//! of one word wider than that stays whole), never cuts a value with `…`, and keeps
//! every word it was given whole; in a terminal, the terminal's width wins.

use std::process::Command;

use crate::common::*;
use syslens::render::display_width;

/// The text a command prints at `columns` (stdout a pipe), and its exit code.
fn at_columns(columns: usize, args: &[&str]) -> (String, Option<i32>) {
    let out = syslens()
        .env("COLUMNS", columns.to_string())
        .env_remove("NO_COLOR")
        .args(args)
        .output()
        .expect("run syslens");
    let text = String::from_utf8(out.stdout).expect("text output is UTF-8");
    (text, out.status.code())
}

/// Runs `args` at 80 columns, asserts it succeeded (or exited with one of `codes`) and
/// that its text fits; returns the text.
fn fits_80(args: &[&str], codes: &[i32]) -> String {
    let (text, code) = at_columns(80, args);
    assert!(
        code == Some(0) || code.is_some_and(|c| codes.contains(&c)),
        "syslens {args:?} exited {code:?}:\n{text}"
    );
    assert_fits(&text, 80, &format!("{args:?}"));
    text
}

/// No line wider than `width` unless it is one unbreakable word; no value cut with `…`.
fn assert_fits(text: &str, width: usize, what: &str) {
    assert!(!text.trim().is_empty(), "{what}: printed nothing");
    for line in text.lines() {
        let w = display_width(line);
        assert!(
            w <= width || !line.trim().contains(' '),
            "{what}: a line of {w} columns (over {width}) that could have been wrapped:\n{line}\n\nin:\n{text}"
        );
        assert!(!line.contains('…'), "{what}: a value cut:\n{line}");
    }
}

/// Every whitespace-separated word of `s` is a word of `text`: wrapping moved words
/// to other lines, but cut none.
fn assert_words_whole(text: &str, s: &str, what: &str) {
    let words: std::collections::HashSet<&str> = text.split_whitespace().collect();
    for w in s.split_whitespace() {
        assert!(words.contains(w), "{what}: {w:?} is not whole in:\n{text}");
    }
}

#[test]
fn issue_19_system_fits_80_columns() {
    let text = fits_80(&["system", "--window", "0"], &[]);
    // The sections' rules are drawn to the width asked, not to 100.
    let rules: Vec<&str> = text.lines().filter(|l| l.starts_with("── ")).collect();
    assert!(rules.len() >= 17, "a rule per concept:\n{text}");
    for r in rules {
        assert_eq!(display_width(r), 80, "{r}");
    }
}

#[test]
fn issue_19_inspect_wraps_a_long_cmdline_and_paths_at_80_columns() {
    // A long directory name: the cmdline and the deleted file's path carry it.
    let base = tempfile::tempdir().unwrap();
    let dir = base
        .path()
        .join("a-directory-with-a-name-long-enough-to-need-wrapping-at-eighty");
    std::fs::create_dir(&dir).unwrap();
    let s = Specimen::start(&[
        "--open-fds",
        "3",
        "--block-usr1-thread",
        "--ignore-term",
        "--deleted-file-in",
        dir.to_str().unwrap(),
    ]);
    let pid = s.pid().to_string();
    let text = fits_80(&["inspect", "--window", "0", &pid], &[]);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert_words_whole(&text, &cmdline, "the cmdline");
    let deleted = s.report["deleted_file"].as_str().unwrap();
    assert_words_whole(&text, deleted, "the deleted file's path");
    // PID 1 is protected from reading even by root here: long reasons, all wrapped.
    fits_80(&["inspect", "--window", "0", "1"], &[]);
}

/// Every lab's text at 80 columns, at the cost of one quick tour and one `lab all
/// --quick` (two runs of the seventeen labs): the tour's reports (`--json`; its
/// summary goes to stderr at the same width) give the claims, metric names and
/// evidence fields, and each must be whole in its lab's section of `lab all`. The
/// claims and names are those of the parameters, the same in both runs; the measured
/// figures differ between them, and are checked by the width and the `…` alone.
#[test]
fn issue_19_every_lab_and_the_tour_summary_fit_80_columns() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let tour = syslens()
        .env("COLUMNS", "80")
        .env_remove("NO_COLOR")
        .args(["tour", "--quick", "--json", "--html"])
        .arg(&html)
        .output()
        .expect("run the tour");
    let chatter = String::from_utf8(tour.stderr).expect("UTF-8");
    assert!(
        matches!(tour.status.code(), Some(0 | 1)),
        "tour exited {:?}:\n{chatter}",
        tour.status
    );
    assert_fits(&chatter, 80, "the tour's plan and summary");
    let summary = chatter.split("\nSummary (").nth(1).expect("a summary");
    for c in &syslens::catalogue::CONCEPTS {
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with(&format!("  {} ", c.slug))),
            "{} missing from the summary:\n{summary}",
            c.slug
        );
    }
    let reports: serde_json::Value = serde_json::from_slice(&tour.stdout).unwrap();
    let reports = reports.as_array().unwrap();
    assert_eq!(reports.len(), 17);

    let text = fits_80(&["lab", "all", "--quick"], &[1]);
    // Each lab's section: from its heading rule to the next.
    let sections: Vec<&str> = text.split("── lab ").skip(1).collect();
    assert_eq!(sections.len(), 17, "a section per lab:\n{text}");
    for (r, section) in reports.iter().zip(&sections) {
        let slug = r["concept"].as_str().unwrap();
        assert!(
            section.starts_with(&format!("{slug} · ")),
            "{slug}: {section}"
        );
        let what = |kind: &str| format!("lab {slug}: {kind}");
        for c in r["checks"].as_array().unwrap() {
            assert_words_whole(section, c["claim"].as_str().unwrap(), &what("a claim"));
        }
        for m in r["metrics"].as_array().unwrap() {
            assert_words_whole(
                section,
                m["name"].as_str().unwrap(),
                &what("a metric's name"),
            );
        }
        for e in r["evidence"].as_array().unwrap() {
            assert_words_whole(
                section,
                e["field"].as_str().unwrap(),
                &what("an evidence field"),
            );
        }
    }
}

/// Below the metrics table's 65 columns, each metric is its name with its figures
/// labelled beneath it, and each evidence row its field with the change beneath it: at
/// 40 columns nothing overflows, and every name, field and figure is whole.
#[test]
fn issue_19_lab_metrics_and_evidence_fit_40_columns() {
    let (text, code) = at_columns(40, &["lab", "cow", "--quick"]);
    assert!(matches!(code, Some(0 | 1)), "exit {code:?}:\n{text}");
    assert_fits(&text, 40, "lab cow at 40 columns");
    let (json, _) = at_columns(40, &["lab", "cow", "--quick", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let metrics = report["metrics"].as_array().unwrap();
    assert!(!metrics.is_empty(), "the cow lab measured nothing:\n{text}");
    for m in metrics {
        assert_words_whole(&text, m["name"].as_str().unwrap(), "a metric's name");
    }
    // The two runs' trial counts may differ (adaptive trials): each metric has its
    // labelled figures, whatever its n.
    let labelled = text
        .lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("n") && w.next().is_some_and(|n| n.parse::<u64>().is_ok())
        })
        .count();
    assert_eq!(
        labelled,
        metrics.len(),
        "a metric without its figures:\n{text}"
    );
    for e in report["evidence"].as_array().unwrap() {
        assert_words_whole(&text, e["field"].as_str().unwrap(), "an evidence field");
    }
    assert!(
        text.contains("median "),
        "the figures are not labelled:\n{text}"
    );
}

#[test]
fn issue_19_explain_pages_and_lists_fit_80_columns() {
    for c in &syslens::catalogue::CONCEPTS {
        let text = fits_80(&["explain", c.slug], &[]);
        assert!(text.contains("Read next"), "{}: {text}", c.slug);
    }
    let list = fits_80(&["explain"], &[]);
    for c in &syslens::catalogue::CONCEPTS {
        assert_words_whole(&list, c.summary, c.slug);
    }
    fits_80(&["lab", "--list"], &[]);
    fits_80(&["lab", "cow", "--params"], &[]);
}

/// issue 19: every lab's parameters at 80 columns (nothing runs): the heading
/// `leaks-fragmentation: parameters (syslens lab leaks-fragmentation --set
/// KEY=VALUE)` ran to 81.
#[test]
fn issue_19_every_labs_params_fit_80_columns() {
    let text = fits_80(&["lab", "all", "--params"], &[]);
    for c in &syslens::catalogue::CONCEPTS {
        let head = format!(
            "{}: parameters (syslens lab {} --set KEY=VALUE)",
            c.slug, c.slug
        );
        assert_words_whole(&text, &head, c.slug);
    }
    let (json, _) = at_columns(80, &["lab", "all", "--params", "--json"]);
    let labs: serde_json::Value = serde_json::from_str(&json).unwrap();
    for l in labs.as_array().unwrap() {
        for p in l["params"].as_array().unwrap() {
            // (Not the range: its host bound follows MemAvailable from run to run.)
            assert_words_whole(&text, p["help"].as_str().unwrap(), "a parameter's help");
        }
    }
}

#[test]
fn issue_19_learn_questions_and_progress_fit_80_columns() {
    let state = tempfile::tempdir().unwrap();
    let state = state.path().to_str().unwrap();
    for c in &syslens::catalogue::CONCEPTS {
        let text = fits_80(
            &[
                "learn",
                c.slug,
                "--questions",
                "--seed",
                "3",
                "--state",
                state,
            ],
            &[],
        );
        assert!(text.contains("1. "), "{}: {text}", c.slug);
    }
    fits_80(&["learn", "--progress", "--state", state], &[]);
    fits_80(&["learn", "cow", "--exercise", "--state", state], &[]);
}

/// issue 19: a graded lesson at 80 columns with colour on. The verdicts, the line that
/// says how to ask again (with a six-digit seed and a long id beside "N of M right" it
/// ran to 86 columns) and the evidence each answer was graded against wrap within the
/// width, painted once wrapped: a painted text was wrapped with its escapes shown as
/// text (`\x1b[2mfrom /proc/...`).
#[test]
fn issue_19_learn_verdicts_fit_80_columns_painted() {
    let state = tempfile::tempdir().unwrap();
    let answers = state.path().join("answers.json");
    std::fs::write(&answers, "{}").unwrap();
    let out = syslens()
        .env("COLUMNS", "80")
        .args(["--color", "always", "learn", "high-water-mark", "--quick"])
        .args(["--seed", "999999", "--state"])
        .arg(state.path())
        .arg("--answers")
        .arg(&answers)
        .output()
        .expect("run syslens");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}:\n{text}",
        out.status
    );
    assert!(!text.contains("\\x1b"), "an escape shown as text:\n{text}");
    assert!(
        text.contains('\x1b'),
        "no colour with --color always:\n{text}"
    );
    let plain = [
        "\x1b[0m", "\x1b[1m", "\x1b[2m", "\x1b[31m", "\x1b[32m", "\x1b[33m",
    ]
    .iter()
    .fold(text.clone(), |t, sgr| t.replace(sgr, ""));
    assert_fits(&plain, 80, "learn's verdicts");
    assert!(plain.contains("verdicts: "), "{plain}");
    assert_words_whole(
        &plain,
        "seed 999999 (syslens learn high-water-mark --seed 999999 asks the same)",
        "how to ask again",
    );
}

#[test]
fn issue_19_doctor_fits_80_columns() {
    let dir = tempfile::tempdir().unwrap();
    // Findings with evidence and advice: fds near the limit, SIGTERM ignored, a
    // deleted file held open.
    let s = Specimen::start(&[
        "--fd-limit",
        "64",
        "--open-fds",
        "57",
        "--ignore-term",
        "--deleted-file-in",
        dir.path().to_str().unwrap(),
    ]);
    let text = fits_80(&["doctor", "--window", "0"], &[1]);
    assert!(
        text.contains(&format!("pid {}", s.pid())),
        "the specimen's findings:\n{text}"
    );
}

#[test]
fn issue_19_the_width_follows_columns_and_the_terminal() {
    let rule = |text: &str| {
        let line = text.lines().find(|l| l.starts_with("── ")).unwrap_or("");
        display_width(line)
    };
    let (wide, _) = at_columns(132, &["system", "--window", "0"]);
    assert_eq!(rule(&wide), 132);
    assert!(wide
        .lines()
        .all(|l| display_width(l) <= 132 || !l.trim().contains(' ')));
    // Without COLUMNS and without a terminal: 100.
    let out = syslens()
        .env_remove("COLUMNS")
        .args(["system", "--window", "0"])
        .output()
        .unwrap();
    assert_eq!(rule(&String::from_utf8_lossy(&out.stdout)), 100);
    // In a terminal of 70 columns the terminal wins over COLUMNS (script(1) gives the
    // command a pseudo-terminal; stty sets its size).
    let has_script = Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    require_tool!(has_script, "script (util-linux) is not installed");
    let bin = env!("CARGO_BIN_EXE_syslens");
    let out = Command::new("script")
        .args(["-q", "-e", "-c"])
        .arg(format!(
            "stty cols 70 rows 40; COLUMNS=200 {bin} --color never system --window 0"
        ))
        .arg("/dev/null")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace('\r', "");
    assert!(out.status.success(), "{text}");
    assert_eq!(rule(&text), 70, "{text}");
}

#[test]
fn issue_19_system_processes_drops_columns_to_fit_keeping_pid_and_command() {
    let text = fits_80(&["system", "--processes"], &[]);
    let head = text.lines().next().unwrap_or("");
    assert!(head.contains("PID") && head.contains("COMMAND"), "{text}");
    // Narrower still: columns go, as htop drops them, PID and COMMAND last.
    let (narrow, code) = at_columns(40, &["system", "--processes"]);
    assert_eq!(code, Some(0), "{narrow}");
    assert_fits(&narrow, 40, "system --processes at 40 columns");
    let head = narrow.lines().next().unwrap_or("");
    assert!(
        head.contains("PID") && head.contains("COMMAND") && !head.contains("MINFLT"),
        "{head}"
    );
}

/// A captured tree (tests/fixtures/v2-docker) whose one process has a kernel thread's
/// long name: copied, with the name changed in stat and status.
fn docker_tree_named(name: &str) -> tempfile::TempDir {
    let tree = tempfile::tempdir().expect("temp dir");
    let ok = Command::new("cp")
        .arg("-r")
        .arg(format!(
            "{}/tests/fixtures/v2-docker/.",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(tree.path())
        .status()
        .expect("cp");
    assert!(ok.success());
    let pid_dir = tree.path().join("proc/5151");
    for (file, from, to) in [
        ("stat", "(redis-server)".to_owned(), format!("({name})")),
        (
            "status",
            "Name:\tredis-server".to_owned(),
            format!("Name:\t{name}"),
        ),
    ] {
        let text = std::fs::read_to_string(pid_dir.join(file)).expect(file);
        assert!(text.contains(&from), "{file}: {text}");
        std::fs::write(pid_dir.join(file), text.replace(&from, &to)).expect(file);
    }
    tree
}

#[test]
fn issue_19_system_processes_continues_a_long_name_rather_than_cutting_it() {
    // 48 characters: at 40 columns 32 are left for COMMAND; at 200 it fits on one line.
    let name = "rcu_exp_par_gp_kthread_worker_with_a_long_name/0";
    let tree = docker_tree_named(name);
    let run = |columns: usize| {
        let out = syslens()
            .env("COLUMNS", columns.to_string())
            .arg("--root")
            .arg(tree.path())
            .args(["system", "--processes"])
            .output()
            .expect("run syslens");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let narrow = run(40);
    assert_fits(&narrow, 40, "a long name at 40 columns");
    let lines: Vec<&str> = narrow.lines().collect();
    // The row, then the rest of the name under COMMAND, broken after a separator.
    assert_eq!(
        lines[1], "   5151 rcu_exp_par_gp_kthread_worker_",
        "{narrow}"
    );
    assert_eq!(lines[2], "        with_a_long_name/0", "{narrow}");
    assert!(narrow.contains("\n1 process\n"), "{narrow}");
    // Wide enough: one line, the container named whole as `docker ps` does.
    let wide = run(200);
    assert_fits(&wide, 200, "a long name at 200 columns");
    let row = wide.lines().nth(1).unwrap_or_default();
    assert!(
        row.contains(&format!(" {name} ")) && row.ends_with(" docker 3f2a9c1b7d4e"),
        "{wide}"
    );
}

/// issue 19: every text command at 80 columns, the ones the other tests leave out:
/// `concepts`, `watch` (its header, its events and its summary), and a recording asked
/// back by `events` and `report` (text) and `system --at`.
#[test]
fn issue_19_concepts_watch_events_and_report_fit_80_columns() {
    let concepts = fits_80(&["concepts"], &[]);
    for c in &syslens::catalogue::CONCEPTS {
        assert_words_whole(&concepts, c.slug, c.slug);
    }
    // A process that comes and goes while watched: an exec and an exit to show.
    let watched = std::thread::spawn(|| fits_80(&["watch", "--for", "3", "--summary", "1"], &[]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("sh").args(["-c", "sleep 0.2"]).status();
    let watch = watched.join().unwrap();
    assert!(
        watch.lines().count() > 1,
        "watch printed only its header:\n{watch}"
    );

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let s = store.to_str().unwrap();
    let recorder = syslens()
        .args(["record", "--store", s, "--interval", "0.3", "--for", "3s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A notable event to list: a shell killed by SIGKILL.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let _ = Command::new("sh").args(["-c", "kill -KILL $$"]).status();
    let recorded = recorder.wait_with_output().unwrap();
    assert!(recorded.status.success(), "{recorded:?}");
    fits_80(&["events", "--store", s], &[]);
    let report = fits_80(&["report", "--store", s, "--since", "-1h"], &[]);
    assert!(report.lines().count() > 2, "{report}");
    fits_80(&["system", "--store", s, "--at", "-1s"], &[]);
    fits_80(&["system", "--processes", "--store", s, "--at", "-1s"], &[]);
}
