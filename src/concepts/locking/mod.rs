//! Locking: threads blocked in futex waits and file locks held or awaited.

pub mod events;
pub mod lab;
pub mod learn;
pub mod rules;

/// This concept's entry in the registry: its lenses, rules, lab and explanation.
pub const CONCEPT: ConceptDef = ConceptDef {
    id: ConceptId::Locking,
    system,
    process: lens,
    rules: rules::RULES,
    events: events::EVENTS,
    lab: &lab::LAB,
    lesson: &learn::LESSON,
    explain: include_str!("explain.md"),
    read_next: include_str!("read.md"),
    lab_source: include_str!("lab.rs"),
};

use syslens_probe::locks::FileLock;
use syslens_probe::sched::{syscall_name, Syscall};
use syslens_probe::stat::state_name;

use crate::model::figure::{Table, Unit, Value};
use crate::model::process::{ProcessView, Section};

use crate::model::system::SystemView;

use super::{ConceptDef, ConceptId};

/// The futex system call on x86_64.
pub const SYS_FUTEX: i64 = 202;

/// Where each thread waits (futex and others), and the file locks the process holds or awaits.
pub fn lens(v: &ProcessView) -> Section {
    let mut s = Section::new(ConceptId::Locking);
    match &v.detail.threads {
        Ok(threads) => {
            let mut t = Table::new(
                "threads: where each one waits",
                &[
                    ("tid", Unit::None),
                    ("state", Unit::None),
                    ("wchan", Unit::None),
                    ("syscall", Unit::None),
                    ("futex address", Unit::None),
                ],
                v.src("task/TID/{stat,wchan,syscall}"),
            );
            let mut in_futex = 0u64;
            for th in threads {
                let (call, addr) = match &th.syscall {
                    Ok(Syscall::In {
                        nr,
                        args: [arg0, ..],
                    }) => {
                        if *nr == SYS_FUTEX {
                            in_futex += 1;
                        }
                        let name =
                            syscall_name(*nr).map_or_else(|| format!("#{nr}"), str::to_owned);
                        let addr = if *nr == SYS_FUTEX {
                            Ok(Value::Text(format!("{arg0:#x}")))
                        } else {
                            Ok(Value::Text("-".into()))
                        };
                        (Ok(Value::Text(name)), addr)
                    }
                    Ok(Syscall::Running) => (
                        Ok(Value::Text("running".into())),
                        Ok(Value::Text("-".into())),
                    ),
                    Ok(Syscall::Blocked) => (
                        Ok(Value::Text("blocked, not in a syscall".into())),
                        Ok(Value::Text("-".into())),
                    ),
                    Err(e) => (Err(e.clone()), Err(e.clone())),
                };
                t.push(vec![
                    Ok(Value::Unsigned(th.tid as u64)),
                    th.state
                        .clone()
                        .map(|c| Value::Text(format!("{} ({})", c as char, state_name(c)))),
                    th.wchan.clone().map(Value::Text),
                    call,
                    addr,
                ]);
            }
            s.figure(
                "threads",
                Ok(threads.len() as u64),
                Unit::Count,
                v.src("task"),
            );
            s.figure(
                "threads waiting in futex",
                Ok(in_futex),
                Unit::Count,
                v.src("task/TID/syscall"),
            );
            s.tables.push(t);
        }
        Err(e) => s.figure::<u64>("threads", Err(e.clone()), Unit::Count, v.src("task")),
    }
    match &v.locks {
        Ok(locks) => {
            let pid = i64::from(v.pid);
            let carriers = v.lock_carriers.as_ref().ok();
            // Its own locks, and those its fds carry under another pid (inherited).
            let carries =
                |l: &FileLock| carriers.is_some_and(|c| c.of(l.id).any(|x| x.pid == v.pid));
            let mine: Vec<_> = locks
                .iter()
                .filter(|l| l.pid == pid || (!l.waiting && carries(l)))
                .collect();
            let mut t = Table::new(
                "file locks of this process",
                &[
                    ("lock", Unit::None),
                    ("role", Unit::None),
                    ("class", Unit::None),
                    ("access", Unit::None),
                    ("file", Unit::None),
                    ("taken by", Unit::None),
                    ("carried by (pid:fd)", Unit::None),
                ],
                "/proc/locks, /proc/PID/fdinfo/N lock: lines",
            );
            for l in &mine {
                let holder = locks.iter().find(|h| h.id == l.id && !h.waiting);
                let role = match (l.waiting, l.pid == pid) {
                    (true, _) => "waiting",
                    (false, true) => "holds",
                    (false, false) => "holds (inherited fd)",
                };
                let file = carriers
                    .and_then(|c| c.path(l.id))
                    .map_or_else(|| l.file.clone(), |p| format!("{p} ({})", l.file));
                let carried = match &v.lock_carriers {
                    Ok(c) => {
                        let list: Vec<String> = c
                            .of(l.id)
                            .map(|x| format!("{} ({}):{}", x.pid, x.comm, x.fd))
                            .collect();
                        Ok(Value::Text(if list.is_empty() {
                            "none found".into()
                        } else {
                            list.join(", ")
                        }))
                    }
                    Err(e) => Err(e.clone()),
                };
                t.push(vec![
                    Ok(Value::Unsigned(l.id)),
                    Ok(role.into()),
                    Ok(l.class.as_str().into()),
                    Ok(l.access.as_str().into()),
                    Ok(file.into()),
                    Ok(holder.map_or(Value::Text("?".into()), |h| Value::Signed(h.pid))),
                    carried,
                ]);
            }
            s.figure(
                "file locks held",
                Ok(mine.iter().filter(|l| !l.waiting).count() as u64),
                Unit::Count,
                "/proc/locks",
            );
            s.figure(
                "file locks awaited",
                Ok(mine.iter().filter(|l| l.waiting).count() as u64),
                Unit::Count,
                "/proc/locks",
            );
            if !mine.is_empty() {
                s.tables.push(t);
            }
            if let Some(c) = carriers.filter(|c| c.unreadable > 0 && !mine.is_empty()) {
                s.note(format!(
                    "the fds of {} processes could not be searched for carriers (run as root)",
                    c.unreadable
                ));
            }
        }
        Err(e) => s.figure::<u64>("file locks", Err(e.clone()), Unit::Count, "/proc/locks"),
    }
    s.note("threads parked in futex waits look the same whether idle or deadlocked; only a lab that knows its own locks can say deadlock");
    s
}

/// File locks held and awaited on the machine.
pub fn system(v: &SystemView) -> Section {
    let mut s = Section::new(ConceptId::Locking);
    let locks = v.locks.as_ref().map_err(Clone::clone);
    s.figure(
        "file locks held",
        locks
            .clone()
            .map(|l| l.iter().filter(|x| !x.waiting).count() as u64),
        Unit::Count,
        "/proc/locks",
    );
    s.figure(
        "file lock waiters",
        locks.map(|l| l.iter().filter(|x| x.waiting).count() as u64),
        Unit::Count,
        "/proc/locks",
    );
    s
}
