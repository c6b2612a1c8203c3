//! Terminal escape injection (issue 14, part 2): a process name is set by any user, and
//! printed raw it would drive root's terminal. Every text command shows it escaped.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::*;

/// Red, then an OSC that sets the terminal's title: 14 bytes, fits a comm.
const HOSTILE: &str = "\x1b[31mX\x1b]0;p\x07";
/// How it starts when shown (a narrow column cuts the rest).
const SHOWN: &str = "\\x1b[31mX";

fn assert_no_raw_control(what: &str, out: &[u8], colour: bool) {
    let text = String::from_utf8_lossy(out);
    assert!(
        text.contains(SHOWN),
        "{what}: the name is not shown escaped: {text}"
    );
    for (i, &b) in out.iter().enumerate() {
        let control = (b < 0x20 && b != b'\n') || b == 0x7f;
        if !control {
            continue;
        }
        // With colour on, syslens's own SGR sequences are the only escapes.
        let own = colour && b == 0x1b && out[i..].starts_with(b"\x1b[") && {
            let end = out[i + 2..].iter().position(|&c| c == b'm');
            end.is_some_and(|e| out[i + 2..i + 2 + e].iter().all(u8::is_ascii_digit))
        };
        assert!(own, "{what}: raw control byte {b:#04x} at {i}: {text}");
    }
}

fn hostile_specimen() -> Specimen {
    Specimen::start_with(as_nobody(), &["--comm", HOSTILE])
}

#[test]
fn issue_14_hostile_comm_is_escaped_by_every_text_command() {
    if let Err(why) = nobody_can_run() {
        skip_unless!(false, why);
    }
    let specimen = hostile_specimen();
    let pid = specimen.pid().to_string();
    let commands: [&[&str]; 4] = [
        &["system", "--processes", "--window", "0"],
        &["inspect", &pid, "--window", "0"],
        &["inspect", "--name", HOSTILE, "--window", "0"],
        &[
            "doctor",
            "--pid",
            &pid,
            "--window",
            "0",
            "--fail-on",
            "error",
        ],
    ];
    for args in commands {
        for colour in ["never", "always"] {
            // As nobody (any local user) and as root (whose terminal is the prize).
            for mut cmd in [as_nobody(), syslens()] {
                let out = cmd.args(["--color", colour]).args(args).output().unwrap();
                let what = format!("{args:?} --color {colour}");
                assert!(out.status.code().is_some_and(|c| c <= 1), "{what}: {out:?}");
                if args[0] == "doctor" {
                    // The doctor names it only when it finds something: the subject
                    // line is checked for raw bytes either way.
                    let text = String::from_utf8_lossy(&out.stdout);
                    assert!(!text.contains(HOSTILE), "{what}: {text}");
                    continue;
                }
                assert_no_raw_control(&what, &out.stdout, colour == "always");
            }
        }
    }
    // JSON keeps the real name, escaped as JSON escapes it.
    let out = syslens()
        .args(["--json", "inspect", &pid, "--window", "0"])
        .output()
        .unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["name"].as_str(), Some(HOSTILE));
    assert!(!out.stdout.contains(&0x1b));
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_14_hostile_comm_is_escaped_in_top() {
    require_tool!(crate::common::has_tmux(), "tmux is not installed");
    let specimen = Specimen::start(&["--comm", HOSTILE]);
    let session = format!("syslens-escape-top-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_syslens");
    let started = Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", "160", "-y", "50"])
        .arg(format!("{bin} top --interval 0.3; sleep 5"))
        .status()
        .unwrap();
    assert!(started.success());
    let capture = || {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !capture().contains("PID") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    // Filter on the specimen's name so its row is on screen.
    let _ = Command::new("tmux")
        .args(["send-keys", "-t", &session, "/", "X", "Enter"])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut screen = capture();
    while !screen.contains(&specimen.pid().to_string()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        screen = capture();
    }
    let title = Command::new("tmux")
        .args(["display-message", "-p", "-t", &session, "#{pane_title}"])
        .output()
        .unwrap();
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    assert!(screen.contains(&specimen.pid().to_string()), "{screen}");
    assert!(
        screen.contains("\\x1b"),
        "the name is shown escaped: {screen}"
    );
    // Had the OSC reached the terminal, the pane's title would now be "p".
    assert_ne!(String::from_utf8_lossy(&title.stdout).trim(), "p");
}

#[test]
fn issue_15_a_newline_in_a_cmdline_is_escaped_by_inspect() {
    use std::os::unix::process::CommandExt;
    // argv0 a name of its own (for --name), and an argument with a newline in it: a
    // raw newline would start a line that looks like syslens's own output.
    let mut child = Command::new("sh")
        .arg0("sl15nl")
        .args(["-c", "sleep 30; :", "first\nparent 1 (forged)"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .starts_with(b"sl15nl\0")
    {
        assert!(Instant::now() < deadline, "the shell never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    for args in [
        vec!["inspect", pid.as_str(), "--window", "0"],
        vec!["inspect", "--name", "sl15nl", "--window", "0"],
    ] {
        let out = syslens()
            .env("COLUMNS", "200")
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{args:?}: {out:?}");
        assert!(
            text.contains("first\\x0aparent 1 (forged)"),
            "{args:?}: the newline is not shown escaped: {text}"
        );
        assert!(
            !text.lines().any(|l| l.starts_with("parent 1 (forged)")),
            "{args:?}: a forged line: {text}"
        );
    }
    // The shell's sleep first: it would outlive the shell.
    let kids =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    for kid in kids.split_whitespace() {
        let _ = Command::new("kill").args(["-KILL", kid]).status();
    }
    let _ = child.kill();
    let _ = child.wait();
}
