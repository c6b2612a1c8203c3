//! `syslens top` in a real terminal (tmux): the columns show, a sort key reacts, q quits
//! and the terminal comes back.

use std::process::Command;
use std::time::{Duration, Instant};

fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_until(session: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let screen = tmux(&["capture-pane", "-p", "-t", session]);
        if done(&screen) || Instant::now() > deadline {
            return screen;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A tmux session killed however the test ends: a failed assertion used to leave
/// the TUI running after the test.
struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        tmux(&["kill-session", "-t", &self.0]);
    }
}

fn wait_for(session: &str, needle: &str) -> String {
    wait_until(session, |s| s.contains(needle))
}

#[test]
fn top_in_tmux_shows_columns_reacts_to_keys_and_quits() {
    require_tool!(crate::common::has_tmux(), "tmux is not installed");
    require_tool!(
        Command::new("prlimit")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "prlimit (util-linux) is not installed"
    );
    let specimen = crate::common::Specimen::start(&[]);
    let sleeper = specimen.pid();
    set_nofile(sleeper, 77);
    let session = format!("syslens-top-{}", std::process::id());
    let bin = env!("CARGO_BIN_EXE_syslens");
    let started = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "130",
            "-y",
            "40",
            &format!("{bin} top --interval 0.3; sleep 5"),
        ])
        .status()
        .unwrap();
    assert!(started.success());
    let _session = Session(session.clone());
    let screen = wait_for(&session, "MAJFLT/s");
    assert!(
        screen.contains("PID") && screen.contains("RSS▼") && screen.contains("MAJFLT/s"),
        "{screen}"
    );
    assert!(screen.contains("q quit"), "keys at the bottom: {screen}");
    // '>' moves the sort to the next column.
    tmux(&["send-keys", "-t", &session, ">"]);
    let screen = wait_for(&session, "HWM▼");
    assert!(
        screen.contains("HWM▼") && !screen.contains("RSS▼"),
        "{screen}"
    );
    tmux(&["send-keys", "-t", &session, "2"]);
    let screen = wait_for(&session, "NVCSW/s");
    assert!(screen.contains("CPU%"), "{screen}");
    // The fd limit is read on the slow tier, and only while a view shows it: raised by
    // another process while the cpu view is up, the files view shows the new limit.
    let limit_of = |screen: &str| -> Option<String> {
        let row = screen
            .lines()
            .find(|l| l.split_whitespace().next() == Some(sleeper.to_string().as_str()))?;
        row.split_whitespace().nth(3).map(str::to_owned)
    };
    set_nofile(sleeper, 88);
    tmux(&["send-keys", "-t", &session, "3"]);
    tmux(&["send-keys", "-t", &session, "/"]);
    tmux(&["send-keys", "-t", &session, "-l", "syslens"]);
    tmux(&["send-keys", "-t", &session, "Enter"]);
    let screen = wait_until(&session, |s| limit_of(s).as_deref() == Some("88"));
    assert_eq!(
        limit_of(&screen).as_deref(),
        Some("88"),
        "pid {sleeper}'s new fd limit: {screen}"
    );
    tmux(&["send-keys", "-t", &session, "q"]);
    // After q the shell's sleep runs on a restored terminal: the TUI is gone.
    let screen = wait_until(&session, |s| !s.contains("q quit"));
    assert!(
        !screen.contains("q quit"),
        "the TUI is still drawn: {screen}"
    );
}

/// Sets another process's soft RLIMIT_NOFILE, as an administrator would with prlimit(1).
fn set_nofile(pid: u32, n: u32) {
    let ok = Command::new("prlimit")
        // Soft limits only: raising a hard limit takes CAP_SYS_RESOURCE.
        .args(["--pid", &pid.to_string(), &format!("--nofile={n}:200")])
        .status()
        .unwrap()
        .success();
    assert!(ok, "prlimit --pid {pid} failed");
}
