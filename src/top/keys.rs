//! What each key and click does: htop's keys where htop has one, the table the help
//! screen and the README list.

use ratatui::crossterm::event::{KeyCode, MouseButton, MouseEvent, MouseEventKind};

use super::kill::{self, Target};
use super::source::{Request, Step};
use syslens_probe::Reader;

use super::{settled, App, Col, Tab, TABS};

/// One line of the help screen: the keys, and what they do.
#[derive(Debug, Clone, Copy)]
pub struct HelpEntry {
    /// The keys, as written on the key caps.
    pub keys: &'static str,
    /// What they do.
    pub what: &'static str,
}

const fn entry(keys: &'static str, what: &'static str) -> HelpEntry {
    HelpEntry { keys, what }
}

/// Every key of `syslens top` (the help screen lists them, and the README's table
/// must agree: a test compares them).
pub const HELP: &[HelpEntry] = &[
    entry("F1 ? h", "this help (any other key closes it)"),
    entry(
        "F3 /",
        "search command names: the selection jumps; F3 again: next",
    ),
    entry(
        "F4 \\",
        "filter: show only the command names containing the text",
    ),
    entry("Esc", "clear the filter and the search"),
    entry(
        "F5 t",
        "tree: each process under its parent (from the PPIDs)",
    ),
    entry("F6", "choose the column to sort by"),
    entry("< > ← →", "sort by the column to the left / right"),
    entry("r I", "reverse the sort order"),
    entry(
        "F9 k",
        "kill: pick a signal (SIGTERM first) for the tagged or selected",
    ),
    entry(
        "Space",
        "tag or untag the selected process for kill, then move down",
    ),
    entry("U", "untag every process"),
    entry("K", "show or hide kernel threads"),
    entry("↑ ↓", "select the process above / below"),
    entry("PgUp PgDn", "a page up / down"),
    entry("Home End", "the first / last process"),
    entry(
        "click",
        "on a row: select it; on a column header: sort by it (again: reverse)",
    ),
    entry("wheel", "scroll the selection"),
    entry(
        "1-5 Tab",
        "views: memory, cpu, files, isolation, system; Tab: the next",
    ),
    entry(
        "Enter",
        "inspect the selected process (every concept's lens); Esc: back",
    ),
    entry(
        "p",
        "PSS on or off (reads smaps_rollup, which costs each target)",
    ),
    // One row for the three replay keys, so that the help fits 80x24 unscrolled.
    entry(
        "[ ] { } g",
        "top --store: a sample / a minute back, forward; g: go to a time",
    ),
    entry("F10 q", "quit (Ctrl-C too)"),
];

/// A line typed at the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// The selection jumps to the next command name that contains the text.
    Search,
    /// Only the command names that contain the text are listed.
    Filter,
    /// A time to go to, in the `--at` syntax (a replay).
    GoTo,
}

/// What a menu chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuKind {
    /// A signal (kill::SIGNALS) to send to these processes.
    Signal(Vec<Target>),
    /// A column of the view to sort by.
    Sort(Vec<Col>),
}

/// A menu over the table, with its highlighted item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Menu {
    /// What it chooses.
    pub kind: MenuKind,
    /// The item highlighted.
    pub selected: usize,
}

impl Menu {
    /// The items' lines.
    pub fn items(&self) -> Vec<String> {
        match &self.kind {
            MenuKind::Signal(_) => kill::SIGNALS
                .iter()
                .map(|(sig, name, what)| format!("{:>2} {name:<8} {what}", sig.as_raw()))
                .collect(),
            MenuKind::Sort(cols) => cols.iter().map(|c| c.name().to_owned()).collect(),
        }
    }

    /// The title: what the menu is for and the keys it takes.
    pub fn title(&self) -> String {
        match &self.kind {
            MenuKind::Signal(targets) => match targets.as_slice() {
                [one] => format!(
                    " send to {} ({}): Enter sends, Esc cancels ",
                    one.pid, one.comm
                ),
                many => format!(
                    " send to {} tagged processes: Enter sends, Esc cancels ",
                    many.len()
                ),
            },
            MenuKind::Sort(_) => " sort by: Enter chooses, Esc cancels ".into(),
        }
    }
}

impl App {
    /// Handles one key; returns false to quit.
    pub fn key(&mut self, code: KeyCode) -> bool {
        if self.prompt.is_none() {
            // A message stays until the next key.
            self.message = None;
        }
        if let Some(scroll) = self.help {
            match code {
                KeyCode::Down => self.help = Some(scroll.saturating_add(1)),
                KeyCode::Up => self.help = Some(scroll.saturating_sub(1)),
                KeyCode::PageDown => self.help = Some(scroll.saturating_add(10)),
                KeyCode::PageUp => self.help = Some(scroll.saturating_sub(10)),
                KeyCode::Home => self.help = Some(0),
                KeyCode::F(10) => return false,
                _ => self.help = None,
            }
            return true;
        }
        if self.menu.is_some() {
            self.menu_key(code);
            return true;
        }
        if let Some(prompt) = self.prompt {
            if self.prompt_key(prompt, code) {
                return true;
            }
        }
        if self.inspect.is_some() {
            self.inspect_key(code);
            return true;
        }
        // The system view has no table: nothing to select, sort, tag or signal.
        let on_table = matches!(
            code,
            KeyCode::F(6 | 9)
                | KeyCode::Char('k' | ' ' | '<' | '>')
                | KeyCode::Left
                | KeyCode::Right
                | KeyCode::Enter
                | KeyCode::Up
                | KeyCode::Down
                | KeyCode::PageUp
                | KeyCode::PageDown
                | KeyCode::Home
                | KeyCode::End
        );
        if on_table && self.tab == Tab::System {
            return true;
        }
        match code {
            KeyCode::Char('q') | KeyCode::F(10) => return false,
            KeyCode::F(1) | KeyCode::Char('?' | 'h') => self.help = Some(0),
            KeyCode::F(3) | KeyCode::Char('/') => {
                self.search.clear();
                self.prompt = Some(Prompt::Search);
            }
            KeyCode::F(4) | KeyCode::Char('\\') => self.prompt = Some(Prompt::Filter),
            KeyCode::Esc => {
                self.filter.clear();
                self.search.clear();
            }
            KeyCode::F(5) | KeyCode::Char('t') => self.tree = !self.tree,
            KeyCode::F(6) => {
                let cols = self.columns();
                let selected = cols
                    .iter()
                    .position(|c| *c == self.sort_column())
                    .unwrap_or(0);
                self.menu = Some(Menu {
                    kind: MenuKind::Sort(cols),
                    selected,
                });
            }
            KeyCode::Char('>') | KeyCode::Right => self.step_sort(1),
            KeyCode::Char('<') | KeyCode::Left => self.step_sort(-1),
            KeyCode::Char('r' | 'I') => self.reverse = !self.reverse,
            KeyCode::F(9) | KeyCode::Char('k' | ' ') if self.frozen.is_some() => {
                self.say(self.frozen.unwrap_or_default().into());
            }
            KeyCode::F(9) | KeyCode::Char('k') => self.open_kill_menu(),
            KeyCode::Char(' ') => self.toggle_tag(),
            KeyCode::Char(c @ ('[' | ']' | '{' | '}')) => {
                let step = match c {
                    '[' => Step::Back,
                    ']' => Step::Forward,
                    '{' => Step::MinuteBack,
                    _ => Step::MinuteForward,
                };
                self.request = Some(Request::Step(step));
            }
            KeyCode::Char('g') if self.frozen.is_some() => {
                self.goto.clear();
                self.prompt = Some(Prompt::GoTo);
            }
            // The live source says why it has no time to go to.
            KeyCode::Char('g') => self.request = Some(Request::GoTo(String::new())),
            KeyCode::Char('U') => self.tagged.clear(),
            KeyCode::Char('K') => self.show_kernel = !self.show_kernel,
            KeyCode::Char(c @ '1'..='5') => self.tab = TABS[c as usize - '1' as usize],
            KeyCode::Tab => {
                let i = TABS.iter().position(|t| *t == self.tab).unwrap_or(0);
                self.tab = TABS[(i + 1) % TABS.len()];
            }
            KeyCode::Char('p') => self.pss = !self.pss,
            KeyCode::Enter => self.open_inspect(),
            code => {
                self.navigate(code);
            }
        }
        true
    }

    /// Moves the selection for the navigation keys; false for any other key.
    fn navigate(&mut self, code: KeyCode) -> bool {
        let page = usize::from(self.geometry.rows.max(1));
        let pids = self.order();
        let at = self.settle(&pids);
        let to = match code {
            KeyCode::Down => at.saturating_add(1),
            KeyCode::Up => at.saturating_sub(1),
            KeyCode::PageDown => at.saturating_add(page),
            KeyCode::PageUp => at.saturating_sub(page),
            KeyCode::Home => 0,
            KeyCode::End => usize::MAX,
            _ => return false,
        };
        self.select_index(&pids, to);
        true
    }

    fn step_sort(&mut self, by: isize) {
        let cols = self.columns();
        if cols.is_empty() {
            return;
        }
        let at = cols
            .iter()
            .position(|c| *c == self.sort_column())
            .unwrap_or(0);
        let n = cols.len() as isize;
        self.sort = cols[(at as isize + by).rem_euclid(n) as usize];
    }

    /// Sorts by `col`; by the one sorted by already, reverses.
    fn sort_by(&mut self, col: Col) {
        if self.sort_column() == col {
            self.reverse = !self.reverse;
        } else {
            self.sort = col;
            self.reverse = false;
        }
    }

    fn toggle_tag(&mut self) {
        let (at, key) = {
            let rows = self.table();
            let pids: Vec<i32> = rows.iter().map(|r| r.pid).collect();
            let (at, _) = settled(self.selected, self.cursor, &pids);
            (at, rows.get(at).map(|r| (r.pid, r.start_ticks)))
        };
        if let Some(key) = key {
            if !self.tagged.remove(&key) {
                self.tagged.insert(key);
            }
        }
        let pids = self.order();
        self.select_index(&pids, at + 1);
    }

    /// The signal menu for the tagged processes, else the selected one.
    fn open_kill_menu(&mut self) {
        let targets: Vec<Target> = {
            let rows = self.table();
            let pids: Vec<i32> = rows.iter().map(|r| r.pid).collect();
            let (at, _) = settled(self.selected, self.cursor, &pids);
            let target = |r: &super::TableRow| Target {
                pid: r.pid,
                start_ticks: r.start_ticks,
                comm: crate::render::safe::clean(r.comm).into_owned(),
                init: r.init,
            };
            let tagged: Vec<Target> = rows
                .iter()
                .filter(|r| self.tagged.contains(&(r.pid, r.start_ticks)))
                .map(target)
                .collect();
            if tagged.is_empty() {
                rows.get(at).map(target).into_iter().collect()
            } else {
                tagged
            }
        };
        if targets.is_empty() {
            self.say("no process selected to send a signal to".into());
            return;
        }
        self.menu = Some(Menu {
            kind: MenuKind::Signal(targets),
            selected: 0,
        });
    }

    fn menu_key(&mut self, code: KeyCode) {
        let Some(menu) = self.menu.as_mut() else {
            return;
        };
        let last = menu.items().len().saturating_sub(1);
        match code {
            KeyCode::Down => menu.selected = (menu.selected + 1).min(last),
            KeyCode::Up => menu.selected = menu.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::PageUp => menu.selected = 0,
            KeyCode::End | KeyCode::PageDown => menu.selected = last,
            KeyCode::Enter => {
                let Some(menu) = self.menu.take() else {
                    return;
                };
                match menu.kind {
                    MenuKind::Signal(targets) => {
                        let said = kill::send_all(self.inspector.as_mut(), &targets, menu.selected);
                        for t in &targets {
                            self.tagged.remove(&(t.pid, t.start_ticks));
                        }
                        self.say(said);
                    }
                    MenuKind::Sort(cols) => {
                        if let Some(c) = cols.get(menu.selected) {
                            // A fresh sort, in the column's own direction.
                            self.sort = *c;
                            self.reverse = false;
                        }
                    }
                }
            }
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::F(9 | 6 | 10) => self.menu = None,
            _ => {}
        }
    }

    /// A key while a search or filter is typed; false to handle it as usual (the
    /// navigation keys move the selection meanwhile).
    fn prompt_key(&mut self, prompt: Prompt, code: KeyCode) -> bool {
        match code {
            KeyCode::Enter if prompt == Prompt::GoTo => {
                self.prompt = None;
                self.request = Some(Request::GoTo(std::mem::take(&mut self.goto)));
            }
            KeyCode::Enter => self.prompt = None,
            KeyCode::Esc => {
                self.prompt = None;
                self.text_of(prompt).clear();
                // The search's "not found" goes with it.
                if self.search_failed() {
                    self.message = None;
                }
            }
            KeyCode::Backspace => {
                self.text_of(prompt).pop();
            }
            KeyCode::F(3) if prompt == Prompt::Search => self.find(1),
            KeyCode::F(4) if prompt == Prompt::Filter => self.prompt = None,
            KeyCode::Char(c) => {
                self.text_of(prompt).push(c);
                if prompt == Prompt::Search {
                    self.find(0);
                }
            }
            KeyCode::F(10) => {
                self.prompt = None;
                return false;
            }
            _ => return false,
        }
        true
    }

    fn text_of(&mut self, prompt: Prompt) -> &mut String {
        match prompt {
            Prompt::Search => &mut self.search,
            Prompt::Filter => &mut self.filter,
            Prompt::GoTo => &mut self.goto,
        }
    }

    /// Selects the first row from the selected one plus `skip` (wrapping) whose
    /// command name contains the search; says so when none does.
    fn find(&mut self, skip: usize) {
        let found = {
            let rows = self.table();
            let pids: Vec<i32> = rows.iter().map(|r| r.pid).collect();
            let (at, _) = settled(self.selected, self.cursor, &pids);
            let n = rows.len();
            (0..n)
                .map(|k| (at + skip + k) % n)
                .find(|&i| super::matches(rows[i].comm, &self.search))
                .map(|i| (i, pids))
        };
        match found {
            Some((i, pids)) => {
                self.select_index(&pids, i);
                if self.search_failed() {
                    self.message = None;
                }
            }
            None => self.say(format!(
                "search: no command name contains {:?}",
                crate::render::safe::clean(&self.search)
            )),
        }
    }

    /// Whether the last search found nothing (its message is up).
    pub fn search_failed(&self) -> bool {
        self.message
            .as_ref()
            .is_some_and(|(m, _)| m.starts_with("search: no command"))
    }

    /// Says `message` in the status line, until the next key.
    pub(super) fn say(&mut self, message: String) {
        self.message = Some((message, std::time::Instant::now()));
    }

    fn inspect_key(&mut self, code: KeyCode) {
        let Some(i) = &mut self.inspect else {
            return;
        };
        match code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q') => self.inspect = None,
            KeyCode::Down | KeyCode::Char('j') => i.2 = i.2.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => i.2 = i.2.saturating_sub(1),
            KeyCode::PageDown => i.2 = i.2.saturating_add(20),
            KeyCode::PageUp => i.2 = i.2.saturating_sub(20),
            KeyCode::Home => i.2 = 0,
            _ => {}
        }
    }

    /// Asks the source to inspect the selected process.
    fn open_inspect(&mut self) {
        let pids = self.order();
        let at = self.settle(&pids);
        if let Some(&pid) = pids.get(at) {
            self.request = Some(Request::Inspect(pid));
        }
    }

    /// Shows the live `inspect` view of `pid`, read through the app's reader.
    pub(super) fn inspect_live(&mut self, pid: i32) {
        let text = match self.inspector.as_mut() {
            Some(reader) => inspect_text(reader, pid),
            None => "no reader to inspect with".into(),
        };
        self.inspect = Some((pid, text, 0));
    }

    /// Handles a mouse event; returns whether the screen changed. A left click on a
    /// row selects it, on a column header sorts by that column (reversed when it is
    /// already the one); the wheel moves the selection.
    pub fn mouse(&mut self, m: MouseEvent) -> bool {
        if self.help.is_some()
            || self.menu.is_some()
            || self.inspect.is_some()
            || self.tab == Tab::System
        {
            return false;
        }
        let g = &self.geometry;
        match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                let Some(header) = g.header_y else {
                    return false;
                };
                if m.row == header {
                    let col = g
                        .columns
                        .iter()
                        .find(|(_, from, to)| (*from..*to).contains(&m.column))
                        .map(|c| c.0);
                    return col.map(|c| self.sort_by(c)).is_some();
                }
                let below = m.row.checked_sub(header + 1).filter(|r| *r < g.rows);
                let Some(row) = below else {
                    return false;
                };
                let index = g.offset + usize::from(row);
                let pids = self.order();
                if index >= pids.len() {
                    return false;
                }
                self.select_index(&pids, index);
                true
            }
            MouseEventKind::ScrollDown | MouseEventKind::ScrollUp => {
                let pids = self.order();
                let at = self.settle(&pids);
                let to = if m.kind == MouseEventKind::ScrollDown {
                    at.saturating_add(3)
                } else {
                    at.saturating_sub(3)
                };
                self.select_index(&pids, to);
                true
            }
            _ => false,
        }
    }
}

/// The `inspect` view of a process, as plain text.
fn inspect_text(reader: &mut Reader, pid: i32) -> String {
    let opts = crate::model::process::ViewOptions {
        window: std::time::Duration::ZERO,
        smaps: true,
    };
    match crate::commands::inspect::inspect(reader, pid, Vec::new(), opts) {
        Ok(report) => {
            let mut buf = Vec::new();
            let _ = crate::render::text::inspect(
                &mut buf,
                &report,
                &crate::render::Style { color: false },
            );
            crate::render::safe::clean_lines(&String::from_utf8_lossy(&buf)).into_owned()
        }
        Err(e) => format!("pid {pid}: {e}"),
    }
}
