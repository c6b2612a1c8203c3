//! Everything the lenses show of one process, read through one /proc/PID fd.

use std::collections::HashMap;

use serde::Serialize;

use crate::cgroup::{parse_proc_cgroup, Membership};
use crate::fds::{fd_count, list_fds, OpenFd};
use crate::limits::{parse_limits, Limit};
use crate::missing::{Missing, Val};
use crate::mountinfo::{parse_mountinfo, Mount};
use crate::ns::{parse_ns_link, KINDS};
use crate::parse::{i64_dec, text, u64_dec, InlineStr};
use crate::read::{PidDir, Reader};
use crate::sched::{parse_schedstat, parse_syscall, SchedStat, Syscall};
use crate::smaps::{parse_maps, Mapping};
use crate::stat::Stat;
use crate::status::Status;

/// One thread of a process: what is per thread (pending and blocked signals, where it
/// sleeps), not per process.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadSample {
    /// The thread id.
    pub tid: i32,
    /// status's Name: the thread's own name.
    pub name: Val<InlineStr<64>>,
    /// status's State letter.
    pub state: Val<u8>,
    /// status's SigPnd: signals pending for this thread.
    pub sig_pnd: Val<u64>,
    /// status's SigBlk: signals this thread blocks.
    pub sig_blk: Val<u64>,
    /// status's voluntary context switches (it blocked).
    pub voluntary_ctxt_switches: Val<u64>,
    /// status's involuntary context switches (preempted).
    pub nonvoluntary_ctxt_switches: Val<u64>,
    /// The kernel function the thread sleeps in (0 when running).
    pub wchan: Val<String>,
    /// What the thread's syscall file says it is doing.
    pub syscall: Val<Syscall>,
    /// The thread's schedstat.
    pub schedstat: Val<SchedStat>,
}

/// The namespace inode of one kind.
#[derive(Debug, Clone, Serialize)]
pub struct NsId {
    /// The kind: one of the names of [`KINDS`].
    pub kind: &'static str,
    /// The inode of the /proc/PID/ns/KIND link.
    pub inode: Val<u64>,
}

/// A full, one-shot reading of a process (what `inspect` shows).
#[derive(Debug, Clone, Serialize)]
pub struct ProcessDetail {
    /// The process id.
    pub pid: i32,
    /// /proc/PID/stat.
    pub stat: Val<Stat>,
    /// /proc/PID/status.
    pub status: Val<Status>,
    /// /proc/PID/cmdline, its NULs turned into spaces.
    pub cmdline: Val<String>,
    /// The target of /proc/PID/exe.
    pub exe: Val<String>,
    /// /proc/PID/oom_score: the OOM killer's badness now.
    pub oom_score: Val<u64>,
    /// /proc/PID/oom_score_adj, -1000 to 1000.
    pub oom_score_adj: Val<i64>,
    /// /proc/PID/schedstat (the main thread).
    pub schedstat: Val<SchedStat>,
    /// Open file descriptors.
    pub fd_count: Val<u64>,
    /// Every open descriptor, from /proc/PID/fd.
    pub fds: Val<Vec<OpenFd>>,
    /// /proc/PID/limits.
    pub limits: Val<Vec<Limit>>,
    /// /proc/PID/cgroup.
    pub cgroups: Val<Vec<Membership>>,
    /// Every namespace of [`KINDS`], one link each.
    pub namespaces: Vec<NsId>,
    /// From smaps: per mapping with accounting (one page-table walk of the target).
    pub maps: Val<Vec<Mapping>>,
    /// The process's own view of mounts, to classify its open files.
    pub mounts: Val<Vec<Mount>>,
    /// Every thread, from /proc/PID/task.
    pub threads: Val<Vec<ThreadSample>>,
    /// Children of this process that are zombies (exited, not reaped).
    pub zombie_children: Vec<i32>,
}

/// /proc/PID/oom_score: the badness the OOM killer would give the process now.
pub fn parse_oom_score(buf: &[u8]) -> Val<u64> {
    u64_dec(buf).ok_or_else(|| Missing::malformed("oom_score", text(buf)))
}

/// Options for a detailed read.
#[derive(Debug, Clone, Copy)]
pub struct DetailOptions {
    /// Read /proc/PID/smaps (walks the target's page tables under its mmap lock).
    pub smaps: bool,
}

impl ProcessDetail {
    /// Reads everything of the process; Exited when it is gone before its stat is read.
    pub fn read(reader: &mut Reader, pid: i32, opts: DetailOptions) -> Val<ProcessDetail> {
        let dir = reader.open_pid(pid)?;
        let stat = reader.read_pid(&dir, "stat").and_then(Stat::parse);
        if matches!(stat, Err(Missing::Exited)) {
            return Err(Missing::Exited);
        }
        let status = reader.read_pid(&dir, "status").map(Status::parse);
        let cmdline = reader.read_pid(&dir, "cmdline").and_then(|b| {
            if b.is_empty() {
                return Err(Missing::NotApplicable {
                    why: "empty command line (kernel thread or zombie)",
                });
            }
            let trimmed = b.strip_suffix(b"\0").unwrap_or(b);
            Ok(text(trimmed).replace('\0', " "))
        });
        let exe = reader.readlink_pid(&dir, "exe").map(text);
        let oom_score = reader.read_pid(&dir, "oom_score").and_then(parse_oom_score);
        let oom_score_adj = reader
            .read_pid(&dir, "oom_score_adj")
            .and_then(|b| i64_dec(b).ok_or_else(|| Missing::malformed("oom_score_adj", text(b))));
        let schedstat = reader.read_pid(&dir, "schedstat").and_then(parse_schedstat);
        let mut scratch = Vec::new();
        let fd_count = fd_count(reader, &dir, None, &mut scratch);
        let fds = list_fds(reader, &dir);
        let limits = reader.read_pid(&dir, "limits").and_then(parse_limits);
        let cgroups = reader.read_pid(&dir, "cgroup").and_then(parse_proc_cgroup);
        let namespaces = read_namespaces(reader, &dir);
        let is_zombie = matches!(&stat, Ok(s) if s.state == b'Z');
        let maps = if !opts.smaps {
            Err(Missing::NotApplicable {
                why: "smaps not read (asked not to: it stalls the target)",
            })
        } else if is_zombie {
            Err(Missing::NotApplicable {
                why: "a zombie has no address space",
            })
        } else {
            reader.read_pid(&dir, "smaps").and_then(|b| {
                if b.is_empty() {
                    Err(Missing::NotApplicable {
                        why: "no user address space (kernel thread)",
                    })
                } else {
                    parse_maps(b)
                }
            })
        };
        let mounts = reader.read_pid(&dir, "mountinfo").and_then(parse_mountinfo);
        let threads = read_threads(reader, &dir);
        let zombie_children = zombie_children(reader, pid);
        Ok(ProcessDetail {
            pid,
            stat,
            status,
            cmdline,
            exe,
            oom_score,
            oom_score_adj,
            schedstat,
            fd_count,
            fds,
            limits,
            cgroups,
            namespaces,
            maps,
            mounts,
            threads,
            zombie_children,
        })
    }
}

fn read_namespaces(reader: &mut Reader, dir: &PidDir) -> Vec<NsId> {
    KINDS
        .iter()
        .map(|&(kind, _, _)| NsId {
            kind,
            inode: reader
                .readlink_pid(dir, &format!("ns/{kind}"))
                .and_then(parse_ns_link),
        })
        .collect()
}

fn read_threads(reader: &mut Reader, dir: &PidDir) -> Val<Vec<ThreadSample>> {
    let mut tids = Vec::new();
    reader.list_pid_numbers(dir, "task", &mut tids)?;
    tids.sort_unstable();
    let mut out = Vec::with_capacity(tids.len());
    for tid in tids {
        // A thread that exits between the listing and its read is skipped.
        let Ok(task) = dir.task(tid) else { continue };
        let status = match reader.read_pid(&task, "status") {
            Ok(b) => Status::parse(b),
            Err(Missing::Exited) => continue,
            Err(e) => {
                out.push(ThreadSample::unreadable(tid, e));
                continue;
            }
        };
        let wchan = reader
            .read_pid(&task, "wchan")
            .map(|b| text(b).trim().to_owned());
        let syscall = reader.read_pid(&task, "syscall").and_then(parse_syscall);
        let schedstat = reader
            .read_pid(&task, "schedstat")
            .and_then(parse_schedstat);
        out.push(ThreadSample {
            tid,
            name: status.name,
            state: status.state,
            sig_pnd: status.sig_pnd,
            sig_blk: status.sig_blk,
            voluntary_ctxt_switches: status.voluntary_ctxt_switches,
            nonvoluntary_ctxt_switches: status.nonvoluntary_ctxt_switches,
            wchan,
            syscall,
            schedstat,
        });
    }
    Ok(out)
}

impl ThreadSample {
    fn unreadable(tid: i32, e: Missing) -> ThreadSample {
        ThreadSample {
            tid,
            name: Err(e.clone()),
            state: Err(e.clone()),
            sig_pnd: Err(e.clone()),
            sig_blk: Err(e.clone()),
            voluntary_ctxt_switches: Err(e.clone()),
            nonvoluntary_ctxt_switches: Err(e.clone()),
            wchan: Err(e.clone()),
            syscall: Err(e.clone()),
            schedstat: Err(e),
        }
    }
}

/// Zombie children of `parent`: a scan of every process's stat (state and ppid).
fn zombie_children(reader: &mut Reader, parent: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    if reader.pids(&mut pids).is_err() {
        return Vec::new();
    }
    pids.into_iter()
        .filter(|&pid| {
            let Ok(dir) = reader.open_pid(pid) else {
                return false;
            };
            matches!(reader.read_pid(&dir, "stat").and_then(Stat::parse),
                Ok(s) if s.state == b'Z' && s.ppid == i64::from(parent))
        })
        .collect()
}

/// Whether two live processes run in one address space (a child cloned with CLONE_VM,
/// as vfork and posix_spawn make, before it execs), by kcmp(2) KCMP_VM; `None` where
/// kcmp is refused or absent (a kernel without CONFIG_KCMP, no ptrace access) or a
/// process is gone.
pub fn same_address_space(a: i32, b: i32) -> Option<bool> {
    const KCMP_VM: libc::c_long = 1;
    // SAFETY: kcmp takes two pids, a type and two unused integers; it reads nothing
    // from our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_kcmp,
            libc::c_long::from(a),
            libc::c_long::from(b),
            KCMP_VM,
            0 as libc::c_long,
            0 as libc::c_long,
        )
    };
    (rc >= 0).then_some(rc == 0)
}

/// Every thread blocked in system call `nr` now, as (pid, tid, arguments), from each
/// task's `syscall` file, into `out` (emptied first). A thread that exits meanwhile,
/// or whose file is refused, is left out: a scan of a whole host is best effort.
pub fn threads_in_syscall(reader: &mut Reader, nr: i64, out: &mut Vec<(i32, i32, [u64; 6])>) {
    out.clear();
    let (mut pids, mut tids) = (Vec::new(), Vec::new());
    if reader.pids(&mut pids).is_err() {
        return;
    }
    for pid in pids {
        let Ok(dir) = reader.open_pid(pid) else {
            continue;
        };
        if reader.list_pid_numbers(&dir, "task", &mut tids).is_err() {
            continue;
        }
        for &tid in &tids {
            let Ok(task) = dir.task(tid) else { continue };
            if let Ok(Syscall::In { nr: n, args }) =
                reader.read_pid(&task, "syscall").and_then(parse_syscall)
            {
                if n == nr {
                    out.push((pid, tid, args));
                }
            }
        }
    }
}

/// What a thread's syscall file says now ([`Missing::Exited`] once it is gone).
pub fn thread_syscall(reader: &mut Reader, pid: i32, tid: i32) -> Val<Syscall> {
    let task = reader.open_pid(pid)?.task(tid)?;
    reader.read_pid(&task, "syscall").and_then(parse_syscall)
}

/// A process's threads by their TID inside its own PID namespace, to their TID in the
/// namespace of this /proc (NSpid's last and first entries): what a lock word written
/// in a container names. `None` when the process lives in this /proc's namespace (the
/// ids are the same) or its status cannot say.
pub fn namespace_tids(reader: &mut Reader, pid: i32) -> Option<HashMap<u32, u32>> {
    let dir = reader.open_pid(pid).ok()?;
    let mut tids = Vec::new();
    reader.list_pid_numbers(&dir, "task", &mut tids).ok()?;
    let mut out = HashMap::with_capacity(tids.len());
    for tid in tids {
        let Ok(task) = dir.task(tid) else { continue };
        let Ok(buf) = reader.read_pid(&task, "status") else {
            continue;
        };
        let status = Status::parse(buf);
        // The threads of a process share its namespace: the first read says which.
        if out.is_empty() && status.ns_levels.ok()? <= 1 {
            return None;
        }
        if let Ok(inner) = status.ns_pid {
            out.insert(inner as u32, tid as u32);
        }
    }
    Some(out)
}

/// A 32-bit word of another process's memory, by process_vm_readv(2) (which needs the
/// ptrace access a debugger has); the error says why not (EPERM: refused; EFAULT:
/// unmapped; ESRCH: gone).
pub fn read_u32(pid: i32, addr: u64) -> std::io::Result<u32> {
    let mut word = [0u8; 4];
    let local = libc::iovec {
        iov_base: word.as_mut_ptr().cast(),
        iov_len: word.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: word.len(),
    };
    // SAFETY: the local iovec is our own 4-byte buffer, alive for the call; the remote
    // one is only an address in the other process, which the kernel checks.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    match n {
        4 => Ok(u32::from_ne_bytes(word)),
        // A partial read of a word that straddles the end of a mapping.
        0..=3 => Err(std::io::Error::from_raw_os_error(libc::EFAULT)),
        _ => Err(std::io::Error::last_os_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_16_a_process_shares_its_address_space_with_itself_not_with_a_child() {
        let me = std::process::id() as i32;
        let Some(same) = same_address_space(me, me) else {
            eprintln!("SKIPPED: kcmp is not available here");
            return;
        };
        assert!(same);
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let other = same_address_space(me, child.id() as i32);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(other, Some(false));
    }

    #[test]
    fn issue_16_a_word_of_a_process_is_read_and_an_unmapped_one_is_none() {
        let word: u32 = 0x5eed_1234;
        let me = std::process::id() as i32;
        let at = std::ptr::addr_of!(word) as u64;
        assert_eq!(read_u32(me, at).ok(), Some(0x5eed_1234));
        assert_eq!(
            read_u32(me, 8).unwrap_err().raw_os_error(),
            Some(libc::EFAULT)
        );
    }

    #[test]
    fn issue_16_a_thread_blocked_in_a_read_is_found_with_its_arguments() {
        use std::io::{Read, Write};
        let (mut fd_read, mut fd_write) = std::io::pipe().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd_read);
        let reader_thread = std::thread::spawn(move || {
            // SAFETY: gettid takes nothing and cannot fail.
            tx.send(unsafe { libc::gettid() }).unwrap();
            let mut byte = [0u8; 1];
            fd_read.read_exact(&mut byte).unwrap();
        });
        let tid = rx.recv().unwrap();
        let me = std::process::id() as i32;
        let mut reader = Reader::host().unwrap();
        // Until the thread is in its read (it may not be yet).
        let mut call = None;
        for _ in 0..200 {
            if let Ok(Syscall::In { nr, args }) = thread_syscall(&mut reader, me, tid) {
                if nr == libc::SYS_read {
                    call = Some((nr, args));
                    break;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mut all = Vec::new();
        threads_in_syscall(&mut reader, libc::SYS_read, &mut all);
        fd_write.write_all(b"x").unwrap();
        reader_thread.join().unwrap();
        let (nr, args) = call.expect("the reading thread is in a system call");
        assert_eq!((nr, args[0], args[2]), (libc::SYS_read, raw as u64, 1));
        assert!(all.contains(&(me, tid, args)), "{all:?}");
        assert_eq!(
            thread_syscall(&mut reader, me, tid),
            Err(Missing::Exited),
            "the thread is gone"
        );
    }

    #[test]
    fn issue_16_a_process_in_its_own_pid_namespace_maps_its_thread_ids_to_ours() {
        let me = std::process::id() as i32;
        let mut reader = Reader::host().unwrap();
        assert_eq!(
            namespace_tids(&mut reader, me),
            None,
            "we live in /proc's namespace"
        );
        // unshare forks a child that is pid 1 of a new namespace, and runs sleep there.
        let Ok(mut unshare) = std::process::Command::new("unshare")
            .args(["--pid", "--fork", "sleep", "5"])
            .spawn()
        else {
            eprintln!("SKIPPED: unshare(1) is not installed");
            return;
        };
        let mut inner = None;
        for _ in 0..200 {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
                    .unwrap_or_default();
            inner = children
                .split_whitespace()
                .next()
                .and_then(|c| c.parse().ok());
            if inner.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let mapped = inner.map(|sleep: i32| (sleep, namespace_tids(&mut reader, sleep)));
        unshare.kill().unwrap();
        unshare.wait().unwrap();
        let Some((sleep, mapped)) = mapped else {
            eprintln!("SKIPPED: unshare --pid could not make a namespace here (not root?)");
            return;
        };
        // SAFETY: kill takes a pid and a signal; the sleep is ours (killing unshare
        // does not take its child along).
        unsafe { libc::kill(sleep, libc::SIGKILL) };
        assert_eq!(mapped, Some(HashMap::from([(1, sleep as u32)])));
    }
}
