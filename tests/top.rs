//! `syslens top` in a real terminal (tmux): every key of the help screen at both SIZES,
//! the mouse (click and wheel), the kill flow (delivered, refused, too late), the header's
//! meters against the machine, the system view's panes, the layout at 140x40, 80x24 and
//! 30x6, and the terminal restored on every way out. Each test waits for what the screen
//! shows, never for a fixed time.

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
        match self.selected_within(PATIENCE, &done) {
            Ok(pid) => pid,
            Err((pid, screen)) => panic!("waited for {what}; selected {pid:?}:\n{screen}"),
        }
    }

    /// The selected pid once it and its screen satisfy `done`, within `patience`; else
    /// the last selection and screen seen.
    fn selected_within(
        &self,
        patience: Duration,
        done: impl Fn(Option<u32>, &str) -> bool,
    ) -> Result<Option<u32>, (Option<u32>, String)> {
        let deadline = Instant::now() + patience;
        loop {
            let (screen, pid) = self.snapshot();
            if done(pid, &screen) {
                return Ok(pid);
            }
            if Instant::now() >= deadline {
                return Err((pid, screen));
            }
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

    /// A turn of the mouse wheel at a cell (0-based), as the terminal reports it
    /// (SGR: button 64 up, 65 down; a wheel has no release).
    fn wheel(&self, down: bool, x: u16, y: u16) {
        let button = if down { 65 } else { 64 };
        let seq = format!("\x1b[<{button};{};{}M", x + 1, y + 1);
        let hex: Vec<String> = seq.bytes().map(|b| format!("{b:02x}")).collect();
        let mut args = vec!["send-keys", "-t", &self.session, "-H"];
        args.extend(hex.iter().map(String::as_str));
        self.tmux(&args);
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

/// Clears the filter (and a message) with Esc, and waits for the unfiltered table: the
/// next key of a test that goes on in the same top is not read as Alt and that key.
fn clear_filter(top: &Top) {
    top.keys(&["Escape"]);
    top.wait("the filter cleared", |s| {
        !s.contains("filter:")
            && !s.contains(" sent to ")
            && !s.contains(" refused to ")
            && row_pids(s).len() > 1
    });
}

/// The cell of `row` under the column `name` of `header` (numbers and their headers
/// are right-aligned: the cell is the last word of the row up to the header's end).
fn cell_under(header: &str, row: &str, name: &str) -> Option<String> {
    let at = header.find(name)?;
    let end = header[..at].chars().count() + name.chars().count();
    let head: String = row.chars().take(end).collect();
    head.split_whitespace().last().map(str::to_owned)
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
    // Two processes whose names contain the one searched: F3 steps from one to the
    // other, and back.
    let name = unique_name("srch");
    let first = Specimen::start(&["--comm", &name]);
    let second = Specimen::start(&["--comm", &format!("{name}b")]);
    let both = [first.pid(), second.pid()];
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        top.wait("both specimens listed", |s| {
            both.iter().all(|p| row_pids(s).contains(p))
        });
        for key in ["F3", "/"] {
            let at = format!("{key} at {w}x{h}");
            // The selection away from both, so that the jump shows.
            top.keys(&["Home"]);
            top.wait_selected(&format!("{at}: the first row"), |p, _| {
                p.is_some_and(|p| !both.contains(&p))
            });
            top.keys(&[key]);
            top.wait_for("search: ");
            top.type_text(&name);
            let one = top
                .wait_selected(&format!("{at}: a match"), |p, _| {
                    p.is_some_and(|p| both.contains(&p))
                })
                .unwrap();
            let other = if one == both[0] { both[1] } else { both[0] };
            let screen = top.screen();
            assert!(
                rows(&screen).len() > 3,
                "{at}: a search filters nothing: {screen}"
            );
            top.keys(&["F3"]);
            top.wait_selected(&format!("{at}: F3, the next match"), |p, _| {
                p == Some(other)
            });
            top.keys(&["F3"]);
            top.wait_selected(&format!("{at}: F3, back to the first"), |p, _| {
                p == Some(one)
            });
            // Esc ends the search and clears it.
            top.keys(&["Escape"]);
            top.wait(&format!("{at}: the search closed"), |s| {
                !s.contains("search: ")
            });
            // A name nobody has: the status line says so.
            top.keys(&[key]);
            top.wait_for("search: ");
            top.type_text("no-such-process-name");
            top.wait_for("not found");
            top.keys(&["Escape"]);
            top.wait(&format!("{at}: the search cleared"), |s| {
                !s.contains("not found") && !s.contains("search: ")
            });
        }
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_filter_shows_n_of_m_and_esc_clears_it() {
    require_tool!(has_tmux(), "tmux is not installed");
    let name = unique_name("filt");
    let specimen = Specimen::start(&["--comm", &name]);
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        for key in ["F4", "\\"] {
            let at = format!("{key} at {w}x{h}");
            let screen = filter_to(&top, key, &name, specimen.pid());
            let line = screen
                .lines()
                .find(|l| l.contains("processes shown"))
                .unwrap_or_else(|| panic!("{at}: no N of M line:\n{screen}"));
            assert!(line.starts_with("1 of "), "{at}: {line}");
            // Esc, with no line being typed, clears the filter.
            top.keys(&["Escape"]);
            top.wait(&format!("{at}: every process again"), |s| {
                row_pids(s).len() > 3
                    && !s.contains("filter:")
                    && !s.lines().any(|l| l.starts_with("1 of "))
            });
        }
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
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        filter_to(&top, "\\", &name, pid);
        top.keys(&["Enter"]);
        let screen = top.wait(&format!("{w}x{h}: the inspect view of the specimen"), |s| {
            s.contains(&format!(" inspect {pid} (Esc back")) && s.contains(&name)
        });
        assert!(screen.contains("Esc back"), "{screen}");
        top.keys(&["Escape"]);
        top.wait(&format!("{w}x{h}: the table again"), |s| {
            row_pids(s) == vec![pid] && !s.contains("(Esc back")
        });
        top.keys(&["q"]);
        top.wait_for(EXITED);
    }
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
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        top.keys(&["\\"]);
        top.wait_for("filter: ");
        top.type_text(&tag);
        top.keys(&["Enter"]);
        top.wait("the script and its two children", |s| {
            row_pids(s).len() == 3
        });
        for key in ["F5", "t"] {
            let at = format!("{key} at {w}x{h}");
            top.keys(&[key]);
            top.wait(&format!("{at}: the children under the script"), |s| {
                let names: Vec<String> = rows(s).iter().map(|r| r[r.len() - 1].clone()).collect();
                s.contains(&format!("├─ {kid}"))
                    && s.contains(&format!("└─ {kid}"))
                    && names == [par.clone(), kid.clone(), kid.clone()]
                    && row_pids(s).first() == Some(&(pgid as u32))
            });
            top.keys(&[key]);
            top.wait(&format!("{at}: the flat list"), |s| {
                !s.contains("─ ") && row_pids(s).len() == 3
            });
        }
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_sort_keys_move_and_reverse_the_sort() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        top.wait("RSS▼", |s| header(s).contains("RSS▼"));
        top.keys(&[">"]);
        top.wait("> HWM▼", |s| header(s).contains("HWM▼"));
        top.keys(&["<", "<"]);
        top.wait("< < CPU%▼", |s| header(s).contains("CPU%▼"));
        // The arrows do as < and >.
        top.keys(&["Right"]);
        top.wait("→ RSS▼", |s| header(s).contains("RSS▼"));
        top.keys(&["Left"]);
        top.wait("← CPU%▼", |s| header(s).contains("CPU%▼"));
        for reverse in ["r", "I"] {
            let at = format!("{reverse} at {w}x{h}");
            top.keys(&["<"]);
            top.wait(&format!("{at}: USER▼"), |s| header(s).contains("USER▼"));
            top.keys(&[reverse]);
            top.wait(&format!("{at}: USER▲"), |s| header(s).contains("USER▲"));
            // F6 sorts afresh: in the column's own direction.
            sort_by_pid(&top);
            top.wait(&format!("{at}: PID ascending"), |s| {
                let p = row_pids(s);
                p.len() > 3 && p.windows(2).all(|w| w[0] < w[1]) && !header(s).contains('▲')
            });
            top.keys(&[reverse]);
            top.wait(&format!("{at}: PID descending"), |s| {
                let p = row_pids(s);
                header(s).contains("PID▲") && p.len() > 3 && p.windows(2).all(|w| w[0] > w[1])
            });
            top.keys(&[reverse]);
            top.wait(&format!("{at}: PID ascending again"), |s| {
                let p = row_pids(s);
                header(s).contains("PID▼") && p.len() > 3 && p.windows(2).all(|w| w[0] < w[1])
            });
            // Back to CPU% for the next key: PID, then right of it USER, CPU%.
            top.keys(&[">", ">"]);
            top.wait(&format!("{at}: CPU%▼"), |s| header(s).contains("CPU%▼"));
        }
    }
}

/// What the screen shows of each view: its sorted column (the view's own when the
/// sort's column is not among its columns), or the system view's panes.
fn shows_view(screen: &str, view: char) -> bool {
    let head = header(screen);
    match view {
        '1' => head.contains("RSS▼"),
        '2' => head.contains("CPU%▼") && !head.contains("RSS"),
        '3' => head.contains("FDS▼"),
        '4' => head.contains("OOM▼"),
        _ => head.is_empty() && screen.contains("cpu pressure") && screen.contains(" memory "),
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_number_keys_and_tab_switch_views() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        top.wait("the memory view", |s| shows_view(s, '1'));
        for view in ['2', '3', '4', '5', '1'] {
            let key = view.to_string();
            top.keys(&[key.as_str()]);
            top.wait(&format!("{view} at {w}x{h}"), |s| shows_view(s, view));
        }
        // Tab: the next view, round to the first.
        for view in ['2', '3', '4', '5', '1'] {
            top.keys(&["Tab"]);
            top.wait(&format!("Tab to {view} at {w}x{h}"), |s| {
                shows_view(s, view)
            });
        }
    }
}

/// `p` adds the PSS column to the memory view (read from each process's
/// smaps_rollup) and takes it away again.
#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_p_shows_and_hides_pss() {
    require_tool!(has_tmux(), "tmux is not installed");
    let name = unique_name("pss");
    let specimen = Specimen::start(&["--comm", &name]);
    let pid = specimen.pid();
    for (w, h) in SIZES {
        let at = format!("{w}x{h}");
        let top = Top::start(w, h);
        filter_to(&top, "\\", &name, pid);
        top.keys(&["p"]);
        // Sorted by it, PSS is shown at any width: F6, the column before COMMAND.
        top.keys(&["F6"]);
        top.wait_for("sort by");
        top.keys(&["End", "Up", "Enter"]);
        let screen = top.wait(&format!("{at}: PSS▼ with a figure"), |s| {
            let head = header(s);
            let row = s
                .lines()
                .find(|l| l.split_whitespace().next() == Some(&pid.to_string()));
            head.contains("PSS▼")
                && row
                    .and_then(|r| cell_under(&head, r, "PSS▼"))
                    .is_some_and(|c| c != "-")
        });
        assert!(!screen.contains("sort by"), "{at}: {screen}");
        top.keys(&["p"]);
        top.wait(&format!("{at}: p again: no PSS, sorted by RSS"), |s| {
            let head = header(s);
            !head.contains("PSS") && head.contains("RSS▼") && row_pids(s) == vec![pid]
        });
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_kill_sends_sigterm_and_the_process_exits() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        for key in ["F9", "k"] {
            let name = unique_name("vic");
            let mut victim = Specimen::start(&["--comm", &name]);
            let pid = victim.pid();
            filter_to(&top, "\\", &name, pid);
            top.keys(&[key]);
            top.wait(
                &format!("{key} at {w}x{h}: the signal menu, SIGTERM first"),
                |s| s.contains(&format!("send to {pid} ({name})")) && s.contains("15 SIGTERM"),
            );
            // SIGTERM is the one highlighted: Enter sends it.
            top.keys(&["Enter"]);
            top.wait_for(&format!("SIGTERM sent to {pid} ({name})"));
            let status = exit_of(&mut victim.child);
            assert_eq!(status.signal(), Some(libc::SIGTERM), "{key}: {status:?}");
            clear_filter(&top);
        }
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_space_tags_processes_for_one_kill_and_u_untags() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let at = format!("{w}x{h}");
        let tag = unique_name("tg");
        let mut victims: Vec<Specimen> = (0..2)
            .map(|i| Specimen::start(&["--comm", &format!("{tag}{i}")]))
            .collect();
        let pids: Vec<u32> = victims.iter().map(Specimen::pid).collect();
        let top = Top::start(w, h);
        top.keys(&["\\"]);
        top.wait_for("filter: ");
        top.type_text(&tag);
        top.keys(&["Enter"]);
        top.wait(&format!("{at}: both victims"), |s| row_pids(s).len() == 2);
        // Space tags the selected row and moves down.
        top.keys(&["Home"]);
        let first = top
            .wait_selected(&format!("{at}: the first victim"), |p, s| {
                p.is_some() && row_pids(s).first().copied() == p
            })
            .unwrap();
        top.keys(&["Space"]);
        top.wait_selected(&format!("{at}: 1 tagged, the next selected"), |p, s| {
            s.contains("1 tagged") && p.is_some_and(|p| p != first && pids.contains(&p))
        });
        top.keys(&["Space"]);
        top.wait_for("2 tagged");
        // U untags them all: k then offers the selected process alone.
        top.keys(&["U"]);
        top.wait(&format!("{at}: U: none tagged"), |s| !s.contains("tagged"));
        top.keys(&["k"]);
        top.wait(&format!("{at}: the selected one's menu"), |s| {
            s.contains("send to ") && !s.contains("tagged processes")
        });
        top.keys(&["Escape"]);
        top.wait(&format!("{at}: the menu closed"), |s| {
            !s.contains("send to ")
        });
        // Tagged again, both get the one kill.
        top.keys(&["Home"]);
        top.wait_selected(&format!("{at}: the first row again"), |p, s| {
            p.is_some() && row_pids(s).first().copied() == p
        });
        top.keys(&["Space"]);
        top.wait_for("1 tagged");
        top.keys(&["Space"]);
        top.wait_for("2 tagged");
        top.keys(&["k"]);
        top.wait_for("send to 2 tagged processes");
        top.keys(&["Enter"]);
        top.wait_for("SIGTERM sent to 2 processes");
        for v in &mut victims {
            assert_eq!(exit_of(&mut v.child).signal(), Some(libc::SIGTERM), "{at}");
        }
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
    for (w, h) in SIZES {
        let top = Top::start_with(
            w,
            h,
            "setpriv --reuid=65534 --regid=65534 --clear-groups --",
        );
        filter_to(&top, "\\", &name, pid);
        for key in ["F9", "k"] {
            top.keys(&[key]);
            top.wait_for(&format!("send to {pid}"));
            top.keys(&["Enter"]);
            let screen = top.wait_for("EPERM");
            assert!(
                screen.contains(&format!("SIGTERM refused to {pid} ({name}): EPERM")),
                "{key} at {w}x{h}: {screen}"
            );
            assert!(
                victim.child.try_wait().unwrap().is_none(),
                "pid {pid} got the signal"
            );
            // Any key takes the message away; the filter stays.
            top.keys(&["Down"]);
            top.wait("the message gone", |s| {
                !s.contains("EPERM") && row_pids(s) == vec![pid]
            });
        }
    }
}

#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_kill_of_a_process_gone_says_so() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let name = unique_name("gone");
        let mut victim = Specimen::start(&["--comm", &name]);
        let pid = victim.pid();
        let top = Top::start(w, h);
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
        // A process that starts below the selection moves it off the top row: the
        // page up is tried again from the end (other builds start processes often).
        let mut tries = 0;
        let up = loop {
            top.keys(&["End"]);
            let last = top.wait_selected("the last row", |p, s| {
                let on_screen = row_pids(s);
                p.is_some()
                    && on_screen.last().copied() == p
                    && !on_screen.contains(&1)
                    && on_screen.iter().all(|q| Some(*q) <= p)
            });
            top.keys(&["PPage"]);
            let up = top.selected_within(Duration::from_secs(3), |p, s| {
                p.is_some() && p < last && row_pids(s).first().copied() == p
            });
            tries += 1;
            match up {
                Ok(up) => break up,
                Err((pid, screen)) if tries == 3 => {
                    panic!("{w}x{h}: a page up, {tries} tries; selected {pid:?}:\n{screen}")
                }
                Err(_) => {}
            }
        };
        top.keys(&["NPage"]);
        top.wait_selected("a page down", |p, s| {
            p > up && row_pids(s).last().copied() == p
        });
        top.keys(&["Home"]);
        top.wait_selected("the first row", |p, _| p == Some(1));
        assert!(up > Some(1));
        // The arrows move one row.
        top.keys(&["Down"]);
        top.wait_selected(&format!("{w}x{h}: ↓ the second row"), |p, s| {
            p.is_some() && row_pids(s).get(1).copied() == p
        });
        top.keys(&["Down"]);
        top.wait_selected(&format!("{w}x{h}: ↓ the third row"), |p, s| {
            p.is_some() && row_pids(s).get(2).copied() == p
        });
        top.keys(&["Up"]);
        top.wait_selected(&format!("{w}x{h}: ↑ the second row"), |p, s| {
            p.is_some() && row_pids(s).get(1).copied() == p
        });
        top.keys(&["Up"]);
        top.wait_selected(&format!("{w}x{h}: ↑ the first row"), |p, _| p == Some(1));
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
    // The column of `name` in the header line of `screen`, in cells.
    let column_of = |screen: &str, name: &str| -> (u16, u16) {
        let lines: Vec<&str> = screen.lines().collect();
        let y = lines
            .iter()
            .position(|l| l.trim_start().starts_with("PID"))
            .unwrap();
        let at = lines[y].find(name).unwrap();
        (lines[y][..at].chars().count() as u16, y as u16)
    };
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        // By PID, the first rows stay where they are while other processes come, go
        // and grow.
        sort_by_pid(&top);
        let screen = top.wait("rows", |s| row_pids(s).len() > 4);
        let (_, header_y) = column_of(&screen, "PID");
        // The fourth row.
        let want = row_pids(&screen)[3];
        top.click(2, header_y + 4);
        top.wait_selected(&format!("{w}x{h}: the clicked row"), |p, _| p == Some(want));
        // A header: sorts by its column; again: reversed.
        let (user_x, _) = column_of(&top.screen(), "USER");
        top.click(user_x, header_y);
        top.wait(&format!("{w}x{h}: USER▼"), |s| {
            header(s).contains("USER▼")
        });
        top.click(user_x, header_y);
        top.wait(&format!("{w}x{h}: USER▲"), |s| {
            header(s).contains("USER▲")
        });
        let (pid_x, _) = column_of(&top.screen(), "PID");
        top.click(pid_x, header_y);
        top.wait(&format!("{w}x{h}: PID▼"), |s| header(s).contains("PID▼"));
        top.click(pid_x, header_y);
        top.wait(&format!("{w}x{h}: PID▲"), |s| header(s).contains("PID▲"));
        // The row clicked stays selected across the re-sorts.
        assert_eq!(top.selected_pid(), Some(want));
    }
}

/// The wheel moves the selection three rows a notch; past the page the rows scroll
/// with it, and as many notches up bring the first process back to the top.
#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_mouse_wheel_scrolls_the_selection_and_the_rows() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        // With the kernel threads, more processes than a page, in a stable order.
        top.keys(&["K"]);
        top.wait("kernel threads shown", |s| !s.contains("hidden (K)"));
        sort_by_pid(&top);
        top.keys(&["Home"]);
        let screen = top.wait("the first row selected, a page of rows", |s| {
            row_pids(s).first() == Some(&1) && row_pids(s).len() > 4
        });
        let lines: Vec<&str> = screen.lines().collect();
        let header_y = lines
            .iter()
            .position(|l| l.trim_start().starts_with("PID"))
            .unwrap() as u16;
        let page = row_pids(&screen).len();
        let (x, y) = (2, header_y + 2);
        top.wait_selected("pid 1 selected", |p, _| p == Some(1));
        top.wheel(true, x, y);
        top.wait_selected(&format!("{w}x{h}: a notch down, three rows"), |p, s| {
            p.is_some() && row_pids(s).first() == Some(&1) && row_pids(s).get(3).copied() == p
        });
        // Enough notches to pass the page: the rows scroll, the selection at the
        // bottom of the screen.
        let more = page / 3 + 2;
        for _ in 0..more {
            top.wheel(true, x, y);
        }
        let below = top.wait_selected(&format!("{w}x{h}: scrolled past the page"), |p, s| {
            let on_screen = row_pids(s);
            p.is_some() && !on_screen.contains(&1) && on_screen.last().copied() == p
        });
        // As many notches up: the first process again, at the top.
        for _ in 0..=more {
            top.wheel(false, x, y);
        }
        top.wait_selected(&format!("{w}x{h}: scrolled back up"), |p, s| {
            p == Some(1) && row_pids(s).first() == Some(&1)
        });
        assert!(below > Some(1));
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
    for ((w, h), (way, signal)) in SIZES.into_iter().flat_map(|s| ways.map(|w| (s, w))) {
        let top = Top::start(w, h);
        let at = format!("{way} at {w}x{h}");
        assert_eq!(
            top.modes(),
            "1 1",
            "{at}: the alternate screen and the mouse"
        );
        match signal {
            // SAFETY: kill has no memory arguments; the pid is top's, in our session.
            Some(sig) => assert_eq!(unsafe { libc::kill(top.pid() as i32, sig) }, 0),
            None => top.keys(&[way]),
        }
        let screen = top.wait_for(EXITED);
        assert!(
            screen.contains(&format!("{EXITED} 0")),
            "{at}: exit status: {screen}"
        );
        assert_eq!(top.modes(), "0 0", "{at}: the terminal is restored");
    }
}

/// The rest of the first line of `screen` after `prefix`.
fn after<'a>(screen: &'a str, prefix: &str) -> Option<&'a str> {
    screen
        .lines()
        .find_map(|l| l.find(prefix).map(|i| &l[i + prefix.len()..]))
}

/// A size as the meters write it (`512K`, `1.21G`: three figures, 1024-based), in bytes.
fn short_size(text: &str) -> Option<f64> {
    let unit = text.chars().last()?;
    let power = "BKMGTP".find(unit)?;
    let n: f64 = text[..text.len() - 1].parse().ok()?;
    Some(n * 1024f64.powi(power as i32))
}

/// A field of /proc/meminfo, in bytes.
fn meminfo(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = after(&text, &format!("{field}:"))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/meminfo"));
    kib * 1024.0
}

/// The CPUs online now (/sys/devices/system/cpu/online: `0-3,5`).
fn online_cpus() -> Vec<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    text.trim()
        .split(',')
        .flat_map(|r| {
            let (a, b) = r.split_once('-').unwrap_or((r, r));
            a.parse::<u32>().unwrap()..=b.parse::<u32>().unwrap()
        })
        .collect()
}

/// The CPU meters on a screen: each `cpuN[...text]` as (N, text).
fn cpu_meters(screen: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for (i, _) in screen.match_indices("cpu") {
        let rest = &screen[i + 3..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        // Labels are padded to the widest (`cpu9 [` beside `cpu10[`).
        let inside = rest[digits..].trim_start_matches(' ');
        if digits == 0 || !inside.starts_with('[') {
            continue;
        }
        let Some(end) = inside.find(']') else {
            continue;
        };
        // The bars run into the text when the share is full.
        let text = inside[1..end]
            .split_whitespace()
            .last()
            .unwrap_or("")
            .trim_start_matches('|');
        found.push((rest[..digits].parse().unwrap(), text.to_owned()));
    }
    found
}

/// A meter's text (`used/total`, `none`): the last word inside `label[...]`.
fn meter_text<'a>(screen: &'a str, label: &str) -> Option<&'a str> {
    let rest = after(screen, &format!("{label}["))?;
    rest[..rest.find(']')?]
        .split_whitespace()
        .last()
        .map(|t| t.trim_start_matches('|'))
}

/// Whether `shown` is within `tol` of `want`.
fn near(shown: f64, want: f64, tol: f64) -> bool {
    (shown - want).abs() <= tol
}

/// Why the header's meters disagree with the machine now, if they do.
fn meters_disagree(screen: &str) -> Result<(), String> {
    // A meter per online CPU, each with its busy share.
    let cpus = cpu_meters(screen);
    let labels: Vec<u32> = cpus.iter().map(|c| c.0).collect();
    if labels != online_cpus() {
        return Err(format!("CPU meters {labels:?}, online {:?}", online_cpus()));
    }
    for (n, text) in &cpus {
        let pct = text.strip_suffix('%').and_then(|p| p.parse::<f64>().ok());
        if !pct.is_some_and(|p| (0.0..=100.0).contains(&p)) {
            return Err(format!("cpu{n} says {text:?}"));
        }
    }
    // Mem: MemTotal - MemAvailable of MemTotal.
    let mem = meter_text(screen, "Mem ").ok_or("no Mem meter")?;
    let (used, total) = mem.split_once('/').ok_or(format!("Mem {mem:?}"))?;
    let (used, total) = (
        short_size(used).ok_or(format!("Mem {mem:?}"))?,
        short_size(total).ok_or(format!("Mem {mem:?}"))?,
    );
    let (mem_total, available) = (meminfo("MemTotal"), meminfo("MemAvailable"));
    if !near(total, mem_total, mem_total * 0.01) {
        return Err(format!("Mem total {total}, MemTotal {mem_total}"));
    }
    let want = mem_total - available;
    if !near(used, want, want * 0.05 + 32.0 * 1048576.0) {
        return Err(format!("Mem used {used}, MemTotal - MemAvailable {want}"));
    }
    // Swap: none when /proc/swaps lists no device, else its total.
    let swp = meter_text(screen, "Swp ").ok_or("no Swp meter")?;
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap();
    if swaps.lines().skip(1).all(|l| l.trim().is_empty()) {
        if swp != "none" {
            return Err(format!("no swap device, Swp says {swp:?}"));
        }
    } else {
        let total = swp
            .split_once('/')
            .and_then(|(_, t)| short_size(t))
            .ok_or(format!("Swp {swp:?}"))?;
        let want = meminfo("SwapTotal");
        if !near(total, want, want * 0.01) {
            return Err(format!("Swp total {total}, SwapTotal {want}"));
        }
    }
    // The load average, as /proc/loadavg has it.
    let load = after(screen, "Load average: ")
        .or_else(|| after(screen, "Load: "))
        .ok_or("no load average")?;
    let shown: Vec<f64> = load
        .split_whitespace()
        .take(3)
        .filter_map(|x| x.parse().ok())
        .collect();
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap();
    let want: Vec<f64> = loadavg
        .split_whitespace()
        .take(3)
        .map(|x| x.parse().unwrap())
        .collect();
    if shown.len() != 3
        || shown
            .iter()
            .zip(&want)
            .any(|(s, w)| !near(*s, *w, 0.1 + w * 0.05))
    {
        return Err(format!("load {load:?}, /proc/loadavg {loadavg:?}"));
    }
    // The uptime, to the second (the sample is a refresh old).
    let up = after(screen, "Uptime: ")
        .or_else(|| after(screen, "Up "))
        .ok_or("no uptime")?;
    let up = up.split("  ").next().unwrap_or(up).trim();
    let (days, clock) = match up.rsplit_once(", ") {
        Some((d, c)) => (
            d.split_whitespace()
                .next()
                .unwrap_or("")
                .parse::<u64>()
                .ok(),
            c,
        ),
        None => (Some(0), up),
    };
    let hms: Vec<u64> = clock.split(':').filter_map(|x| x.parse().ok()).collect();
    let shown = match (days, hms.as_slice()) {
        (Some(d), [h, m, s]) => (d * 86_400 + h * 3600 + m * 60 + s) as f64,
        _ => return Err(format!("uptime {up:?}")),
    };
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    if !near(shown, uptime, 3.0) {
        return Err(format!("uptime {up:?} ({shown} s), /proc/uptime {uptime}"));
    }
    // Tasks: the processes and the kernel threads.
    let tasks = after(screen, "Tasks: ").ok_or("no tasks")?;
    let words: Vec<&str> = tasks
        .split([' ', ',', ';'])
        .filter(|w| !w.is_empty())
        .collect();
    let user: f64 = words
        .first()
        .and_then(|w| w.parse().ok())
        .ok_or(format!("tasks {tasks:?}"))?;
    let kthr: f64 = words
        .windows(2)
        .find(|w| w[1] == "kthr")
        .and_then(|w| w[0].parse().ok())
        .ok_or(format!("tasks {tasks:?}"))?;
    let kernel = kernel_threads().len() as f64;
    let all = std::fs::read_dir("/proc")
        .unwrap()
        .filter(|e| {
            e.as_ref().is_ok_and(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
        })
        .count() as f64;
    if !near(user, all - kernel, 5.0 + all * 0.05) || !near(kthr, kernel, 3.0) {
        return Err(format!(
            "tasks {tasks:?}, /proc has {} processes and {kernel} kernel threads",
            all - kernel
        ));
    }
    // Pressure: some avg10 of cpu, memory and io, when the kernel has PSI.
    if std::path::Path::new("/proc/pressure").exists() {
        let psi = after(screen, "Pressure (some, 10 s): ")
            .or_else(|| after(screen, "PSI "))
            .ok_or("no pressure")?;
        let words: Vec<&str> = psi.split_whitespace().collect();
        for (label, file) in [("cpu", "cpu"), ("mem", "memory"), ("io", "io")] {
            let shown: f64 = words
                .windows(2)
                .find(|w| w[0] == label)
                .and_then(|w| w[1].strip_suffix('%')?.parse().ok())
                .ok_or(format!("pressure {psi:?}: no {label}"))?;
            let text = std::fs::read_to_string(format!("/proc/pressure/{file}")).unwrap();
            let want: f64 = after(&text, "some avg10=")
                .and_then(|r| r.split_whitespace().next()?.parse().ok())
                .unwrap();
            if !near(shown, want, 1.0 + want * 0.2) {
                return Err(format!(
                    "{label} pressure {shown}, /proc/pressure/{file}: {want}"
                ));
            }
        }
    }
    Ok(())
}

/// The header's meters, read against the machine at both sizes: a meter per online
/// CPU with its share, Mem as MemTotal - MemAvailable, Swap (none without a device),
/// the load average, the uptime, the tasks and the pressure.
#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_header_meters_agree_with_the_machine() {
    require_tool!(has_tmux(), "tmux is not installed");
    for (w, h) in SIZES {
        let top = Top::start(w, h);
        // The figures move (memory, load, a process started): each check is tried
        // on fresh screens until one agrees, and the last disagreement is reported.
        let deadline = Instant::now() + PATIENCE;
        let screen = loop {
            let screen = top.screen();
            let why = match meters_disagree(&screen) {
                Ok(()) => break screen,
                Err(e) => e,
            };
            assert!(
                Instant::now() < deadline,
                "{w}x{h}: the meters disagree with the machine: {why}\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // The meters sit above the table.
        let meters_y = screen.lines().position(|l| l.contains("Mem [")).unwrap();
        let header_y = screen
            .lines()
            .position(|l| l.trim_start().starts_with("PID"))
            .unwrap();
        assert!(meters_y < header_y, "{w}x{h}:\n{screen}");
    }
}

/// The system view's panes use the rows they have: the slab caches (more than any
/// pane holds) fill theirs, and each pressure sparkline says the span it covers,
/// which once the pane is full is its newest points, not the whole history.
#[test]
#[cfg_attr(missing_tmux, ignore = "tmux is not installed")]
fn issue_19_top_system_view_fills_its_panes_and_labels_its_sparklines() {
    require_tool!(has_tmux(), "tmux is not installed");
    skip_unless!(crate::common::is_root(), "slabinfo is root's to read");
    let caches: Vec<String> = std::fs::read_to_string("/proc/slabinfo")
        .unwrap()
        .lines()
        .skip(2)
        .filter_map(|l| Some(l.split_whitespace().next()?.to_owned()))
        .collect();
    const INTERVAL: f64 = 0.1;
    for (w, h) in SIZES {
        let at = format!("{w}x{h}");
        let top = Top::start_args(w, h, "", &format!("--interval {INTERVAL}"));
        let started = Instant::now();
        top.keys(&["5"]);
        let screen = top.wait(&format!("{at}: the slab pane"), |s| {
            s.contains("slabs by size")
        });
        let lines: Vec<&str> = screen.lines().collect();
        let title = lines
            .iter()
            .position(|l| l.contains("slabs by size"))
            .unwrap();
        let bottom = title
            + lines[title..]
                .iter()
                .position(|l| l.starts_with('└'))
                .unwrap_or_else(|| panic!("{at}: the pane's bottom:\n{screen}"));
        let room = bottom - title - 1;
        // The left pane's text: between its borders.
        let shown: Vec<String> = lines[title + 1..bottom]
            .iter()
            .filter_map(|l| {
                let inner = l.strip_prefix('│')?;
                Some(inner[..inner.find('│')?].trim().to_owned())
            })
            .filter(|t| !t.is_empty())
            .collect();
        assert!(
            caches.len() > room,
            "{at}: fewer caches than rows:\n{screen}"
        );
        assert!(room >= 3, "{at}: a pane of {room} rows:\n{screen}");
        assert_eq!(
            shown.len(),
            room,
            "{at}: the pane's {room} rows, filled:\n{screen}"
        );
        assert!(
            lines[title].contains(&format!(" top {room} slabs by size ")),
            "{at}: {}",
            lines[title]
        );
        for row in &shown {
            let name = row.split_whitespace().next().unwrap();
            assert!(caches.iter().any(|c| c == name), "{at}: {name} is no cache");
        }
        // The memory pane's rows, whole.
        for name in [
            "MemTotal",
            "MemAvailable",
            "Cached",
            "AnonPages",
            "Shmem",
            "Slab unreclaim.",
        ] {
            assert!(screen.contains(name), "{at}: {name}:\n{screen}");
        }
        // The sparklines: a label on each, `last N s, peak P%`, covering no more than
        // top has run.
        let labels = |s: &str| -> Vec<(f64, f64)> {
            let Some(line) = s
                .lines()
                .find(|l| l.contains(" last ") && l.contains(", peak "))
            else {
                return Vec::new();
            };
            line.split(" last ")
                .skip(1)
                .filter_map(|part| {
                    let (span, rest) = part.split_once(", peak ")?;
                    let peak = rest.split('%').next()?.parse().ok()?;
                    let words: Vec<&str> = span.split_whitespace().collect();
                    let secs = match words.as_slice() {
                        [n, "s"] => n.parse::<f64>().ok()?,
                        [m, "min"] => m.parse::<f64>().ok()? * 60.0,
                        [m, "min", s, "s"] => {
                            m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?
                        }
                        _ => return None,
                    };
                    Some((secs, peak))
                })
                .collect()
        };
        let screen = top.wait(&format!("{at}: three labelled sparklines"), |s| {
            labels(s).len() == 3
        });
        for (span, _) in labels(&screen) {
            assert!(
                span <= started.elapsed().as_secs_f64() + 2.0,
                "{at}: a span of {span} s after {:?}:\n{screen}",
                started.elapsed()
            );
        }
        // Once the history is longer than a pane holds, a label spans its pane's
        // newest points: less than top has run (a label of the whole history would
        // never be), and at least the points the pane holds.
        let points = usize::from(w / 3 - 2);
        let screen = top.wait(&format!("{at}: spans shorter than the history"), |s| {
            let ran = started.elapsed().as_secs_f64();
            let spans = labels(s);
            spans.len() == 3 && spans.iter().all(|(span, _)| *span < ran - 1.5)
        });
        for (span, peak) in labels(&screen) {
            assert!(
                span >= (points as f64 - 1.0) * INTERVAL - 1.0,
                "{at}: a span of {span} s for {points} points at {INTERVAL} s:\n{screen}"
            );
            assert!((0.0..=100.0).contains(&peak), "{at}: peak {peak}");
        }
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
