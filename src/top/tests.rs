use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use ratatui::Terminal;
use syslens_probe::table::ProcessRow;

use super::*;

fn sample(pass: u64) -> Sample {
    let mut scanner = syslens_probe::table::Scanner::new(syslens_probe::Reader::host().unwrap());
    let rows = scanner
        .scan_pids(&[std::process::id() as i32, 1], Default::default())
        .to_vec();
    Sample {
        at: Instant::now() + Duration::from_secs(pass),
        rows,
        cgroup_paths: Arc::new([]),
        containers: Arc::new([]),
        mem_limits: Arc::default(),
        cpu_pids: Default::default(),
        meminfo: Err(syslens_probe::Missing::Exited),
        psi: [const { Err(syslens_probe::Missing::Exited) }; 3],
        cpus: Err(syslens_probe::Missing::Exited),
        loadavg: Err(syslens_probe::Missing::Exited),
        uptime: Err(syslens_probe::Missing::Exited),
        users: Arc::default(),
        zone: Arc::new(None),
        slabs: Arc::new([]),
        locks: HashMap::new(),
        deleted_open: Arc::default(),
        isolated: Arc::default(),
        oom_killed: Vec::new(),
        pass_cpu_ns: 2_000_000,
    }
}

/// A sample of `n` made-up processes, pids 1..=n, all children of pid 1.
fn many(pass: u64, n: i32) -> Sample {
    let mut s = sample(pass);
    let base = s.rows[0].clone();
    s.rows = (1..=n)
        .map(|pid| ProcessRow {
            pid,
            ppid: 1,
            rss: Ok(u64::try_from(pid).unwrap() * 4096),
            ..base.clone()
        })
        .collect();
    s
}

fn screen_at(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
                + "\n"
        })
        .collect()
}

fn screen(app: &mut App) -> String {
    screen_at(app, 120, 30)
}

/// The pids of the table rows on a screen: lines whose first word is a number,
/// below the header line.
fn pids_on(screen: &str) -> Vec<i32> {
    screen
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("PID"))
        .skip(1)
        .take_while(|l| !l.contains(" processes"))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn layout_shows_tabs_columns_rows_and_keys() {
    let mut app = App::default();
    app.apply(sample(0));
    app.apply(sample(1));
    let s = screen(&mut app);
    assert!(s.contains("1 memory") && s.contains("5 system"));
    assert!(s.contains("PID") && s.contains("RSS▼") && s.contains("MAJFLT/s"));
    assert!(s.contains("USER") && s.contains("CPU%"), "{s}");
    assert!(s.contains(&std::process::id().to_string()));
    assert!(s.contains("q quit") && s.contains("F1 help"));
    assert!(s.contains("2.0 ms CPU per refresh"));
}

#[test]
fn rows_below_the_screen_get_text_when_scrolled_to() {
    let mut app = App::default();
    assert!(app.apply(many(0, 200)).is_none());
    app.sort = Col::Pid;
    screen(&mut app);
    for _ in 0..150 {
        app.key(KeyCode::Down);
    }
    let screen = screen(&mut app);
    // The rows on screen end at the selection.
    let rows = i32::from(app.geometry.rows);
    assert!(rows > 10, "{screen}");
    assert_eq!(
        pids_on(&screen),
        (152 - rows..=151).collect::<Vec<_>>(),
        "{screen}"
    );
}

/// Odd /proc content must not panic the UI: CPU% summed two huge tick counts.
#[test]
fn regression_huge_cpu_times_do_not_overflow_cpu_percent() {
    let mut app = App::default();
    for pass in 0..2 {
        let mut s = sample(pass);
        s.rows[0].utime_ticks = u64::MAX;
        s.rows[0].stime_ticks = u64::MAX;
        app.apply(s);
    }
    app.key(KeyCode::Char('2'));
    assert!(screen(&mut app).contains("CPU%"));
}

#[test]
fn a_sample_is_handed_back_once_no_rate_needs_it() {
    let mut app = App::default();
    let marked = |pass: u64| Sample {
        pass_cpu_ns: pass,
        ..sample(pass)
    };
    assert!(app.apply(marked(0)).is_none());
    assert!(app.apply(marked(1)).is_none());
    // The current sample and the previous one (for rates) stay.
    let back = app.apply(marked(2)).expect("the first sample");
    assert_eq!(back.pass_cpu_ns, 0);
}

#[test]
fn keys_switch_views_sort_and_filter() {
    let mut app = App::default();
    let wants = Wants::default();
    app.apply(sample(0));
    assert!(app.key(KeyCode::Char('2')));
    assert!(screen(&mut app).contains("NVCSW/s"));
    assert_eq!(app.sort_column(), Col::Cpu);
    app.key(KeyCode::Char('>'));
    assert_eq!(app.sort_column(), Col::Usr);
    app.key(KeyCode::Char('<'));
    app.key(KeyCode::Char('<'));
    assert_eq!(app.sort_column(), Col::User);
    app.key(KeyCode::Char('r'));
    assert!(screen(&mut app).contains("USER▲"));
    app.key(KeyCode::Char('\\'));
    for c in "no-such-name".chars() {
        app.key(KeyCode::Char(c));
    }
    app.key(KeyCode::Enter);
    assert!(app.table().is_empty());
    assert!(screen(&mut app).contains("0 of 2 processes shown"));
    app.key(KeyCode::Esc);
    assert_eq!(app.table().len(), 2, "Esc clears the filter");
    app.publish(&wants);
    assert!(!wants.pss.load(Ordering::Relaxed));
    app.key(KeyCode::Char('p'));
    app.publish(&wants);
    assert!(
        wants.pss.load(Ordering::Relaxed),
        "PSS is read only when asked for"
    );
    assert!(!app.key(KeyCode::Char('q')));
    assert!(!App::default().key(KeyCode::F(10)), "F10 quits");
}

#[test]
fn a_process_that_left_stays_visible_with_its_cause() {
    let mut app = App::default();
    let mut s = sample(0);
    let mut gone = s.rows[0].clone();
    gone.pid = 999_999;
    s.rows.push(gone);
    app.apply(s);
    let mut next = sample(1);
    next.oom_killed = vec![999_999];
    app.apply(next);
    assert_eq!(app.exited.len(), 1);
    assert_eq!(
        (app.exited[0].pid, app.exited[0].cause),
        (999_999, "OOM kill")
    );
    app.key(KeyCode::Char('5'));
    assert!(screen(&mut app).contains("OOM kill"));
}

#[test]
fn issue_19_top_kernel_threads_hidden_until_k_and_never_first_when_reversed() {
    let mut app = App::default();
    let mut s = many(0, 6);
    for r in s.rows.iter_mut().take(3) {
        r.kernel_thread = true;
        r.rss = Err(syslens_probe::Missing::NotApplicable {
            why: "kernel thread",
        });
    }
    app.apply(s);
    let pids = |app: &App| app.table().iter().map(|r| r.pid).collect::<Vec<_>>();
    assert_eq!(pids(&app), vec![6, 5, 4]);
    app.key(KeyCode::Char('r'));
    assert_eq!(pids(&app), vec![4, 5, 6]);
    let s = screen(&mut app);
    assert!(s.contains("3 of 6 processes shown") && s.contains("3 kernel threads hidden (K)"));
    app.key(KeyCode::Char('K'));
    // Shown, the threads without an RSS still come last, reversed or not.
    assert_eq!(pids(&app), vec![4, 5, 6, 1, 2, 3]);
    app.key(KeyCode::Char('r'));
    assert_eq!(pids(&app), vec![6, 5, 4, 1, 2, 3]);
    app.key(KeyCode::Char('r'));
    assert_eq!(pids(&app), vec![4, 5, 6, 1, 2, 3]);
}

#[test]
fn issue_19_top_tree_draws_children_under_their_parent() {
    let mut app = App::default();
    let mut s = many(0, 5);
    // 1 -> 2 -> 3, 1 -> 4, and 5 whose parent is not listed.
    for (pid, ppid) in [(1, 0), (2, 1), (3, 2), (4, 1), (5, 77)] {
        s.rows[pid - 1].ppid = ppid;
    }
    app.apply(s);
    app.sort = Col::Pid;
    app.key(KeyCode::Char('t'));
    let rows = app.table();
    let got: Vec<(i32, &str)> = rows.iter().map(|r| (r.pid, r.branch.as_str())).collect();
    assert_eq!(
        got,
        vec![(1, ""), (2, "├─ "), (3, "│  └─ "), (4, "└─ "), (5, "")]
    );
}

#[test]
fn issue_19_top_search_selects_the_next_match() {
    let mut app = App::default();
    let mut s = many(0, 5);
    for (i, name) in ["init", "bash", "sleep", "bash", "vim"].iter().enumerate() {
        s.rows[i].comm = syslens_probe::parse::InlineStr::new(name.as_bytes());
    }
    app.apply(s);
    app.sort = Col::Pid;
    screen(&mut app);
    app.key(KeyCode::F(3));
    for c in "BAS".chars() {
        app.key(KeyCode::Char(c));
    }
    assert_eq!(app.selected_pid(), Some(2), "case-insensitive");
    app.key(KeyCode::F(3));
    assert_eq!(app.selected_pid(), Some(4), "F3: the next one");
    app.key(KeyCode::F(3));
    assert_eq!(app.selected_pid(), Some(2), "wrapping");
    app.key(KeyCode::Char('x'));
    assert!(app.search_failed());
    assert!(screen(&mut app).contains("not found"));
    app.key(KeyCode::Enter);
    assert_eq!(app.prompt, None);
    assert_eq!(app.table().len(), 5, "a search filters nothing");
}

/// Esc cancels a search that found nothing: the status line goes back to the counts.
/// It kept saying `search: no command name contains ...` of a search no longer there
/// until the next key.
#[test]
fn issue_19_top_esc_after_a_failed_search_leaves_no_message() {
    let mut app = App::default();
    app.apply(many(0, 5));
    screen(&mut app);
    app.key(KeyCode::F(3));
    for c in "zzq".chars() {
        app.key(KeyCode::Char(c));
    }
    assert!(app.search_failed());
    app.key(KeyCode::Esc);
    assert_eq!(app.prompt, None);
    assert!(!app.search_failed());
    let s = screen(&mut app);
    assert!(!s.contains("search:") && s.contains("5 processes"), "{s}");
}

#[test]
fn issue_19_top_paging_keys_move_by_the_rows_on_screen() {
    let mut app = App::default();
    app.apply(many(0, 100));
    app.sort = Col::Pid;
    screen(&mut app);
    let page = i32::from(app.geometry.rows);
    assert!(page > 10);
    app.key(KeyCode::PageDown);
    assert_eq!(app.selected_pid(), Some(1 + page));
    app.key(KeyCode::End);
    assert_eq!(app.selected_pid(), Some(100));
    app.key(KeyCode::PageUp);
    assert_eq!(app.selected_pid(), Some(100 - page));
    app.key(KeyCode::Home);
    assert_eq!(app.selected_pid(), Some(1));
    app.key(KeyCode::Up);
    assert_eq!(app.selected_pid(), Some(1));
}

#[test]
fn issue_19_top_selection_follows_the_process_across_a_resort() {
    let mut app = App::default();
    app.apply(many(0, 10));
    screen(&mut app);
    // RSS largest first: pid 10 at the top; select pid 8.
    app.key(KeyCode::Down);
    app.key(KeyCode::Down);
    assert_eq!(app.selected_pid(), Some(8));
    app.key(KeyCode::Char('r'));
    screen(&mut app);
    assert_eq!(app.selected_pid(), Some(8));
}

#[test]
fn issue_19_top_space_tags_and_k_offers_sigterm_first_for_the_tagged() {
    let mut app = App::default();
    app.apply(many(0, 5));
    app.sort = Col::Pid;
    screen(&mut app);
    app.key(KeyCode::Char(' '));
    app.key(KeyCode::Char(' '));
    assert_eq!(app.tagged_count(), 2);
    assert_eq!(app.selected_pid(), Some(3), "space moves down");
    app.key(KeyCode::Char('k'));
    let menu = app.menu.clone().expect("the signal menu");
    assert_eq!(menu.selected, 0);
    assert!(menu.items()[0].contains("SIGTERM"));
    let keys::MenuKind::Signal(targets) = &menu.kind else {
        panic!("{menu:?}")
    };
    assert_eq!(
        targets.iter().map(|t| t.pid).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(screen(&mut app).contains("send to 2 tagged processes"));
    app.key(KeyCode::Esc);
    assert!(app.menu.is_none());
    app.key(KeyCode::Char('U'));
    assert_eq!(app.tagged_count(), 0);
    app.key(KeyCode::F(9));
    assert!(app.menu.as_ref().unwrap().title().contains("send to 3 "));
    // Without a reader (a drawing test) nothing is signalled, and the line says why.
    app.key(KeyCode::Enter);
    let said = &app.message.as_ref().unwrap().0;
    assert!(said.starts_with("SIGTERM refused to 3"), "{said}");
}

#[test]
fn issue_19_top_the_system_view_offers_no_process_to_kill() {
    let mut app = App::default();
    app.apply(many(0, 3));
    app.key(KeyCode::Char('5'));
    for key in [
        KeyCode::Char('k'),
        KeyCode::F(9),
        KeyCode::F(6),
        KeyCode::Enter,
    ] {
        app.key(key);
        assert!(app.menu.is_none() && app.inspect.is_none(), "{key:?}");
    }
}

#[test]
fn issue_19_top_f6_picks_the_sort_column() {
    let mut app = App::default();
    app.apply(many(0, 3));
    app.key(KeyCode::F(6));
    assert!(screen(&mut app).contains("sort by"));
    app.key(KeyCode::Home);
    app.key(KeyCode::Enter);
    assert_eq!(app.sort_column(), Col::Pid);
}

#[test]
fn issue_19_top_mouse_selects_rows_and_sorts_by_headers() {
    let mut app = App::default();
    app.apply(many(0, 10));
    let s = screen(&mut app);
    let header_y = s.lines().position(|l| l.contains("PID")).unwrap() as u16;
    let click = |column: u16, row: u16| MouseEvent {
        kind: MouseEventKind::Down(MouseButton::Left),
        column,
        row,
        modifiers: KeyModifiers::NONE,
    };
    // The third row: RSS largest first, so pid 8.
    assert!(app.mouse(click(3, header_y + 3)));
    assert_eq!(app.selected_pid(), Some(8));
    let pid_x = s
        .lines()
        .nth(header_y as usize)
        .unwrap()
        .find("PID")
        .unwrap() as u16;
    assert!(app.mouse(click(pid_x, header_y)));
    assert_eq!((app.sort_column(), app.reverse), (Col::Pid, false));
    assert!(app.mouse(click(pid_x, header_y)));
    assert!(app.reverse, "a second click reverses");
    assert!(!app.mouse(click(3, 29)), "below the rows: nothing");
}

#[test]
fn issue_19_top_help_lists_every_key() {
    let mut app = App::default();
    app.apply(sample(0));
    for key in [KeyCode::F(1), KeyCode::Char('?'), KeyCode::Char('h')] {
        app.key(key);
        let s = screen_at(&mut app, 80, 24);
        for e in HELP {
            assert!(s.contains(e.keys) && s.contains(e.what), "{e:?}: {s}");
        }
        app.key(KeyCode::Char('x'));
        assert!(app.help.is_none());
    }
}

/// The README's keys table is the help screen's.
#[test]
fn issue_19_top_readme_lists_every_key() {
    let readme = include_str!("../../README.md");
    for e in HELP {
        let row = format!("| {} | {} |", e.keys.replace('\\', "\\\\"), e.what);
        assert!(readme.contains(&row), "README lacks {row}");
    }
}

#[test]
fn issue_19_top_numbers_right_aligned_and_columns_dropped_not_cut() {
    let mut app = App::default();
    app.apply(many(0, 3));
    app.apply(many(1, 3));
    let wide = screen_at(&mut app, 140, 20);
    let header = wide.lines().find(|l| l.contains("PID")).unwrap();
    // RSS right-aligned under its header: the row's value ends where the header does.
    let rss_end = header.find("RSS▼").unwrap() + "RSS▼".len() - "▼".len() + 1;
    let row = wide
        .lines()
        .find(|l| l.trim_start().starts_with('3'))
        .unwrap();
    assert_eq!(&row[rss_end - 4..rss_end], " KiB", "{wide}");
    for w in [30u16, 40, 60, 80] {
        let s = screen_at(&mut app, w, 12);
        let header = s.lines().find(|l| l.contains("PID")).unwrap();
        // A header is whole or absent: without the whole names, nothing is left.
        let mut rest = header.replace(['▼', '▲'], "");
        for c in app.columns() {
            rest = rest.replace(c.name(), "");
        }
        assert_eq!(rest.trim(), "", "a column cut at {w}: {s}");
        assert!(header.contains("COMMAND"), "{s}");
        assert_eq!(pids_on(&s), vec![3, 2, 1], "{s}");
    }
}

#[test]
fn issue_19_top_fit_drops_columns_pid_and_command_last() {
    use Col::*;
    let cols = [Pid, User, Rss, Hwm, Command];
    let need = [7, 4, 9, 9, 12];
    assert_eq!(
        draw::fit(&cols, &need, Rss, 100),
        vec![Some(7), Some(4), Some(9), Some(9), Some(12 + 100 - 45)]
    );
    // 7 + 12 + 9 with separators: the sorted column stays, USER and HWM go.
    assert_eq!(
        draw::fit(&cols, &need, Rss, 30),
        vec![Some(7), None, Some(9), None, Some(12)]
    );
    assert_eq!(
        draw::fit(&cols, &need, Rss, 12),
        vec![Some(7), None, None, None, Some(4)]
    );
    assert_eq!(
        draw::fit(&cols, &need, Rss, 5),
        vec![None, None, None, None, Some(5)]
    );
}

#[test]
fn issue_19_top_any_size_draws_without_panic() {
    let mut app = App::default();
    app.apply(many(0, 40));
    app.apply(many(1, 40));
    for tab in ['1', '2', '3', '4', '5'] {
        app.key(KeyCode::Char(tab));
        for w in [1u16, 2, 5, 10, 30, 79, 200] {
            for h in [1u16, 2, 3, 6, 12, 24] {
                screen_at(&mut app, w, h);
            }
        }
    }
    app.key(KeyCode::Char('k'));
    app.key(KeyCode::F(1));
    for (w, h) in [(1, 1), (30, 6), (10, 3)] {
        screen_at(&mut app, w, h);
        app.help = None;
        screen_at(&mut app, w, h);
        app.help = Some(100);
    }
}

#[test]
fn issue_19_top_at_30x6_shows_whole_pids() {
    let mut app = App::default();
    app.apply(many(0, 3));
    let mut s = many(1, 3);
    s.rows[2].pid = 4_194_304;
    app.apply(s);
    let s = screen_at(&mut app, 30, 6);
    assert!(s.lines().nth(1).unwrap().contains("PID"), "{s}");
    assert_eq!(pids_on(&s)[0], 4_194_304, "{s}");
}

#[test]
fn issue_19_top_sparklines_say_the_span_they_cover() {
    let mut app = App::default();
    let t0 = Instant::now();
    for pass in 0..30 {
        let mut s = sample(0);
        s.at = t0 + Duration::from_secs(pass * 2);
        s.psi = [const {
            Ok(syslens_probe::psi::Psi {
                some: syslens_probe::psi::PsiLine {
                    avg10: 1.5,
                    avg60: 0.0,
                    avg300: 0.0,
                    total_us: 0,
                },
                full: None,
            })
        }; 3];
        app.apply(s);
    }
    app.key(KeyCode::Char('5'));
    let s = screen_at(&mut app, 120, 40);
    assert!(s.contains("last 58 s, peak 1.50%"), "{s}");
    // Narrower panes show fewer, newer points, and say so.
    let s = screen_at(&mut app, 60, 40);
    assert!(s.contains("last 34 s"), "{s}");
}

#[test]
fn issue_19_top_header_meters_measure_from_two_samples() {
    use syslens_probe::system::CpuTicks;
    let mut app = App::default();
    let with_cpu = |pass: u64, busy: u64, total: u64| Sample {
        cpus: Ok(vec![CpuTicks {
            cpu: 0,
            busy,
            total,
            interrupts: 0,
        }]),
        loadavg: Ok([0.5, 0.25, 0.125]),
        uptime: Ok(Duration::from_secs(86_400 + 3_661)),
        ..sample(pass)
    };
    app.apply(with_cpu(0, 100, 1000));
    let s = screen_at(&mut app, 100, 30);
    assert!(s.contains("cpu0[") && s.contains("measuring"), "{s}");
    assert!(!s.contains("0.0%"), "no false 0% before two samples: {s}");
    app.apply(with_cpu(1, 150, 1200));
    let s = screen_at(&mut app, 100, 30);
    assert!(s.contains("25.0%]"), "{s}");
    assert!(s.contains("Load average: 0.50 0.25 0.12"), "{s}");
    assert!(s.contains("Uptime: 1 day, 01:01:01"), "{s}");
    assert!(s.contains("Tasks: 2,"), "{s}");
}

#[test]
fn issue_16_top_events_lines_are_stamped_cleaned_and_fit_the_width() {
    use events::{Notable, Report};
    let cells = |s: &str| ratatui::text::Span::raw(s).width();
    let mut ev = events::Events::default();
    assert_eq!(
        draw::event_lines(&ev, 80, 3),
        ["events: opening the kernel's event sources"]
    );
    ev.take(Report::Unavailable("tracepoints: needs root\n".into()));
    assert_eq!(
        draw::event_lines(&ev, 80, 3),
        ["events: unavailable: tracepoints: needs root\\x0a"],
        "one line, its reason cleaned"
    );
    ev.take(Report::Watching {
        kinds: vec!["oom-kill", "exit"],
        unavailable: vec!["signal"],
    });
    let idle = draw::event_lines(&ev, 120, 3);
    assert_eq!(idle.len(), 1, "{idle:?}");
    assert!(idle[0].starts_with("events: none since "), "{idle:?}");
    assert!(
        idle[0].ends_with("(watching oom-kill, exit; signal unavailable)"),
        "{idle:?}"
    );
    let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
    let evil = "ev\x1b[2Jil[7] killed by SIGKILL";
    let event = |line: &str| Report::Event {
        event: Notable {
            time: at,
            kind: "exit",
            line: line.into(),
        },
        missed: 0,
    };
    ev.take(event(evil));
    let lines = draw::event_lines(&ev, 200, 3);
    assert_eq!(
        lines[0],
        format!(
            "events: {}  exit  {}",
            crate::render::text::clock_time(at),
            crate::render::safe::clean(evil)
        )
    );
    assert!(!lines[0].contains('\x1b'), "{lines:?}");
    assert!(
        lines[1].starts_with("        (watching oom-kill"),
        "{lines:?}"
    );
    ev.take(event("second"));
    ev.take(Report::Event {
        event: Notable {
            time: at,
            kind: "oom-kill",
            line: "killed dd[9]".into(),
        },
        missed: 2,
    });
    let lines = draw::event_lines(&ev, 200, 3);
    assert_eq!(lines.len(), 3, "the newest three: {lines:?}");
    assert!(
        lines[0].starts_with("events (2 missed): ") && lines[0].ends_with("killed dd[9]"),
        "newest first, the missed said: {lines:?}"
    );
    assert!(lines[2].ends_with(&crate::render::safe::clean(evil).into_owned()));
    for w in [0, 1, 7, 20, 45, 79] {
        for l in draw::event_lines(&ev, w, 3) {
            assert!(cells(&l) <= w, "{w}: {l:?}");
        }
    }
    // On screen, under the meters.
    let mut app = App::default();
    app.apply(sample(0));
    app.events = ev;
    let s = screen_at(&mut app, 100, 30);
    assert!(s.contains("events (2 missed): "), "{s}");
}

#[test]
fn issue_15_isolation_names_containers_their_limits_and_zombies() {
    let mut app = App::default();
    let with = |pass: u64| {
        let mut s = many(pass, 3);
        s.cgroup_paths = Arc::new([
            "/".to_owned(),
            format!(
                "/system.slice/docker-{}.scope",
                "3f2a9c1b7d4e".repeat(5) + "abcd"
            ),
        ]);
        s.containers = s
            .cgroup_paths
            .iter()
            .map(|p| collect::container_label(p))
            .collect();
        s.mem_limits = Arc::new([(1, (200 << 20, Some(180 << 20)))].into());
        s.rows[0].cgroup = Ok(0);
        s.rows[1].cgroup = Ok(1);
        s.rows[2].cgroup = Ok(0);
        s.rows[2].state = b'Z';
        s.rows[2].comm = syslens_probe::parse::InlineStr::new(b"gone");
        s
    };
    app.apply(with(0));
    app.apply(with(1));
    app.key(KeyCode::Char('4'));
    let screen = screen_at(&mut app, 160, 20);
    let line = |pid: i32| {
        screen
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
            .unwrap_or_else(|| panic!("no row {pid}:\n{screen}"))
            .to_owned()
    };
    assert!(
        screen.contains("CONTAINER") && screen.contains("MEMLIMIT"),
        "{screen}"
    );
    let c = line(2);
    assert!(c.contains("3f2a9c1b7d4e docker"), "{c}");
    assert!(c.contains("200.0 MiB") && c.contains("90.0"), "{c}");
    // The zombie: shown as ps shows it, with nothing of a live process's placement.
    let z = line(3);
    assert!(z.contains("gone <defunct>"), "{z}");
    assert!(!z.contains(" / ") && !z.trim_end().ends_with('/'), "{z}");
}

/// Issue 15 item 10: a zombie in the files view is shown as ps shows it, with no fd
/// count or limit of a live process (it has none: its files are closed).
#[test]
fn issue_15_the_files_view_shows_a_zombie_as_defunct_without_fd_figures() {
    let mut app = App::default();
    let with = |pass: u64| {
        let mut s = many(pass, 3);
        s.rows[2].state = b'Z';
        s.rows[2].comm = syslens_probe::parse::InlineStr::new(b"gone");
        s
    };
    app.apply(with(0));
    app.apply(with(1));
    app.key(KeyCode::Char('3'));
    let screen = screen_at(&mut app, 160, 20);
    let row = |pid: i32| {
        screen
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&pid.to_string()))
            .unwrap_or_else(|| panic!("no row {pid}:\n{screen}"))
            .to_owned()
    };
    let (live, zombie) = (row(2), row(3));
    assert!(zombie.contains("gone <defunct>"), "{zombie}");
    let figures = |l: &str| {
        l.split_whitespace()
            .filter(|w| w.parse::<f64>().is_ok())
            .count()
    };
    assert!(
        figures(&zombie) < figures(&live),
        "the zombie has a live process's figures:\n{live}\n{zombie}"
    );
}

#[test]
fn issue_15_isolation_rows_show_the_cpus_and_pids_that_bind() {
    let mut app = App::default();
    let with = |pass: u64| {
        let mut s = many(pass, 3);
        s.cgroup_paths = Arc::new(["/".to_owned(), "/docker/app".to_owned()]);
        s.cpu_pids = Arc::new(
            [
                // A quota of 1.5 CPUs, 8 of 10 tasks.
                (
                    1,
                    collect::CpuPids {
                        cpus: Some(1.5),
                        pids: Some(Some((10, Some(8)))),
                    },
                ),
                // No quota (the 2 CPUs it may run on), no pids limit.
                (
                    0,
                    collect::CpuPids {
                        cpus: Some(2.0),
                        pids: Some(None),
                    },
                ),
            ]
            .into(),
        );
        s.rows[0].cgroup = Ok(0);
        s.rows[1].cgroup = Ok(1);
        // Pid 3's cgroup was not read: nothing to show.
        s.rows[2].cgroup = Err(syslens_probe::Missing::Exited);
        for r in s.rows.iter_mut() {
            // 75% of a CPU over the second between the samples.
            (r.utime_ticks, r.stime_ticks) = (pass * 50, pass * 25);
        }
        s
    };
    app.apply(with(0));
    app.apply(with(1));
    app.key(KeyCode::Char('4'));
    let cols = app.columns();
    let at = |c: Col| cols.iter().position(|x| *x == c).unwrap();
    let table = app.table();
    let cell = |pid: i32, c: Col| table.iter().find(|r| r.pid == pid).unwrap().cells[at(c)].text();
    assert_eq!(cell(2, Col::Cpus), "1.5");
    assert_eq!(cell(2, Col::CpusPct), "50.0");
    assert_eq!(cell(2, Col::PidLimit), "10");
    assert_eq!(cell(2, Col::PidsPct), "80.0");
    assert_eq!(cell(1, Col::Cpus), "2");
    assert_eq!(cell(1, Col::CpusPct), "37.5");
    assert_eq!(cell(1, Col::PidLimit), "inf");
    assert_eq!(cell(1, Col::PidsPct), "-");
    for c in [Col::Cpus, Col::CpusPct, Col::PidLimit, Col::PidsPct] {
        assert_eq!(cell(3, c), "-", "{}", c.name());
    }
    let screen = screen_at(&mut app, 200, 20);
    assert!(
        ["CPUS", "CPUS%", "PIDLIMIT", "PIDS%"]
            .iter()
            .all(|h| screen.contains(h)),
        "{screen}"
    );
}
