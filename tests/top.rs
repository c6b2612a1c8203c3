//! `syslens top` in a real terminal (tmux): every key of the help screen, the mouse, the
//! kill flow (delivered, refused, too late), the layout at 140x40, 80x24 and 30x6, and
//! the terminal restored on every way out. Each test waits for what the screen shows,
//! never for a fixed time.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::common::{nobody_can_run, Specimen};

/// The sizes every key is tried at: a roomy terminal and the classic one.
const SIZES: [(u16, u16); 2] = [(140, 40), (80, 24)];
/// How long a screen may take to show what is awaited (builds of others load the
/// machine).
const PATIENCE: Duration = Duration::from_secs(15);
/// What the pane prints once top has exited, with its exit status.
const EXITED: &str = "syslens-top-exited";

/// Runs tmux on a server of the session's own (`-L`): a server shared with other
/// tests can be exiting, its last session just killed, when the next one starts.
fn tmux_on(server: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", server])
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_tmux() -> bool {
    crate::common::has_tmux()
}

/// `syslens top` running in a tmux session of its own, killed however the test ends
/// (a failed assertion used to leave the TUI running after the test).
struct Top {
    session: String,
}

impl Top {
    /// Starts top at `w` x `h`; `wrap` goes before the binary (setpriv, to run it as
    /// another user).
    fn start_with(w: u16, h: u16, wrap: &str) -> Top {
        Top::start_args(w, h, wrap, "--interval 0.3")
    }

    /// Starts `top ARGS` at `w` x `h` (after `wrap`), waiting for its first rows.
    fn start_args(w: u16, h: u16, wrap: &str, args: &str) -> Top {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let session = format!(
            "syslens-top-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let bin = env!("CARGO_BIN_EXE_syslens");
        let started = Command::new("tmux")
            .args(["-L", &session, "new-session", "-d", "-s", &session])
            .args(["-x", &w.to_string(), "-y", &h.to_string()])
            .arg(format!(
                "{wrap} {bin} top {args}; echo {EXITED} $?; sleep 60"
            ))
            .status()
            .unwrap();
        assert!(started.success());
        let top = Top { session };
        top.wait("the first sample's rows", |s| !row_pids(s).is_empty());
        top
    }

    fn tmux(&self, args: &[&str]) -> String {
        tmux_on(&self.session, args)
    }

    fn start(w: u16, h: u16) -> Top {
        Top::start_with(w, h, "")
    }

    /// Sends keys by their tmux names (`F1`, `Escape`, `PPage`, `q`), one at a time: an
    /// Escape followed at once by a key would read as Alt and that key.
    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.tmux(&["send-keys", "-t", &self.session, k]);
        }
    }

    /// Types text literally.
    fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.session, "-l", text]);
    }

    fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", &self.session])
    }

    /// Waits until the screen satisfies `done`; fails with the screen after PATIENCE.
    fn wait(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {PATIENCE:?} for {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_for(&self, needle: &str) -> String {
        self.wait(needle, |s| s.contains(needle))
    }

    /// The selected row (drawn reversed), without its escapes; the tab bar's
    /// reversed title is not a row.
    /// One capture: the screen's text and the selected row's pid, which agree.
    fn snapshot(&self) -> (String, Option<u32>) {
        let raw = self.tmux(&["capture-pane", "-e", "-p", "-t", &self.session]);
        let selected = raw
            .lines()
            .skip(1)
            .find(|l| reversed(l))
            .and_then(|l| strip_escapes(l).split_whitespace().next()?.parse().ok());
        let text: Vec<String> = raw.lines().map(strip_escapes).collect();
        (text.join("\n"), selected)
    }

    fn selected_pid(&self) -> Option<u32> {
        self.snapshot().1
    }

    /// Waits until the selected pid and the screen it is on satisfy `done`.
    fn wait_selected(&self, what: &str, done: impl Fn(Option<u32>, &str) -> bool) -> Option<u32> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let (screen, pid) = self.snapshot();
            if done(pid, &screen) {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {what}; selected {pid:?}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A left click at a cell (0-based), as the terminal reports it (SGR).
    fn click(&self, x: u16, y: u16) {
        for end in ['M', 'm'] {
            let seq = format!("\x1b[<0;{};{}{end}", x + 1, y + 1);
            let hex: Vec<String> = seq.bytes().map(|b| format!("{b:02x}")).collect();
            let mut args = vec!["send-keys", "-t", &self.session, "-H"];
            args.extend(hex.iter().map(String::as_str));
            self.tmux(&args);
        }
    }

    /// tmux's view of the pane's modes: alternate screen and mouse reporting.
    fn modes(&self) -> String {
        self.tmux(&[
            "display-message",
            "-p",
            "-t",
            &self.session,
            "#{alternate_on} #{mouse_any_flag}",
        ])
        .trim()
        .to_owned()
    }

    /// The pid of top: the child of the pane's shell.
    fn pid(&self) -> u32 {
        let shell: u32 = self
            .tmux(&["display-message", "-p", "-t", &self.session, "#{pane_pid}"])
            .trim()
            .parse()
            .unwrap();
        let children =
            std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
        children.split_whitespace().next().unwrap().parse().unwrap()
    }
}

impl Drop for Top {
    fn drop(&mut self) {
        // The server is the session's own; its socket file would stay behind.
        let socket = self.tmux(&["display-message", "-p", "#{socket_path}"]);
        self.tmux(&["kill-server"]);
        if !socket.trim().is_empty() {
            let _ = std::fs::remove_file(socket.trim());
        }
    }
}

/// Whether a captured line turns reverse video on (SGR 7, alone or among others).
fn reversed(line: &str) -> bool {
    line.split("\x1b[").skip(1).any(|seq| {
        let end = seq
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(seq.len());
        seq[end..].starts_with('m') && seq[..end].split(';').any(|p| p == "7")
    })
}

fn strip_escapes(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ parameters, then a final letter.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The table's rows on a screen: the lines below the header (PID ...) that start
/// with a pid, split into words.
fn rows(screen: &str) -> Vec<Vec<String>> {
    screen
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .take_while(|l| !l.contains(" processes") && !l.contains("F1 help"))
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|words| words.first().is_some_and(|w| w.parse::<u32>().is_ok()))
        .collect()
}

fn row_pids(screen: &str) -> Vec<u32> {
    rows(screen)
        .iter()
        .filter_map(|r| r.first()?.parse().ok())
        .collect()
}

/// The header line of the table.
fn header(screen: &str) -> String {
    screen
        .lines()
        .find(|l| l.trim_start().starts_with("PID"))
        .unwrap_or_default()
        .to_owned()
}

/// A command name no other process has (at most 15 bytes, as the kernel keeps).
fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}{}x{}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Filters top's table on `name` (with `key`: F4 or `\`) and waits for `pid`'s row.
fn filter_to(top: &Top, key: &str, name: &str, pid: u32) -> String {
    top.keys(&[key]);
    top.wait_for("filter: ");
    top.type_text(name);
    top.keys(&["Enter"]);
    top.wait(&format!("pid {pid} alone"), |s| {
        row_pids(s) == vec![pid] && s.contains("1 of ")
    })
}

/// Sorts by PID, smallest first, through the F6 menu.
fn sort_by_pid(top: &Top) {
    top.keys(&["F6"]);
    top.wait_for("sort by");
    top.keys(&["Home", "Enter"]);
    top.wait("PID▼", |s| {
        header(s).contains("PID▼") && !s.contains("sort by")
    });
}

/// Waits for a child's exit, up to PATIENCE.
fn exit_of(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "pid {} did not exit", child.id());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kernel threads now (stat's flags have PF_KTHREAD).
fn kernel_threads() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let Some(close) = stat.rfind(')') else {
                return false;
            };
            // Fields after the name: state ppid pgrp session tty tpgid flags.
            let flags: u64 = stat[close + 1..]
                .split_whitespace()
                .nth(6)
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            flags & 0x0020_0000 != 0
        })
        .collect()
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn top_in_tmux_shows_columns_reacts_to_keys_and_quits() {
    require_tool!(has_tmux(), "tmux is not installed");
    require_tool!(
        Command::new("prlimit")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "prlimit (util-linux) is not installed"
    );
    let specimen = Specimen::start(&[]);
    let sleeper = specimen.pid();
    set_nofile(sleeper, 77);
    let top = Top::start(130, 40);
    top.wait("the memory view's columns and the keys", |s| {
        let h = header(s);
        ["PID", "USER", "RSS▼", "MAJFLT/s", "COMMAND"]
            .iter()
            .all(|c| h.contains(c))
            && s.contains("q quit")
    });
    // '>' moves the sort to the next column.
    top.keys(&[">"]);
    top.wait("HWM▼", |s| {
        header(s).contains("HWM▼") && !s.contains("RSS▼")
    });
    top.keys(&["2"]);
    top.wait("the cpu view", |s| {
        header(s).contains("NVCSW/s") && header(s).contains("CPU%")
    });
    // The fd limit is read on the slow tier, and only while a view shows it: raised by
    // another process while the cpu view is up, the files view shows the new limit.
    let limit_of = |screen: &str| -> Option<String> {
        let row = rows(screen)
            .into_iter()
            .find(|r| r.first() == Some(&sleeper.to_string()))?;
        // PID USER FDS LIMIT
        row.get(3).cloned()
    };
    set_nofile(sleeper, 88);
    top.keys(&["3", "\\"]);
    top.type_text("syslens");
    top.keys(&["Enter"]);
    let screen = top.wait("the new limit", |s| limit_of(s).as_deref() == Some("88"));
    assert!(screen.contains("LIMIT"), "{screen}");
    top.keys(&["q"]);
    top.wait_for(EXITED);
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

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_help_lists_every_key() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        for key in ["F1", "?", "h"] {
            top.keys(&[key]);
            top.wait(&format!("{key} at {w}x{h}: every key listed"), |s| {
                s.contains("syslens top: keys")
                    && syslens::top::HELP
                        .iter()
                        .all(|e| s.contains(e.keys) && s.contains(e.what))
            });
            top.keys(&["x"]);
            top.wait("the help closed", |s| !s.contains("syslens top: keys"));
        }
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_search_jumps_to_a_match_and_esc_clears_it() {
    require_tool!(has_tmux(), "tmux is not installed");
    let name = unique_name("srch");
    let specimen = Specimen::start(&["--comm", &name]);
    for ((w, h), key) in SIZES.into_iter().zip(["F3", "/"]) {
        let top = Top::start(w, h);
        top.keys(&[key]);
        top.wait_for("search: ");
        top.type_text(&name);
        top.wait_selected("the match", |p, _| p == Some(specimen.pid()));
        let screen = top.screen();
        assert!(
            rows(&screen).len() > 3,
            "a search filters nothing: {screen}"
        );
        // Esc ends the search and clears it.
        top.keys(&["Escape"]);
        top.wait("the search closed", |s| !s.contains("search: "));
        // A name nobody has: the status line says so.
        top.keys(&[key]);
        top.wait_for("search: ");
        top.type_text("no-such-process-name");
        top.wait_for("not found");
        top.keys(&["Escape"]);
        top.wait("the search cleared", |s| !s.contains("not found"));
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_filter_shows_n_of_m_and_esc_clears_it() {
    require_tool!(has_tmux(), "tmux is not installed");
    let name = unique_name("filt");
    let specimen = Specimen::start(&["--comm", &name]);
    for ((w, h), key) in SIZES.into_iter().zip(["F4", "\\"]) {
        let top = Top::start(w, h);
        let screen = filter_to(&top, key, &name, specimen.pid());
        assert!(screen.contains("processes shown"), "{screen}");
        let line = screen
            .lines()
            .find(|l| l.contains("processes shown"))
            .unwrap();
        assert!(line.starts_with("1 of "), "{line}");
        // Esc, with no line being typed, clears the filter.
        top.keys(&["Escape"]);
        top.wait("every process again", |s| {
            row_pids(s).len() > 3
                && !s.contains("filter:")
                && !s.lines().any(|l| l.starts_with("1 of "))
        });
    }
}

/// The README: Enter inspects the selected process (every concept's lens); Esc goes back.
#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_23_top_enter_inspects_the_selected_process_and_esc_goes_back() {
    require_tool!(has_tmux(), "tmux is not installed");
    let name = unique_name("insp");
    let specimen = Specimen::start(&["--comm", &name]);
    let pid = specimen.pid();
    let top = Top::start(100, 30);
    filter_to(&top, "\\", &name, pid);
    top.keys(&["Enter"]);
    let screen = top.wait("the inspect view of the specimen", |s| {
        s.contains(&format!(" inspect {pid} (Esc back")) && s.contains(&name)
    });
    assert!(screen.contains("Esc back"), "{screen}");
    top.keys(&["Escape"]);
    top.wait("the table again", |s| {
        row_pids(s) == vec![pid] && !s.contains("(Esc back")
    });
    top.keys(&["q"]);
    top.wait_for(EXITED);
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_tree_shows_children_under_their_parent() {
    require_tool!(has_tmux(), "tmux is not installed");
    // A script (its command name is its file's) that starts two children, copies of
    // sleep with a name of their own.
    let dir = tempfile::tempdir().unwrap();
    let tag = unique_name("");
    let (par, kid) = (format!("par{tag}"), format!("kid{tag}"));
    std::fs::copy("/bin/sleep", dir.path().join(&kid)).unwrap();
    let script = dir.path().join(&par);
    std::fs::write(
        &script,
        format!("#!/bin/sh\n\"$(dirname \"$0\")/{kid}\" 1000 &\n\"$(dirname \"$0\")/{kid}\" 1001 &\nwait\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let family = Command::new(&script).process_group(0).spawn().unwrap();
    let pgid = family.id() as i32;
    struct Group(i32, Child);
    impl Drop for Group {
        fn drop(&mut self) {
            // SAFETY: kill has no memory arguments; a negative pid names our own group.
            unsafe { libc::kill(-self.0, libc::SIGKILL) };
            let _ = self.1.wait();
        }
    }
    let _family = Group(pgid, family);
    for ((w, h), key) in SIZES.into_iter().zip(["F5", "t"]) {
        let top = Top::start(w, h);
        top.keys(&["\\"]);
        top.wait_for("filter: ");
        top.type_text(&tag);
        top.keys(&["Enter"]);
        top.wait("the script and its two children", |s| {
            row_pids(s).len() == 3
        });
        top.keys(&[key]);
        top.wait("the children under the script", |s| {
            let names: Vec<String> = rows(s).iter().map(|r| r[r.len() - 1].clone()).collect();
            s.contains(&format!("├─ {kid}"))
                && s.contains(&format!("└─ {kid}"))
                && names == [par.clone(), kid.clone(), kid.clone()]
                && row_pids(s).first() == Some(&(pgid as u32))
        });
        top.keys(&[key]);
        top.wait("the flat list", |s| {
            !s.contains("─ ") && row_pids(s).len() == 3
        });
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_sort_keys_move_and_reverse_the_sort() {
    require_tool!(has_tmux(), "tmux is not installed");
    for ((w, h), reverse) in SIZES.into_iter().zip(["r", "I"]) {
        let top = Top::start(w, h);
        top.wait("RSS▼", |s| header(s).contains("RSS▼"));
        top.keys(&[">"]);
        top.wait("HWM▼", |s| header(s).contains("HWM▼"));
        top.keys(&["<", "<"]);
        top.wait("CPU%▼", |s| header(s).contains("CPU%▼"));
        top.keys(&[reverse]);
        top.wait("CPU%▲", |s| header(s).contains("CPU%▲"));
        // F6 sorts afresh: in the column's own direction.
        sort_by_pid(&top);
        top.wait("PID ascending", |s| {
            let p = row_pids(s);
            p.len() > 3 && p.windows(2).all(|w| w[0] < w[1]) && !header(s).contains('▲')
        });
        top.keys(&[reverse]);
        top.wait("PID descending", |s| {
            let p = row_pids(s);
            header(s).contains("PID▲") && p.len() > 3 && p.windows(2).all(|w| w[0] > w[1])
        });
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_kill_sends_sigterm_and_the_process_exits() {
    require_tool!(has_tmux(), "tmux is not installed");
    for ((w, h), key) in SIZES.into_iter().zip(["F9", "k"]) {
        let name = unique_name("vic");
        let mut victim = Specimen::start(&["--comm", &name]);
        let pid = victim.pid();
        let top = Top::start(w, h);
        filter_to(&top, "\\", &name, pid);
        top.keys(&[key]);
        top.wait("the signal menu, SIGTERM first", |s| {
            s.contains(&format!("send to {pid} ({name})")) && s.contains("15 SIGTERM")
        });
        // SIGTERM is the one highlighted: Enter sends it.
        top.keys(&["Enter"]);
        top.wait_for(&format!("SIGTERM sent to {pid} ({name})"));
        let status = exit_of(&mut victim.child);
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_space_tags_processes_for_one_kill() {
    require_tool!(has_tmux(), "tmux is not installed");
    let tag = unique_name("tg");
    let mut victims: Vec<Specimen> = (0..2)
        .map(|i| Specimen::start(&["--comm", &format!("{tag}{i}")]))
        .collect();
    let (w, h) = SIZES[1];
    let top = Top::start(w, h);
    top.keys(&["\\"]);
    top.wait_for("filter: ");
    top.type_text(&tag);
    top.keys(&["Enter"]);
    top.wait("both victims", |s| row_pids(s).len() == 2);
    top.keys(&["Space"]);
    top.wait_for("1 tagged");
    top.keys(&["Space"]);
    top.wait_for("2 tagged");
    top.keys(&["k"]);
    top.wait_for("send to 2 tagged processes");
    top.keys(&["Enter"]);
    top.wait_for("SIGTERM sent to 2 processes");
    for v in &mut victims {
        assert_eq!(exit_of(&mut v.child).signal(), Some(libc::SIGTERM));
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_kill_refused_says_why() {
    require_tool!(has_tmux(), "tmux is not installed");
    skip_unless!(nobody_can_run().is_ok(), format!("{:?}", nobody_can_run()));
    // A process of root's, and top run as nobody: the kernel refuses (EPERM).
    let name = unique_name("root");
    let mut victim = Specimen::start(&["--comm", &name]);
    let pid = victim.pid();
    let top = Top::start_with(
        80,
        24,
        "setpriv --reuid=65534 --regid=65534 --clear-groups --",
    );
    filter_to(&top, "\\", &name, pid);
    top.keys(&["k"]);
    top.wait_for(&format!("send to {pid}"));
    top.keys(&["Enter"]);
    let screen = top.wait_for("EPERM");
    assert!(
        screen.contains(&format!("SIGTERM refused to {pid} ({name}): EPERM")),
        "{screen}"
    );
    assert!(
        victim.child.try_wait().unwrap().is_none(),
        "pid {pid} got the signal"
    );
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_kill_of_a_process_gone_says_so() {
    require_tool!(has_tmux(), "tmux is not installed");
    let name = unique_name("gone");
    let mut victim = Specimen::start(&["--comm", &name]);
    let pid = victim.pid();
    let top = Top::start(80, 24);
    filter_to(&top, "\\", &name, pid);
    top.keys(&["k"]);
    top.wait_for(&format!("send to {pid}"));
    // The process exits (and is reaped) while the menu is up.
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    top.keys(&["Enter"]);
    top.wait_for(&format!(
        "SIGTERM refused to {pid} ({name}): ESRCH: the process is gone"
    ));
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_paging_keys_move_a_page_and_to_the_ends() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        // With the kernel threads, more processes than a page.
        top.keys(&["K"]);
        top.wait("kernel threads shown", |s| !s.contains("hidden (K)"));
        sort_by_pid(&top);
        // The selection at the bottom of the page, the last process, at End; at the
        // top of the page after a page up; at its bottom again after a page down (the
        // list changes meanwhile as processes come and go: positions are checked on
        // the screen they are on).
        top.keys(&["End"]);
        let last = top.wait_selected("the last row", |p, s| {
            let on_screen = row_pids(s);
            p.is_some()
                && on_screen.last().copied() == p
                && !on_screen.contains(&1)
                && on_screen.iter().all(|q| Some(*q) <= p)
        });
        top.keys(&["PPage"]);
        let up = top.wait_selected("a page up", |p, s| {
            p.is_some() && p < last && row_pids(s).first().copied() == p
        });
        top.keys(&["NPage"]);
        top.wait_selected("a page down", |p, s| {
            p > up && row_pids(s).last().copied() == p
        });
        top.keys(&["Home"]);
        top.wait_selected("the first row", |p, _| p == Some(1));
        assert!(up > Some(1));
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_kernel_threads_hidden_until_k() {
    require_tool!(has_tmux(), "tmux is not installed");
    let kernel = kernel_threads();
    skip_unless!(!kernel.is_empty(), "no kernel threads visible here");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        // Reversed, the RSS sort would put the threads (no RSS) first, were they shown.
        top.keys(&["r"]);
        top.wait("RSS▲ without a kernel thread", |s| {
            let shown = row_pids(s);
            header(s).contains("RSS▲")
                && s.contains("kernel threads hidden (K)")
                && !shown.is_empty()
                && shown.iter().all(|p| !kernel.contains(p))
        });
        sort_by_pid(&top);
        top.keys(&["K", "Home"]);
        top.wait("kthreadd", |s| {
            row_pids(s).contains(&2) && !s.contains("hidden (K)")
        });
        top.keys(&["K"]);
        top.wait("hidden again", |s| !row_pids(s).contains(&2));
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_mouse_click_selects_a_row_and_sorts_by_a_header() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        let screen = top.wait("rows", |s| row_pids(s).len() > 4);
        let lines: Vec<&str> = screen.lines().collect();
        let header_y = lines
            .iter()
            .position(|l| l.trim_start().starts_with("PID"))
            .unwrap();
        // The fourth row.
        let want: u32 = lines[header_y + 4]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        top.click(2, header_y as u16 + 4);
        top.wait_selected("the clicked row", |p, _| p == Some(want));
        let pid_x = lines[header_y].find("PID").unwrap() as u16;
        top.click(pid_x, header_y as u16);
        top.wait("PID▼", |s| header(s).contains("PID▼"));
        top.click(pid_x, header_y as u16);
        top.wait("PID▲", |s| header(s).contains("PID▲"));
        // The row clicked stays selected across the re-sorts.
        assert_eq!(top.selected_pid(), Some(want));
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_at_30x6_shows_whole_pids_and_commands() {
    require_tool!(has_tmux(), "tmux is not installed");
    let name = unique_name("tiny");
    let specimen = Specimen::start(&["--comm", &name]);
    let top = Top::start(30, 6);
    top.wait("PID and COMMAND of two processes", |s| {
        let head = header(s);
        row_pids(s).len() == 2 && head.contains("PID") && head.contains("COMMAND")
    });
    let screen = filter_to(&top, "\\", &name, specimen.pid());
    let row = rows(&screen)[0].clone();
    assert_eq!(row.first(), Some(&specimen.pid().to_string()), "{screen}");
    assert_eq!(row.last(), Some(&name), "the whole name: {screen}");
    // A column is shown whole or not at all.
    let mut rest = header(&screen).replace(['▼', '▲'], "");
    for name in ["PID", "USER", "CPU%", "RSS", "COMMAND"] {
        rest = rest.replace(name, "");
    }
    assert_eq!(rest.trim(), "", "{screen}");
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_quits_and_restores_the_terminal_every_way() {
    require_tool!(has_tmux(), "tmux is not installed");
    let ways: [(&str, Option<i32>); 5] = [
        ("q", None),
        ("F10", None),
        ("C-c", None),
        ("SIGTERM", Some(libc::SIGTERM)),
        ("SIGHUP", Some(libc::SIGHUP)),
    ];
    for (way, signal) in ways {
        let top = Top::start(80, 24);
        assert_eq!(
            top.modes(),
            "1 1",
            "{way}: the alternate screen and the mouse"
        );
        match signal {
            // SAFETY: kill has no memory arguments; the pid is top's, in our session.
            Some(sig) => assert_eq!(unsafe { libc::kill(top.pid() as i32, sig) }, 0),
            None => top.keys(&[way]),
        }
        let screen = top.wait_for(EXITED);
        assert!(
            screen.contains(&format!("{EXITED} 0")),
            "{way}: exit status: {screen}"
        );
        assert_eq!(top.modes(), "0 0", "{way}: the terminal is restored");
    }
}

/// A top whose terminal went away (the tmux session killed, an ssh connection lost)
/// used to stay, spinning in crossterm's read of the end of file while the samples
/// it no longer took piled up (400 MB in 18 minutes).
#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_exits_when_its_terminal_goes_away() {
    require_tool!(has_tmux(), "tmux is not installed");
    let top = Top::start(80, 24);
    let pid = top.pid();
    drop(top);
    let deadline = Instant::now() + PATIENCE;
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        });
        if zombie {
            break;
        }
        assert!(Instant::now() < deadline, "top {pid} outlived its terminal");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_16_top_shows_a_kill_on_the_events_line_with_its_sender() {
    require_tool!(has_tmux(), "tmux is not installed");
    skip_unless!(
        crate::common::is_root(),
        "tracepoints and taskstats need root"
    );
    let (w, h) = SIZES[0];
    let top = Top::start(w, h);
    let screen = top.wait("the event sources open", |s| !s.contains("events: opening"));
    assert!(
        !screen.contains("events: unavailable"),
        "as root the sources open:\n{screen}"
    );
    let name = unique_name("evk");
    let mut victim = Specimen::start(&["--comm", &name]);
    let pid = victim.pid();
    let mut sender = Command::new("sh")
        .args(["-c", "kill -KILL $1", "sh", &pid.to_string()])
        .spawn()
        .unwrap();
    let sender_pid = sender.id();
    assert!(sender.wait().unwrap().success());
    assert_eq!(exit_of(&mut victim.child).signal(), Some(libc::SIGKILL));
    let screen = top.wait_for(&format!("{name}[{pid}] killed by SIGKILL"));
    let line = screen
        .lines()
        .find(|l| l.contains(&format!("[{pid}] killed by SIGKILL")))
        .unwrap_or_default();
    assert!(
        line.contains("  exit  ") && line.contains(&format!("from sh[{sender_pid}]")),
        "the exit, time-stamped, with who sent the kill: {line:?}\n{screen}"
    );
    // Time-stamped as watch prints: HH:MM:SS.mmm after the label.
    let stamp = line
        .split_whitespace()
        .find(|w| w.len() == 12 && w.as_bytes()[2] == b':' && w.as_bytes()[8] == b'.');
    assert!(stamp.is_some(), "{line:?}");
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_16_top_as_nobody_says_once_why_there_are_no_events() {
    require_tool!(has_tmux(), "tmux is not installed");
    skip_unless!(nobody_can_run().is_ok(), format!("{:?}", nobody_can_run()));
    let top = Top::start_with(
        140,
        40,
        "setpriv --reuid=65534 --regid=65534 --clear-groups --",
    );
    let screen = top.wait_for("events: unavailable: ");
    let lines: Vec<&str> = screen.lines().filter(|l| l.contains("events")).collect();
    assert_eq!(lines.len(), 1, "one line says why:\n{screen}");
    assert!(
        lines[0].contains("root") || lines[0].contains("CAP_"),
        "it says what grants them: {}",
        lines[0]
    );
    // The table goes on below it.
    assert!(!row_pids(&screen).is_empty(), "{screen}");
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_15_top_isolation_names_a_live_container_its_limit_and_a_zombie() {
    require_tool!(has_tmux(), "tmux is not installed");
    // A memory cgroup named as docker names its scopes, beneath the test's own.
    let id = format!("{:08x}", std::process::id()).repeat(8);
    let jail = match crate::common::MemJail::named(100 << 20, &format!("docker-{id}.scope")) {
        Ok(j) => j,
        Err(why) => {
            eprintln!("SKIPPED: no memory cgroup to make: {why}");
            return;
        }
    };
    // A shell joins it, starts a copy of sleep with a name of its own that exits in
    // half a second, and becomes another copy: the exec'd sleep never waits, so its
    // child stays a zombie.
    let dir = tempfile::tempdir().unwrap();
    let name = unique_name("iso");
    let bin = dir.path().join(&name);
    std::fs::copy("/bin/sleep", &bin).unwrap();
    let mut family = Command::new("sh")
        .args([
            "-c",
            "echo $$ > \"$1\" || exit 1; \"$0\" 0.5 & exec \"$0\" 1000",
            bin.to_str().unwrap(),
            jail.dir.join("cgroup.procs").to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    struct Reaped<'a>(&'a mut Child);
    impl Drop for Reaped<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let parent = family.id();
    let _family = Reaped(&mut family);
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        top.keys(&["\\"]);
        top.wait_for("filter: ");
        top.type_text(&name);
        top.keys(&["Enter"]);
        top.keys(&["4"]);
        let screen = top.wait("the container's process and its zombie", |s| {
            let rows = rows(s);
            rows.len() == 2
                && rows.iter().any(|r| r[0] == parent.to_string())
                && s.contains(&format!("{name} <defunct>"))
                && s.contains("100.0 MiB")
        });
        let live = screen
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&parent.to_string()))
            .unwrap();
        let zombie = screen.lines().find(|l| l.contains("<defunct>")).unwrap();
        // The container's short id, the runtime where the width has room.
        assert!(live.contains(&id[..12]), "{w}x{h}: {live}\n{screen}");
        if w >= 140 {
            assert!(live.contains(&format!("{} docker", &id[..12])), "{live}");
            // The CPU and pids sides of what binds it, where the width has room.
            let header = screen.lines().find(|l| l.contains("MEMLIMIT")).unwrap();
            assert!(
                ["CPUS", "CPUS%", "PIDLIMIT", "PIDS%"]
                    .iter()
                    .all(|h| header.split_whitespace().any(|c| c == *h)),
                "{header}"
            );
        }
        // The zombie has no memory, limit or placement of its own to show.
        assert!(
            !zombie.contains("100.0 MiB") && !zombie.contains(&id[..12]),
            "{zombie}"
        );
    }
}

/// The replay header's `sample N of M`, as (N, M).
fn replayed(screen: &str) -> Option<(u32, u32)> {
    let line = screen.lines().find(|l| l.starts_with("recorded "))?;
    let rest = &line[line.find("sample ")? + "sample ".len()..];
    let mut words = rest.split(' ');
    let n = words.next()?.parse().ok()?;
    (words.next()? == "of").then_some(())?;
    let m = words
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit());
    Some((n, m.parse().ok()?))
}

/// `top --store` replays a recording made while a named sleeper ran: the last sample
/// first, `[` `{` `}` and `g` step through them (a bad time says why and stays), the
/// sleeper is in the table, `k` is refused with the reason, and `q` restores the
/// terminal.
#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_17_top_store_replays_a_recording_with_its_keys() {
    require_tool!(has_tmux(), "tmux is not installed");
    let name = unique_name("rply");
    let specimen = Specimen::start(&["--comm", &name]);
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let st = store.to_str().unwrap();
    crate::common::run_ok(crate::common::syslens().args([
        "record",
        "--store",
        st,
        "--interval",
        "1",
        "--for",
        "6s",
    ]));
    // A whole second past the end: the last sample may lie in the second `as_secs` floors to.
    let after = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1;
    for (w, h) in SIZES {
        let top = Top::start_args(w, h, "", &format!("--store {st}"));
        let screen = top.wait("the header's sample N of M", |s| replayed(s).is_some());
        let (n, m) = replayed(&screen).unwrap();
        assert!(
            m >= 3 && n == m,
            "{w}x{h}: starts at the last sample:\n{screen}"
        );
        let at = |top: &Top, n: u32, what: &str| {
            top.wait(what, |s| replayed(s) == Some((n, m)));
        };
        top.type_text("[");
        at(&top, m - 1, "[: one sample back");
        top.type_text("{");
        at(&top, 1, "{: a minute back, the first sample");
        top.type_text("[");
        top.type_text("}");
        at(&top, m, "}: a minute on, the last sample");
        top.type_text("]");
        top.type_text("[[");
        at(&top, m - 2, "] stays at the last, [ [ two back");
        top.keys(&["g"]);
        top.wait_for("go to: ");
        top.type_text("garbage");
        top.keys(&["Enter"]);
        let screen = top.wait_for("cannot read the time");
        assert_eq!(replayed(&screen), Some((m - 2, m)), "a bad time stays put");
        top.keys(&["g"]);
        top.wait_for("go to: ");
        top.type_text(&format!("@{after}"));
        top.keys(&["Enter"]);
        at(&top, m, "g @NOW: the last sample");
        filter_to(&top, "\\", &name, specimen.pid());
        top.keys(&["k"]);
        top.wait_for("a recorded sample: nothing to signal");
        assert!(!top.screen().contains("send to"), "no kill menu opens");
        top.keys(&["q"]);
        let screen = top.wait_for(EXITED);
        assert!(screen.contains(&format!("{EXITED} 0")), "{screen}");
        assert_eq!(top.modes(), "0 0", "the terminal is restored");
    }
}

/// A store that is not there, or not a store, is refused with the reason (exit 2),
/// before any terminal is needed.
#[test]
fn issue_17_top_store_refuses_what_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |says: &str| {
        let out = crate::common::syslens()
            .args(["top", "--store", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    };
    refused("no store in");
    std::fs::write(dir.path().join("syslens.db"), b"not a database at all").unwrap();
    refused("syslens: ");
}
