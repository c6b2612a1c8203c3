//! `syslens learn` (issue 18): questions drawn from a seed, answers files and their
//! errors, grading against a real run, the prompts, the exercise and progress.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use crate::common::syslens;

fn learn(state: &std::path::Path) -> Command {
    let mut c = syslens();
    c.arg("learn").arg("--state").arg(state);
    c
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn issue_18_questions_are_the_same_for_a_seed_and_run_nothing() {
    let state = tempfile::tempdir().unwrap();
    let ask = |seed: &str| {
        json_of(
            &learn(state.path())
                .args(["cow", "--questions", "--seed", seed, "--json"])
                .output()
                .unwrap(),
        )
    };
    let (a, b) = (ask("7"), ask("7"));
    assert_eq!(a, b, "the same seed asked differently");
    assert_eq!(a["seed"], 7);
    let qs = a["questions"].as_array().unwrap();
    assert!((2..=4).contains(&qs.len()));
    for q in qs {
        for key in ["id", "text", "kind"] {
            assert!(q[key].is_string(), "{key} missing in {q}");
        }
        match q["kind"].as_str().unwrap() {
            "number" => assert!(q["unit"].is_string() && q["tolerance"].is_object(), "{q}"),
            "choice" => assert!(q["options"].as_array().is_some_and(|o| o.len() >= 2)),
            other => panic!("kind {other}"),
        }
    }
    // Other seeds draw other parameters, so other texts.
    let texts = |v: &Value| v["questions"].to_string();
    assert!(
        (1..12).any(|s| texts(&ask(&s.to_string())) != texts(&a)),
        "twelve seeds asked the same questions"
    );
    // Nothing ran, nothing was recorded.
    assert!(!state.path().join("learn.json").exists());
    // Without a seed one is drawn and printed.
    let fresh = json_of(
        &learn(state.path())
            .args(["signals", "--questions", "--json"])
            .output()
            .unwrap(),
    );
    assert!(fresh["seed"].as_u64().is_some_and(|s| s > 0));
    let text = learn(state.path())
        .args(["signals", "--questions"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("--seed "), "the seed is not printed: {text}");
}

#[test]
fn issue_18_a_bad_answers_file_exits_2_naming_what_is_wrong() {
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 6] = [
        ("not-json", b"{ nope", "not JSON"),
        ("array", b"[1, 2]", "expected an object"),
        ("unknown", br#"{"rss_reed": 1}"#, "no question \"rss_reed\""),
        (
            "type",
            br#"{"rss_read": "lots"}"#,
            "rss_read: expected a number",
        ),
        (
            "nan",
            br#"{"rss_read": null}"#,
            "rss_read: expected a number",
        ),
        ("option", br#"{"victim": "z"}"#, "not one of its options"),
    ];
    for (name, body, says) in cases {
        let concept = if name == "option" {
            "swap-oom"
        } else {
            "lazy-init"
        };
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        let out = learn(state.path())
            .args([concept, "--quick", "--json", "--answers"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: a lab ran");
    }
    let out = learn(state.path())
        .args(["cow", "--answers", "/nonexistent/answers.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = learn(state.path())
        .args(["cwo", "--questions"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cow"),
        "no suggestion"
    );
    let out = learn(state.path())
        .args(["cow", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--json with the prompts");
}

/// Runs a lesson with `answers`, returns the graded JSON.
fn graded(state: &std::path::Path, concept: &str, seed: &str, answers: &Value) -> Value {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), answers.to_string()).unwrap();
    json_of(
        &learn(state)
            .args([concept, "--quick", "--seed", seed, "--json", "--answers"])
            .arg(file.path())
            .output()
            .unwrap(),
    )
}

fn verdict<'a>(g: &'a Value, id: &str) -> &'a Value {
    g["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no verdict {id} in {g}"))
}

#[test]
fn issue_18_the_kernels_answer_is_right_and_an_absurd_one_wrong() {
    let state = tempfile::tempdir().unwrap();
    let plan = json_of(
        &learn(state.path())
            .args([
                "lazy-init",
                "--quick",
                "--seed",
                "5",
                "--questions",
                "--json",
            ])
            .output()
            .unwrap(),
    );
    let size = plan["params"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["key"] == "size")
        .unwrap()["value"]
        .as_f64()
        .unwrap();
    let mib = size / 1048576.0;
    // What the kernel does: reads leave RSS flat, writes make every page resident.
    let right = graded(
        state.path(),
        "lazy-init",
        "5",
        &json!({"rss_read": 0, "rss_write": mib}),
    );
    for id in ["rss_read", "rss_write"] {
        let v = verdict(&right, id);
        assert_eq!(v["correct"], true, "{v}");
        assert!(v["measured"]["evidence"]
            .as_str()
            .unwrap()
            .contains("smaps_rollup"));
        assert!(!v["explanation"].as_str().unwrap().is_empty());
    }
    // Unanswered is graded wrong, with the measured value and its explanation.
    let v = verdict(&right, "first_vs_second");
    assert_eq!(v["correct"], false);
    assert!(v["measured"]["value"].as_f64().unwrap() > 1.0);
    let absurd = graded(
        state.path(),
        "lazy-init",
        "5",
        &json!({"rss_read": mib, "rss_write": -3, "first_vs_second": 1e9}),
    );
    assert_eq!(absurd["right"], 0, "{absurd}");
    // Each verdict agrees with the range it states.
    for v in absurd["verdicts"].as_array().unwrap() {
        let [lo, hi] = [
            v["accepted"][0].as_f64().unwrap(),
            v["accepted"][1].as_f64().unwrap(),
        ];
        let m = v["measured"]["value"].as_f64().unwrap();
        assert!(
            lo <= m && m <= hi,
            "the measured value outside its own range: {v}"
        );
    }
    // Both runs are in the progress.
    let progress = json_of(
        &learn(state.path())
            .args(["--progress", "--json"])
            .output()
            .unwrap(),
    );
    let row = &progress.as_array().unwrap()[0];
    assert_eq!(
        (row["concept"].as_str(), row["attempts"].as_u64()),
        (Some("lazy-init"), Some(2))
    );
    assert_eq!(row["mastered"], false);
}

#[test]
fn issue_18_every_lesson_measures_every_question_on_this_host() {
    // One quick run of every lab with no answers: each question must find its reading
    // in the report, or say why this host could not take it (a skipped claim).
    let state = tempfile::tempdir().unwrap();
    let list = syslens()
        .args(["lab", "--list", "--json"])
        .output()
        .unwrap();
    let list: Value = serde_json::from_slice(&list.stdout).unwrap();
    for c in list.as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let g = graded(state.path(), id, "11", &json!({}));
        for v in g["verdicts"].as_array().unwrap() {
            if let Some(why) = v["unmeasured"].as_str() {
                eprintln!("SKIPPED: {id} {}: {why}", v["id"]);
                let claims = |k: &str| g[k].as_array().unwrap().len();
                assert!(
                    claims("failed_claims") + claims("skipped_claims") > 0,
                    "{id} {}: not measured ({why}) though every claim was checked",
                    v["id"]
                );
            } else {
                assert_eq!(v["correct"], false, "unanswered graded right: {v}");
                assert!(!v["explanation"].as_str().unwrap().is_empty());
            }
        }
    }
}

#[test]
fn issue_18_the_prompts_take_typed_answers_and_record_progress() {
    let state = tempfile::tempdir().unwrap();
    let mut child = learn(state.path())
        .args(["lazy-init", "--quick", "--seed", "9"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A wrong-typed line is asked again; an empty one skips the question.
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"zero\n0 MiB\n\n50\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("a number in MiB is expected"), "{text}");
    assert!(text.contains("verdicts: Lazy initialization"), "{text}");
    assert!(text.contains("you said 0 MiB"), "{text}");
    assert!(text.contains("(no answer)"), "{text}");
    assert!(text.contains("you said 50x"), "{text}");
    assert!(text.contains("of 3 right"), "{text}");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(state.path().join("learn.json")).unwrap()).unwrap();
    assert_eq!(saved["concepts"]["lazy-init"]["attempts"][0]["seed"], 9);
}

#[test]
fn issue_18_the_exercise_checks_whether_the_set_flipped_the_verdict() {
    let state = tempfile::tempdir().unwrap();
    // Without --set: the goal and the hint, nothing runs.
    let goal = json_of(
        &learn(state.path())
            .args(["locking", "--exercise", "--json"])
            .output()
            .unwrap(),
    );
    assert!(goal["goal"].as_str().unwrap().contains("racy counter"));
    assert!(goal["hint"].as_str().unwrap().contains("race_cpus"));
    assert!(!state.path().join("learn.json").exists());
    let run = |set: &str| {
        json_of(
            &learn(state.path())
                .args(["locking", "--quick", "--exercise", "--json", "--set", set])
                .args(["--set", "race_increments=100000"])
                .output()
                .unwrap(),
        )
    };
    // Both threads on one CPU, each done within a time slice: they take turns, and an
    // update is lost only at a preemption between a load and its store.
    let flipped = run("race_cpus=one");
    assert_eq!(flipped["reached"], true, "{flipped}");
    let progress = json_of(
        &learn(state.path())
            .args(["--progress", "--json"])
            .output()
            .unwrap(),
    );
    let locking = progress
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["concept"] == "locking")
        .unwrap();
    assert_eq!(locking["exercise_solved"], true);
    skip_unless!(
        std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
        "one CPU: the threads always take turns"
    );
    // Unpinned, the threads overlap and lose far more; how much depends on how often a
    // busy machine lets them run at once, so the test compares with the pinned run.
    let lost = |v: &Value| -> f64 {
        let m = v["measured"].as_str().unwrap();
        m.split('%').next().unwrap().parse().unwrap()
    };
    let default = run("race_cpus=any");
    let overlapped = lost(&default) > 0.0;
    skip_unless!(
        overlapped,
        "the unpinned threads never overlapped: the machine is too busy"
    );
    assert!(
        default["reached"] == false || lost(&default) > 2.0 * lost(&flipped),
        "unpinned {default} against pinned {flipped}"
    );
}

#[test]
fn issue_18_exercises_flip_with_their_parameter_and_not_without() {
    let state = tempfile::tempdir().unwrap();
    let cases = [
        ("lazy-init", "mapping=shared", "mapping=private"),
        (
            "signals",
            "sigterm_handler=none",
            "sigterm_handler=installed",
        ),
        ("storage", "chunk=16M", "chunk=64K"),
        ("slab-buddy", "names_on=tmpfs", "names_on=disk"),
    ];
    for (concept, flips, keeps) in cases {
        let run = |set: &str| {
            let mut c = learn(state.path());
            c.args([concept, "--quick", "--exercise", "--json", "--set", set]);
            if concept == "storage" {
                c.args(["--set", "size=16M"]);
            }
            json_of(&c.output().unwrap())
        };
        let yes = run(flips);
        assert_eq!(yes["reached"], true, "{concept} {flips}: {yes}");
        let no = run(keeps);
        assert_eq!(no["reached"], false, "{concept} {keeps}: {no}");
    }
}

#[test]
fn issue_18_the_tour_grades_predictions_beside_the_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let plans = json_of(
        &syslens()
            .args(["tour", "--quick", "--questions", "--json"])
            .output()
            .unwrap(),
    );
    let plans = plans.as_array().unwrap();
    assert_eq!(plans.len(), 17);
    assert!(
        plans.iter().all(|p| p["seed"].is_null()),
        "the tour's parameters are not drawn"
    );
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, br#"{"cow": {"nope": 1}}"#).unwrap();
    let out = syslens()
        .args(["tour", "--quick", "--answers"])
        .arg(&bad)
        .arg("--html")
        .arg(dir.path().join("never.html"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cow.nope"));
    assert!(
        !dir.path().join("never.html").exists(),
        "a bad file ran the tour"
    );

    let answers = dir.path().join("answers.json");
    std::fs::write(
        &answers,
        json!({"lazy-init": {"rss_read": 0}, "Storage": {"torn": "mixed"}}).to_string(),
    )
    .unwrap();
    let html = dir.path().join("report.html");
    let out = syslens()
        .args(["tour", "--quick", "--answers"])
        .arg(&answers)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("predictions: "), "{text}");
    let page = std::fs::read_to_string(&html).unwrap();
    assert_eq!(
        page.matches("Your predictions: ").count(),
        2,
        "two concepts answered"
    );
    assert!(page.contains("Predictions: "));
    assert!(page.contains("rss_read") || page.contains("reads one byte of every page"));
}

#[test]
fn issue_18_ctrl_c_during_the_lab_leaves_nothing_and_records_nothing() {
    use std::os::unix::process::CommandExt;
    let state = tempfile::tempdir().unwrap();
    let empty = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(empty.path(), "{}").unwrap();
    let child = learn(state.path())
        // Two hogs sharing a CPU for 5 s: the lab is surely running at 1.5 s.
        .args([
            "scheduling",
            "--seed",
            "1",
            "--set",
            "hog=5000",
            "--json",
            "--answers",
        ])
        .arg(empty.path())
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    // SAFETY: signals the process group this test made for the child, as Ctrl-C does.
    unsafe { libc::kill(-(pid as i32), libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted by SIGINT"), "{err}");
    assert_eq!(crate::common::lab_leftovers(pid), Vec::<String>::new());
    assert!(
        !state.path().join("learn.json").exists(),
        "an interrupted run was recorded"
    );
}
