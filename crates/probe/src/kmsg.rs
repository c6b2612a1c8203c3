//! The kernel log (/dev/kmsg) and the OOM kills it records.
//!
//! Each read(2) of /dev/kmsg returns one record, `PRIO,SEQ,USEC,FLAGS;MESSAGE\n`,
//! followed by dictionary lines that start with a space (` SUBSYSTEM=...`). The kernel
//! escapes every byte of the message outside printable ASCII as `\xNN`, so a message
//! (and a process name in it) never holds a control character. An empty log reads
//! EAGAIN (the fd is non-blocking); records overwritten before they were read show as
//! EPIPE once, then reading goes on from the oldest record left. A captured tree has
//! no kernel log: [`KernelLog::open`] through a reader of one is `NotApplicable`.
//!
//! An OOM kill is a run of records (mm/oom_kill.c): `T invoked oom-killer: ...` names
//! the task whose allocation failed, the stack dump's `CPU: N PID: P Comm: T` line its
//! PID, `oom-kill:constraint=...` the cgroups and the victim, and
//! `...: Killed process P (C) total-vm:...` the victim's memory when it was killed.
//! The first lines are rate-limited by the kernel (10 dumps per 5 s): in a storm only
//! the `Killed process` line of a kill may be logged. [`OomAssembler`] puts the runs
//! back together: [`oom_kills`] gives every kill still in the log (doctor),
//! [`OomWatch`] the kills from the moment it was opened (top).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{first_token, i64_dec, u64_dec};
use crate::read::Reader;

/// One record of the kernel log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// syslog facility (0 = kernel).
    pub facility: u8,
    /// syslog level: 0 emerg ... 3 err, 4 warning ... 7 debug.
    pub level: u8,
    /// Sequence number; consecutive unless records were lost.
    pub seq: u64,
    /// When it was logged: microseconds since boot on the printk clock.
    pub usec: u64,
    /// The text, escaped as the kernel wrote it (`\xNN` for bytes outside printable
    /// ASCII), without the dictionary lines.
    pub message: String,
}

impl Record {
    /// Parses one record as one read(2) of /dev/kmsg returns it (or one line of a
    /// recorded dump); `None` for anything else.
    pub fn parse(raw: &[u8]) -> Option<Record> {
        let line = raw.split(|&b| b == b'\n').next()?;
        let semi = line.iter().position(|&b| b == b';')?;
        let mut head = line[..semi].split(|&b| b == b',');
        let prio = u64_dec(head.next()?)?;
        let seq = u64_dec(head.next()?)?;
        let usec = u64_dec(head.next()?)?;
        Some(Record {
            facility: u8::try_from(prio >> 3).ok()?,
            level: (prio & 7) as u8,
            seq,
            usec,
            message: String::from_utf8_lossy(&line[semi + 1..]).into_owned(),
        })
    }
}

/// The records of a recorded dump (`cat /dev/kmsg > FILE`): one record a line, its
/// dictionary lines (starting with a space) skipped, lines that are not records too.
pub fn records(dump: &[u8]) -> impl Iterator<Item = Record> + '_ {
    dump.split(|&b| b == b'\n')
        .filter(|l| !l.starts_with(b" "))
        .filter_map(Record::parse)
}

/// The largest record a read returns (CONSOLE_EXT_LOG_MAX): a smaller buffer makes
/// the read fail with EINVAL.
const RECORD_MAX: usize = 8192;

/// Records read per call at most, so that a flood of new records (a process that
/// logs as fast as it is read) cannot keep a caller reading forever; the ring buffer
/// of a 16 MiB log_buf_len holds about this many records of ~64 bytes.
const RECORDS_PER_CALL: usize = 1 << 18;

/// An open kernel log, read from the oldest record kept or from the end.
#[derive(Debug)]
pub struct KernelLog {
    fd: OwnedFd,
    buf: Vec<u8>,
    last_seq: Option<u64>,
    lost: u64,
}

impl KernelLog {
    /// Opens the kernel log at its oldest record kept. Needs CAP_SYSLOG or
    /// kernel.dmesg_restrict=0; a reader of a captured tree has none.
    pub fn open(reader: &Reader) -> Val<KernelLog> {
        Ok(KernelLog {
            fd: reader.open_kernel_log()?,
            buf: vec![0; RECORD_MAX],
            last_seq: None,
            lost: 0,
        })
    }

    /// Opens the kernel log after its newest record: only what is logged from now on.
    pub fn open_at_end(reader: &Reader) -> Val<KernelLog> {
        let log = KernelLog::open(reader)?;
        rustix::fs::seek(&log.fd, rustix::fs::SeekFrom::End(0))
            .map_err(|e| Missing::from_io("/dev/kmsg", &e.into()))?;
        Ok(log)
    }

    /// The next record, or `None` when there is none now (it never blocks; a later
    /// call returns what was logged since).
    pub fn next_record(&mut self) -> Option<Record> {
        loop {
            match rustix::io::read(&self.fd, &mut self.buf) {
                Ok(0) => return None,
                Ok(n) => {
                    let Some(rec) = Record::parse(&self.buf[..n]) else {
                        continue;
                    };
                    if let Some(last) = self.last_seq {
                        self.lost += rec.seq.saturating_sub(last + 1);
                    }
                    self.last_seq = Some(rec.seq);
                    return Some(rec);
                }
                // Overwritten before they were read: the sequence gap counts them.
                Err(rustix::io::Errno::PIPE) | Err(rustix::io::Errno::INTR) => {}
                // EAGAIN: nothing new. Any other error ends this read as well.
                Err(_) => return None,
            }
        }
    }

    /// Records overwritten in the ring buffer before this reader reached them, since
    /// its first record.
    pub fn lost(&self) -> u64 {
        self.lost
    }
}

/// The task whose allocation failed and made the kernel pick a victim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OomTrigger {
    /// Its command name, escaped as the log writes it.
    pub comm: String,
    /// Its PID, from the stack dump's `CPU: N PID: P Comm: C` line.
    pub pid: Option<i32>,
    /// The failed allocation's flags, e.g. `0xcc0(GFP_KERNEL)`.
    pub gfp_mask: Option<String>,
    /// log2 of the pages asked for (0: one page).
    pub order: Option<u32>,
    /// The trigger's oom_score_adj.
    pub oom_score_adj: Option<i32>,
}

/// One process killed by the OOM killer. A field is `None` when the log did not say:
/// the kernel rate-limits the lines before `Killed process`, older kernels print fewer
/// fields, and the ring buffer may have lost some records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OomKill {
    /// Sequence number of its `Killed process` record.
    pub seq: u64,
    /// When the kill was logged: microseconds since boot on the printk clock.
    pub usec: u64,
    /// The victim.
    pub pid: i32,
    /// The victim's command name, escaped as the log writes it.
    pub comm: String,
    /// The victim's virtual size when it was killed, in KiB (total-vm).
    pub total_vm_kb: Option<u64>,
    /// Its anonymous resident memory, in KiB (anon-rss).
    pub anon_rss_kb: Option<u64>,
    /// Its resident file pages, in KiB (file-rss).
    pub file_rss_kb: Option<u64>,
    /// Its resident shared memory, in KiB (shmem-rss).
    pub shmem_rss_kb: Option<u64>,
    /// Its page tables, in KiB (pgtables).
    pub pgtables_kb: Option<u64>,
    /// The victim's uid.
    pub uid: Option<u32>,
    /// The victim's oom_score_adj.
    pub oom_score_adj: Option<i32>,
    /// A memory cgroup's limit was hit ("Memory cgroup out of memory"), rather than
    /// the whole system running out ("Out of memory").
    pub cgroup_limit: bool,
    /// CONSTRAINT_NONE (the whole system), CONSTRAINT_MEMCG, CONSTRAINT_CPUSET or
    /// CONSTRAINT_MEMORY_POLICY.
    pub constraint: Option<String>,
    /// The memory cgroup whose limit was hit (None for a system-wide OOM).
    pub oom_memcg: Option<String>,
    /// The victim's memory cgroup.
    pub task_memcg: Option<String>,
    /// Killed with the rest of its cgroup (memory.oom.group), not chosen alone.
    pub group_kill: bool,
    /// The task whose allocation invoked the OOM killer, when the log named it.
    pub trigger: Option<OomTrigger>,
}

impl OomKill {
    /// When the kill was logged, since boot (printk clock).
    pub fn logged_at(&self) -> Duration {
        Duration::from_micros(self.usec)
    }

    /// Seconds between the kill and `uptime` (see [`uptime`]). The printk clock stops
    /// while the machine is suspended and uptime does not, so after a suspend this
    /// is longer than the time really passed.
    pub fn seconds_ago(&self, uptime: Duration) -> f64 {
        uptime.saturating_sub(self.logged_at()).as_secs_f64()
    }
}

/// What the `oom-kill:` summary line says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Summary {
    constraint: Option<String>,
    oom_memcg: Option<String>,
    task_memcg: Option<String>,
    pid: Option<i32>,
}

/// The dump of one OOM event so far.
#[derive(Debug, Clone)]
struct Event {
    trigger: OomTrigger,
    /// The next `CPU:` line is the trigger's stack dump.
    awaiting_cpu_line: bool,
    summary: Option<Summary>,
    /// When its victim's `Killed process` line was logged.
    victim_killed_at: Option<u64>,
    /// The victim's memory.oom.group is killed with it: the kills that follow belong
    /// to this event.
    group_kill: bool,
}

/// How long after its victim an oom.group's members may be logged as killed with it.
const GROUP_KILL_WINDOW_US: u64 = 1_000_000;

/// Puts OOM kills together from kernel log records fed in order. It keeps what it
/// has seen of an OOM event between calls, so records may arrive in any batches.
#[derive(Debug, Default)]
pub struct OomAssembler {
    event: Option<Event>,
}

impl OomAssembler {
    /// An assembler that has seen no record yet.
    pub fn new() -> OomAssembler {
        OomAssembler::default()
    }

    /// Takes the next record; returns the kill it completes, if any.
    pub fn push(&mut self, rec: &Record) -> Option<OomKill> {
        let msg = rec.message.as_str();
        if let Some(trigger) = parse_invoked(msg) {
            self.event = Some(Event {
                trigger,
                awaiting_cpu_line: true,
                summary: None,
                victim_killed_at: None,
                group_kill: false,
            });
            return None;
        }
        // Kernels before 5.0 log the line without the "MESSAGE: " prefix.
        if let Some(killed) = msg
            .split_once(": Killed process ")
            .or_else(|| Some(("", msg.strip_prefix("Killed process ")?)))
        {
            return self.kill(rec, killed);
        }
        let event = self.event.as_mut()?;
        if let Some(summary) = msg.strip_prefix("oom-kill:").map(parse_summary) {
            event.summary = Some(summary);
        } else if msg.starts_with("Tasks in ")
            && msg.ends_with(" are going to be killed due to memory.oom.group set")
        {
            event.group_kill = true;
        } else if event.awaiting_cpu_line && msg.starts_with("CPU: ") {
            event.awaiting_cpu_line = false;
            if let Some((pid, comm)) = parse_cpu_line(msg) {
                if comm == event.trigger.comm {
                    event.trigger.pid = Some(pid);
                }
            }
        }
        None
    }

    /// A `MESSAGE: Killed process P (C) total-vm:...` record.
    fn kill(&mut self, rec: &Record, (message, rest): (&str, &str)) -> Option<OomKill> {
        let (pid, after) = rest.split_once(" (")?;
        let pid: i32 = pid.parse().ok()?;
        // The name may hold ") " itself: the fields start at the last ") total-vm:".
        let (comm, fields) = match after.rfind(") total-vm:") {
            Some(at) => (&after[..at], &after[at + 2..]),
            None => (after.strip_suffix(')').unwrap_or(after), ""),
        };
        let kb = |key: &str| field(fields, key).and_then(|v| u64_dec(v.as_bytes()));
        // The event's dump describes this kill when it is the event's victim, or a
        // member of its oom.group (killed in the same call, microseconds later); a
        // later kill without a dump of its own (rate-limited) borrows nothing.
        let event = self.event.as_ref().filter(|e| match e.victim_killed_at {
            None => true,
            Some(at) => e.group_kill && rec.usec.saturating_sub(at) < GROUP_KILL_WINDOW_US,
        });
        let described = event.is_some();
        let summary = event.and_then(|e| e.summary.clone()).unwrap_or_default();
        let own_summary = summary.pid == Some(pid);
        let constraint = summary.constraint;
        let kill = OomKill {
            seq: rec.seq,
            usec: rec.usec,
            pid,
            comm: comm.to_owned(),
            total_vm_kb: kb("total-vm:"),
            anon_rss_kb: kb("anon-rss:"),
            file_rss_kb: kb("file-rss:"),
            shmem_rss_kb: kb("shmem-rss:"),
            pgtables_kb: kb("pgtables:"),
            uid: field(fields, "UID:").and_then(|v| v.parse().ok()),
            oom_score_adj: field(fields, "oom_score_adj:").and_then(|v| v.parse().ok()),
            cgroup_limit: message.ends_with("Memory cgroup out of memory")
                || constraint.as_deref() == Some("CONSTRAINT_MEMCG"),
            constraint,
            oom_memcg: summary.oom_memcg,
            task_memcg: summary.task_memcg.filter(|_| own_summary),
            group_kill: event.is_some_and(|e| e.group_kill),
            trigger: event.map(|e| e.trigger.clone()),
        };
        match self.event.as_mut() {
            Some(e) if described => {
                e.victim_killed_at.get_or_insert(rec.usec);
            }
            _ => self.event = None,
        }
        Some(kill)
    }
}

/// `T invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0`.
fn parse_invoked(msg: &str) -> Option<OomTrigger> {
    let (comm, rest) = msg.split_once(" invoked oom-killer: ")?;
    let value = |key: &str| {
        rest.split(", ")
            .find_map(|kv| kv.strip_prefix(key))
            .map(str::to_owned)
    };
    Some(OomTrigger {
        comm: comm.to_owned(),
        pid: None,
        gfp_mask: value("gfp_mask="),
        order: value("order=").and_then(|v| v.parse().ok()),
        oom_score_adj: value("oom_score_adj=").and_then(|v| v.parse().ok()),
    })
}

/// `CPU: 1 UID: 0 PID: 24150 Comm: python3 Not tainted ...` (UID since 6.11):
/// the PID and name of the task whose stack follows.
fn parse_cpu_line(msg: &str) -> Option<(i32, &str)> {
    let (_, rest) = msg.split_once(" PID: ")?;
    let (pid, rest) = rest.split_once(" Comm: ")?;
    // The name is printed %.20s; what follows is the taint text.
    let comm = rest
        .rsplit_once(" Not tainted")
        .or_else(|| rest.rsplit_once(" Tainted:"))
        .map_or(rest, |(c, _)| c);
    Some((pid.trim().parse().ok()?, comm))
}

/// `constraint=C,nodemask=N,cpuset=S,mems_allowed=M[,oom_memcg=P|,global_oom],task_memcg=Q,task=T,pid=P,uid=U`.
/// Node lists and cgroup names may hold commas, so the line is cut at its known keys,
/// from the end for the task's part.
fn parse_summary(rest: &str) -> Summary {
    let between = |from: &str, to: &str| -> Option<String> {
        let start = rest.find(from)? + from.len();
        let len = rest[start..].find(to)?;
        Some(rest[start..start + len].to_owned())
    };
    let pid = rest
        .rsplit_once(",pid=")
        .and_then(|(_, p)| i64_dec(first_token(p.split(',').next()?.as_bytes())))
        .and_then(|p| i32::try_from(p).ok());
    let task_memcg = rest.find(",task_memcg=").and_then(|start| {
        let start = start + ",task_memcg=".len();
        let end = rest.rfind(",task=").filter(|&e| e >= start)?;
        Some(rest[start..end].to_owned())
    });
    Summary {
        constraint: between("constraint=", ","),
        oom_memcg: between(",oom_memcg=", ",task_memcg="),
        task_memcg,
        pid,
    }
}

/// The value after `key` in `total-vm:82104kB, anon-rss:16128kB, ..., UID:0
/// pgtables:92kB oom_score_adj:0`, without its unit.
fn field<'a>(fields: &'a str, key: &str) -> Option<&'a str> {
    let at = fields.find(key)? + key.len();
    let value = &fields[at..];
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
        .unwrap_or(value.len());
    Some(&value[..end]).filter(|v| !v.is_empty())
}

/// Every OOM kill still in the kernel log, oldest first.
pub fn oom_kills(reader: &Reader) -> Val<Vec<OomKill>> {
    let mut log = KernelLog::open(reader)?;
    let mut assembler = OomAssembler::new();
    let mut kills = Vec::new();
    for _ in 0..RECORDS_PER_CALL {
        let Some(rec) = log.next_record() else { break };
        kills.extend(assembler.push(&rec));
    }
    Ok(kills)
}

/// OOM kills as they happen: the kernel log from the moment it was opened.
#[derive(Debug)]
pub struct OomWatch {
    log: KernelLog,
    assembler: OomAssembler,
}

impl AsFd for OomWatch {
    /// The kernel log's fd: readable when a record was logged (to poll).
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.log.fd.as_fd()
    }
}

impl OomWatch {
    /// Starts watching: kills logged before this call are not reported.
    pub fn open(reader: &Reader) -> Val<OomWatch> {
        Ok(OomWatch {
            log: KernelLog::open_at_end(reader)?,
            assembler: OomAssembler::new(),
        })
    }

    /// The kills logged since the last call (never blocks).
    pub fn new_kills(&mut self) -> Vec<OomKill> {
        let mut kills = Vec::new();
        for _ in 0..RECORDS_PER_CALL {
            let Some(rec) = self.log.next_record() else {
                break;
            };
            kills.extend(self.assembler.push(&rec));
        }
        kills
    }

    /// Records the ring buffer overwrote before they were read (kills among them are
    /// not reported).
    pub fn lost(&self) -> u64 {
        self.log.lost()
    }
}

/// Time since boot, from /proc/uptime (of the tree, for a captured one).
pub fn uptime(reader: &mut Reader) -> Val<Duration> {
    let buf = reader.read_proc("uptime")?;
    let secs = std::str::from_utf8(first_token(buf))
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| Missing::malformed("/proc/uptime", crate::parse::text(buf)))?;
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_record_and_skips_its_dictionary() {
        let r = Record::parse(
            b"5,335,1259787,-;virtio_blk virtio1: [vda] new size\n SUBSYSTEM=virtio\n",
        )
        .unwrap();
        assert_eq!((r.facility, r.level, r.seq, r.usec), (0, 5, 335, 1259787));
        assert_eq!(r.message, "virtio_blk virtio1: [vda] new size");
        // Facility 3 (daemon) at level 6: prio 30.
        assert_eq!(
            Record::parse(b"30,7,1,c;systemd[1]: x").unwrap().facility,
            3
        );
        assert_eq!(Record::parse(b" SUBSYSTEM=virtio"), None);
        assert_eq!(Record::parse(b"x,1,2,-;text"), None);
    }

    #[test]
    fn cpu_line_with_and_without_uid() {
        assert_eq!(
            parse_cpu_line("CPU: 1 UID: 0 PID: 24150 Comm: python3 Not tainted 6.18.44 #1"),
            Some((24150, "python3"))
        );
        assert_eq!(
            parse_cpu_line("CPU: 3 PID: 4242 Comm: my prog Tainted: G   O  5.15.0 #1"),
            Some((4242, "my prog"))
        );
    }

    #[test]
    fn summary_with_commas_in_node_lists_and_cgroup_names() {
        let s = parse_summary(
            "constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0-1,3,\
             oom_memcg=/a,b,task_memcg=/a,b/c,task=x,pid=7,uid=0",
        );
        assert_eq!(s.constraint.as_deref(), Some("CONSTRAINT_MEMCG"));
        assert_eq!(s.oom_memcg.as_deref(), Some("/a,b"));
        assert_eq!(s.task_memcg.as_deref(), Some("/a,b/c"));
        assert_eq!(s.pid, Some(7));
        let global = parse_summary(
            "constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,\
             task_memcg=/system.slice/x.service,task=java,pid=5151,uid=1000",
        );
        assert_eq!(global.oom_memcg, None);
        assert_eq!(
            global.task_memcg.as_deref(),
            Some("/system.slice/x.service")
        );
    }

    #[test]
    fn a_name_holding_the_separator_is_kept_whole() {
        let mut a = OomAssembler::new();
        let rec = Record::parse(
            b"3,9,10,-;Out of memory: Killed process 12 (a) total-vm:1kB) total-vm:100kB, \
              anon-rss:50kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:8kB oom_score_adj:-17",
        )
        .unwrap();
        let k = a.push(&rec).unwrap();
        assert_eq!(k.comm, "a) total-vm:1kB");
        assert_eq!((k.total_vm_kb, k.anon_rss_kb), (Some(100), Some(50)));
        assert_eq!((k.uid, k.oom_score_adj), (Some(1000), Some(-17)));
        assert!(!k.cgroup_limit);
    }

    #[test]
    fn issue_13_a_captured_tree_has_no_kernel_log() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir(tree.path().join("proc")).unwrap();
        std::fs::write(tree.path().join("proc/uptime"), "86460.12 170000.50\n").unwrap();
        let mut r = Reader::new(tree.path()).unwrap();
        let none = Missing::NotApplicable {
            why: "a captured tree has no kernel log",
        };
        assert_eq!(KernelLog::open(&r).unwrap_err(), none);
        assert_eq!(oom_kills(&r).unwrap_err(), none);
        assert_eq!(OomWatch::open(&r).unwrap_err(), none);
        // The tree's own uptime, not the host's.
        assert_eq!(uptime(&mut r).unwrap(), Duration::from_millis(86_460_120));
    }

    /// A memory cgroup v1 with a small limit, removed when dropped.
    struct Memcg(std::path::PathBuf);

    impl Drop for Memcg {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }

    #[test]
    fn issue_13_watch_sees_a_live_memcg_oom_kill() {
        let root = std::path::Path::new("/sys/fs/cgroup/memory");
        let mut host = Reader::host().unwrap();
        if !rustix::process::geteuid().is_root() || !root.join("cgroup.procs").exists() {
            eprintln!("SKIPPED: needs root and the cgroup v1 memory controller");
            return;
        }
        let mut watch = match OomWatch::open(&host) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("SKIPPED: {e}");
                return;
            }
        };
        let name = format!("syslens-test-{}", std::process::id());
        let cg = Memcg(root.join(&name));
        std::fs::create_dir(&cg.0).unwrap();
        std::fs::write(cg.0.join("memory.limit_in_bytes"), (16 << 20).to_string()).unwrap();
        // dd fills a 64 MiB buffer: its pages are charged to the cgroup as it reads.
        let procs = cg.0.join("cgroup.procs");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "echo $$ > {}; exec dd if=/dev/zero of=/dev/null bs=64M count=1",
                procs.display()
            ))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "dd was not killed: {status:?}");
        let started = std::time::Instant::now();
        let mut kills = Vec::new();
        while kills.is_empty() && started.elapsed() < Duration::from_secs(5) {
            kills.extend(watch.new_kills().into_iter().filter(|k| k.comm == "dd"));
            std::thread::sleep(Duration::from_millis(20));
        }
        let k = kills.first().expect("the kill was logged");
        let memcg = format!("/{name}");
        assert_eq!(k.task_memcg.as_deref(), Some(memcg.as_str()));
        assert_eq!(k.oom_memcg.as_deref(), Some(memcg.as_str()));
        assert!(k.cgroup_limit);
        // What dd had charged when it was killed, up to the 16 MiB limit.
        let anon = k.anon_rss_kb.unwrap();
        assert!((8 << 10..=16 << 10).contains(&anon), "{anon} kB");
        let trigger = k.trigger.as_ref().unwrap();
        assert_eq!((trigger.comm.as_str(), trigger.pid), ("dd", Some(k.pid)));
        let ago = k.seconds_ago(uptime(&mut host).unwrap());
        assert!(ago < 10.0, "{ago} s ago");
        // Reading the whole log finds the same kill, assembled the same way.
        let all = oom_kills(&host).unwrap();
        assert_eq!(all.iter().find(|a| a.seq == k.seq), Some(k));
    }
}
