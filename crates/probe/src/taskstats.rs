//! Every task's exit, with its final accounting, from the kernel's taskstats interface.
//!
//! Polling /proc misses a process that lives between two polls. At every task exit the
//! kernel fills a `struct taskstats` (include/uapi/linux/taskstats.h: final CPU time,
//! peak RSS, faults, I/O, exit status) and unicasts it over generic netlink to each
//! socket registered for the CPU the task exited on (TASKSTATS_CMD_ATTR_REGISTER_CPUMASK).
//! [`ExitWatch`] is such a socket; [`parse_datagram`] decodes what it receives.
//!
//! **What it needs.** A kernel built with CONFIG_TASKSTATS (CONFIG_TASK_XACCT for the
//! memory and character I/O fields, CONFIG_TASK_IO_ACCOUNTING for `read_bytes` and
//! `write_bytes`: the kernel leaves them zero without). CAP_NET_ADMIN to register (the
//! command is GENL_ADMIN_PERM). The initial user and PID namespaces (the kernel refuses
//! registration from a container) and the initial network namespace (records are sent
//! in that one only: [`ExitWatch::open`] checks, or it would wait for nothing).
//!
//! **What arrives per exit.** One [`TaskExit`] per exiting *thread*:
//! - a single-threaded process: one record, `ends_process == Some(true)`, no `group`;
//! - a process with threads: one record per thread as each exits. The last thread to
//!   exit (the leader or not) has `ends_process == Some(true)` and carries
//!   [`GroupTotals`], the kernel's sums over every thread of the group (CPU time,
//!   context switches). In that record `hiwater_*` and `process_elapsed_us` are the
//!   whole process's (the peak of the shared address space; time since the leader
//!   started), and so is the exit status when the process ended by exit_group(2) or a
//!   fatal signal (every thread then exits with the group's status). `comm`, faults and
//!   I/O are that thread's alone: the kernel keeps no group sums of those.
//!
//! For one record per process exit, keep the records with `ends_process == Some(true)`
//! (the kernel's AGROUP flag, taskstats version 12 on; before it a single-threaded exit
//! cannot be told from a thread's, and `ends_process` is None).
//!
//! **Loss.** Records queue in the socket's receive buffer ([`DEFAULT_BUFFER_BYTES`], set
//! with SO_RCVBUFFORCE, which CAP_NET_ADMIN allows). When it is full the kernel drops
//! the record and the next receive fails with ENOBUFS: [`ExitWatch::overruns`] counts
//! these. One overrun is at least one lost record; the kernel does not say how many.
//!
//! **What it costs** (measured on the dev VM: 2 CPUs, kernel 6.18, taskstats version
//! 16, while other builds kept the load near 7). A record is a 596-byte datagram
//! (1172 with group totals) and takes 2304 bytes of the receive buffer with the
//! kernel's bookkeeping: the default buffer (4 MiB asked, 8 MiB as the kernel doubles
//! it) held 3640 records between two drains. [`ExitWatch::drain`] took 1.9-2.9 µs of
//! CPU a record (median 2.6), most of it the recv(2) of each datagram (decoding is
//! 0.2-0.6 µs): about 400 000 records a second of one CPU, far more than tasks can
//! exit. While a listener is registered the kernel builds and sends a record at every
//! exit, charged to the exiting task: the CPU time of a thread's spawn, exit and join
//! went from a median of 64.8 µs without a listener to 70.2 µs with one (12 rounds of
//! 2500 each; rounds ranged 49-72 and 62-80 µs), about 5 µs an exit.
//!
//! The netlink framing is written by hand: a request is three headers and one
//! attribute, a record two nested attributes. That is less than a netlink crate and
//! its dependencies, and it keeps every length check on the kernel's bytes in view.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};
use serde::Serialize;

/// The receive buffer [`ExitWatch::open`] asks for (the kernel doubles it): about 3600
/// records of backlog, so a burst of short-lived processes between two drains (a
/// parallel build) is not lost. It is kernel memory used only while records wait.
pub const DEFAULT_BUFFER_BYTES: usize = 4 << 20;

/// Datagrams read per [`ExitWatch::drain`] at most, so that exits arriving as fast as
/// they are read cannot keep the caller reading forever. The socket stays readable
/// while more are queued: the next poll returns at once.
const DATAGRAMS_PER_DRAIN: usize = 1 << 16;

/// The receive buffer for one datagram. A record is under 1.2 KiB; the kernel sends
/// one record per datagram.
const RECV_BUFFER: usize = 32 << 10;

/// How long opening waits for each answer of the kernel.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// Datagrams read at most while waiting for one answer (exit records may come first).
const DATAGRAMS_PER_ANSWER: usize = 1 << 16;

// Netlink (include/uapi/linux/netlink.h) and generic netlink (genetlink.h).
const NLMSG_HDRLEN: usize = 16;
const GENL_HDRLEN: usize = 4;
const NLA_HDRLEN: usize = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 0x2;
/// The type bits of nla_type (NLA_TYPE_MASK), without NLA_F_NESTED and byte order.
const NLA_TYPE_MASK: u16 = 0x3fff;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;

// Taskstats (include/uapi/linux/taskstats.h).
const TASKSTATS_GENL_NAME: &[u8] = b"TASKSTATS\0";
const TASKSTATS_GENL_VERSION: u8 = 1;
const TASKSTATS_CMD_GET: u8 = 1;
const TASKSTATS_CMD_NEW: u8 = 2;
const TASKSTATS_TYPE_PID: u16 = 1;
const TASKSTATS_TYPE_TGID: u16 = 2;
const TASKSTATS_TYPE_STATS: u16 = 3;
const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
const TASKSTATS_TYPE_AGGR_TGID: u16 = 5;
const TASKSTATS_CMD_ATTR_REGISTER_CPUMASK: u16 = 3;
const TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK: u16 = 4;

// ac_flag bits (include/uapi/linux/acct.h).
const AFORK: u8 = 0x01;
const ACORE: u8 = 0x08;
const AGROUP: u8 = 0x20;

/// One field of `struct taskstats`: its offset (the uapi header's layout, checked with
/// offsetof against the v13 header) and the struct version that added it. A field is
/// read only when the record reaches its end and is of that version or later.
#[derive(Debug, Clone, Copy)]
struct Field {
    at: usize,
    since: u16,
}

/// The layout every version from 2 on shares (version 1, Linux 2.6.18 only, had
/// padding where `ac_exitcode` is and is not decoded). Fields up to version 9 are gated
/// by length alone: each version's struct ends where its last field does.
mod field {
    use super::Field;
    const fn f(at: usize) -> Field {
        Field { at, since: 2 }
    }
    pub const EXITCODE: Field = f(4);
    pub const FLAG: Field = f(8);
    pub const COMM: Field = f(80);
    pub const UID: Field = f(120);
    pub const GID: Field = f(124);
    pub const PPID: Field = f(132);
    pub const BTIME: Field = f(136);
    pub const ETIME: Field = f(144);
    pub const UTIME: Field = f(152);
    pub const STIME: Field = f(160);
    pub const MINFLT: Field = f(168);
    pub const MAJFLT: Field = f(176);
    pub const HIWATER_RSS: Field = f(200);
    pub const HIWATER_VM: Field = f(208);
    pub const READ_CHAR: Field = f(216);
    pub const WRITE_CHAR: Field = f(224);
    pub const READ_BYTES: Field = f(248);
    pub const WRITE_BYTES: Field = f(256);
    pub const CANCELLED_WRITE_BYTES: Field = f(264);
    pub const NVCSW: Field = f(272);
    pub const NIVCSW: Field = f(280);
    pub const BTIME64: Field = Field { at: 344, since: 10 };
    pub const TGID: Field = Field { at: 368, since: 12 };
    pub const TGETIME: Field = Field { at: 376, since: 12 };
}

/// Length of `ac_comm` (TS_COMM_LEN).
const COMM_LEN: usize = 32;

/// The first version whose `ac_flag` has AGROUP and whose records carry `ac_tgid`.
const VERSION_AGROUP: u16 = 12;

/// How a task ended, decoded from its wait status (`ac_exitcode`, as wait(2) gives it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// It called exit (or returned from main) with this code.
    Exited {
        /// The exit code, 0-255.
        code: i32,
    },
    /// A signal ended it.
    Killed {
        /// The signal's number (see [`crate::names::signal_name`]).
        signal: u32,
        /// It dumped core.
        core_dumped: bool,
    },
}

impl ExitStatus {
    /// Decodes a wait status; `None` for a value no exit has (a stopped status, or bits
    /// above the 16 a wait status uses).
    pub fn from_wait_status(status: u32) -> Option<ExitStatus> {
        if status > 0xffff {
            return None;
        }
        match status & 0x7f {
            0 => Some(ExitStatus::Exited {
                code: ((status >> 8) & 0xff) as i32,
            }),
            0x7f => None,
            signal => Some(ExitStatus::Killed {
                signal,
                core_dumped: status & 0x80 != 0,
            }),
        }
    }
}

/// The kernel's sums over every thread of a process, sent with the exit of its last
/// thread when it had more than one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupTotals {
    /// User CPU time of all its threads, in microseconds.
    pub utime_us: Option<u64>,
    /// System CPU time of all its threads, in microseconds.
    pub stime_us: Option<u64>,
    /// Voluntary context switches of all its threads.
    pub nvcsw: Option<u64>,
    /// Involuntary context switches of all its threads.
    pub nivcsw: Option<u64>,
}

/// One task's exit record. Fields are `None` when the record does not reach them: an
/// older kernel's shorter struct, or a version before the field was added. (The
/// struct's read and write system call counts are not given: the kernel rounds them
/// down to a multiple of 1024 as it does byte counts, so most read 0.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskExit {
    /// The exiting thread's id, in the initial PID namespace (for the only or the main
    /// thread of a process, the process id).
    pub pid: u32,
    /// Its process (thread group) id; from version 12, or from the group totals.
    pub tgid: Option<u32>,
    /// The process id of its parent.
    pub ppid: Option<u32>,
    /// Its real user id, in the initial user namespace.
    pub uid: Option<u32>,
    /// Its real group id, in the initial user namespace.
    pub gid: Option<u32>,
    /// The thread's name as the kernel keeps it (up to 15 bytes; any byte but NUL is
    /// possible, so clean it before writing it to a terminal).
    pub comm: Option<String>,
    /// The `struct taskstats` version the kernel sent.
    pub version: u16,
    /// The raw wait status (`ac_exitcode`); decoded in `exit`.
    pub wait_status: Option<u32>,
    /// How it ended.
    pub exit: Option<ExitStatus>,
    /// This is the last thread of its process to exit (AGROUP; version 12 on, or any
    /// record sent with group totals). See the module documentation.
    pub ends_process: Option<bool>,
    /// The process had forked and not exec'd (AFORK; set for a process's main thread).
    pub forked_without_exec: Option<bool>,
    /// It dumped core (ACORE).
    pub dumped_core: Option<bool>,
    /// When the thread started, in seconds since the Unix epoch (the kernel computes it
    /// as the wall clock at exit less the thread's elapsed time).
    pub begin_time_unix: Option<u64>,
    /// How long the thread lived, in microseconds.
    pub elapsed_us: Option<u64>,
    /// How long its process had lived when the thread exited (since the process's main
    /// thread started), in microseconds; version 12 on.
    pub process_elapsed_us: Option<u64>,
    /// The thread's user CPU time, in microseconds.
    pub utime_us: Option<u64>,
    /// The thread's system CPU time, in microseconds.
    pub stime_us: Option<u64>,
    /// The thread's minor page faults.
    pub minflt: Option<u64>,
    /// The thread's major page faults (a page read from storage or swap).
    pub majflt: Option<u64>,
    /// The address space's peak resident size, in bytes (shared by every thread).
    pub hiwater_rss_bytes: Option<u64>,
    /// The address space's peak virtual size, in bytes.
    pub hiwater_vm_bytes: Option<u64>,
    /// Bytes the thread passed to read-like system calls (rchar: cache hits too).
    /// Like every I/O figure here, rounded down to a multiple of 1024 by the kernel.
    pub read_char: Option<u64>,
    /// Bytes the thread passed to write-like system calls (wchar).
    pub write_char: Option<u64>,
    /// Bytes the thread made the storage layer read (0 on a kernel without
    /// CONFIG_TASK_IO_ACCOUNTING).
    pub read_bytes: Option<u64>,
    /// Bytes the thread dirtied for writing to storage.
    pub write_bytes: Option<u64>,
    /// Bytes of its writes cancelled before reaching storage (a truncated dirty file).
    pub cancelled_write_bytes: Option<u64>,
    /// The thread's voluntary context switches (it blocked).
    pub nvcsw: Option<u64>,
    /// The thread's involuntary context switches (it was preempted).
    pub nivcsw: Option<u64>,
    /// The sums over all threads, on the record of the last thread of a process that
    /// had more than one.
    pub group: Option<GroupTotals>,
}

impl TaskExit {
    /// The CPU time the whole process used, in microseconds, on a record that ends a
    /// process: the group totals when it had threads, else this (only) thread's.
    pub fn process_cpu_us(&self) -> Option<u64> {
        if self.ends_process != Some(true) {
            return None;
        }
        let (utime, stime) = match &self.group {
            Some(g) => (g.utime_us, g.stime_us),
            None => (self.utime_us, self.stime_us),
        };
        utime?.checked_add(stime?)
    }
}

/// Why [`ExitWatch::open`] failed, in words a user can act on.
#[derive(Debug)]
pub enum OpenError {
    /// The kernel has no TASKSTATS generic netlink family.
    NotInKernel,
    /// Registering needs CAP_NET_ADMIN (EPERM).
    Permission,
    /// The kernel refused the registration as invalid (EINVAL), or the list holds a
    /// NUL byte.
    Refused {
        /// The CPU list that was asked for.
        cpus: String,
    },
    /// This process is not in the initial network namespace, where the kernel sends
    /// every exit record.
    OtherNetworkNamespace,
    /// A system call failed.
    Io {
        /// What was being done.
        step: &'static str,
        /// The error.
        err: io::Error,
    },
    /// The kernel's answer did not parse.
    Protocol {
        /// What was being done.
        step: &'static str,
        /// What was wrong.
        detail: String,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotInKernel => f.write_str(
                "the kernel has no taskstats interface (built without CONFIG_TASKSTATS)",
            ),
            OpenError::Permission => f.write_str(
                "registering for taskstats exit records needs CAP_NET_ADMIN \
                 (run as root, or grant the capability)",
            ),
            OpenError::Refused { cpus } => write!(
                f,
                "registering for the exits of CPUs \"{cpus}\" was refused: either that \
                 is not a CPU list within /sys/devices/system/cpu/possible, or this \
                 process is not in the initial user and PID namespaces (a container \
                 cannot register)"
            ),
            OpenError::OtherNetworkNamespace => f.write_str(
                "this process is not in the host's network namespace, and the kernel \
                 sends taskstats exit records only there",
            ),
            OpenError::Io { step, err } => write!(f, "taskstats: {step}: {err}"),
            OpenError::Protocol { step, detail } => {
                write!(f, "taskstats: {step}: unexpected answer: {detail}")
            }
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { err, .. } => Some(err),
            _ => None,
        }
    }
}

/// A socket registered for the exit records of a set of CPUs. It owns the socket and
/// one reused receive buffer; dropping it deregisters.
#[derive(Debug)]
pub struct ExitWatch {
    fd: OwnedFd,
    family: u16,
    cpus: String,
    /// The kernel acknowledged the registration: dropping deregisters.
    registered: bool,
    buf: Vec<u8>,
    /// Records that arrived while opening waited for the kernel's acknowledgement.
    early: Vec<TaskExit>,
    overruns: u64,
    undecoded: u64,
}

impl ExitWatch {
    /// Registers for the exits on `cpus`, a CPU list such as `0-1` or `0,2-3`
    /// (/sys/devices/system/cpu/online; `possible` covers CPUs brought online later),
    /// with a receive buffer of [`DEFAULT_BUFFER_BYTES`].
    pub fn open(cpus: &str) -> Result<ExitWatch, OpenError> {
        ExitWatch::open_with_buffer(cpus, DEFAULT_BUFFER_BYTES)
    }

    /// As [`ExitWatch::open`], with a receive buffer of `buffer_bytes` (the kernel
    /// doubles it for its bookkeeping and enforces a minimum): larger for a host that
    /// starts thousands of processes between two drains.
    pub fn open_with_buffer(cpus: &str, buffer_bytes: usize) -> Result<ExitWatch, OpenError> {
        let io = |step| {
            move |e: Errno| OpenError::Io {
                step,
                err: e.into(),
            }
        };
        if cpus.bytes().any(|b| b == 0) {
            return Err(OpenError::Refused {
                cpus: cpus.to_owned(),
            });
        }
        if !in_host_network_namespace() {
            return Err(OpenError::OtherNetworkNamespace);
        }
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::GENERIC),
        )
        .map_err(io("netlink socket"))?;
        // The kernel is the only peer: connected to it (port 0), the socket refuses a
        // local process that sends forged records to its port.
        let kernel = SocketAddrNetlink::new(0, 0);
        rustix::net::bind(&fd, &kernel).map_err(io("bind"))?;
        rustix::net::connect(&fd, &kernel).map_err(io("connect"))?;
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(ANSWER_TIMEOUT),
        )
        .map_err(io("SO_RCVTIMEO"))?;
        // SO_RCVBUFFORCE passes net.core.rmem_max, with the CAP_NET_ADMIN registering
        // needs anyway; without it the capped SO_RCVBUF is the best there is.
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&fd, buffer_bytes).is_err() {
            rustix::net::sockopt::set_socket_recv_buffer_size(&fd, buffer_bytes)
                .map_err(io("SO_RCVBUF"))?;
        }
        let mut watch = ExitWatch {
            fd,
            family: 0,
            cpus: cpus.to_owned(),
            registered: false,
            buf: vec![0; RECV_BUFFER],
            early: Vec::new(),
            overruns: 0,
            undecoded: 0,
        };
        watch.family = watch.resolve_family()?;
        let request = watch.cpumask_request(
            TASKSTATS_CMD_ATTR_REGISTER_CPUMASK,
            NLM_F_REQUEST | NLM_F_ACK,
            SEQ_REGISTER,
        );
        match watch.ask(&request, SEQ_REGISTER, "register")? {
            Answer::Ack => watch.registered = true,
            Answer::Error(Errno::PERM) => return Err(OpenError::Permission),
            Answer::Error(Errno::INVAL) | Answer::Error(Errno::TOOBIG) => {
                return Err(OpenError::Refused {
                    cpus: cpus.to_owned(),
                })
            }
            Answer::Error(e) => return Err(io("register")(e)),
            Answer::Message(_) => {
                return Err(OpenError::Protocol {
                    step: "register",
                    detail: "a message where an acknowledgement was expected".into(),
                })
            }
        }
        Ok(watch)
    }

    /// The request to register (or deregister, by `attr`) this socket for the exits
    /// of its CPUs; the list is a NUL-terminated string attribute.
    fn cpumask_request(&self, attr: u16, flags: u16, seq: u32) -> Vec<u8> {
        let mut mask = self.cpus.as_bytes().to_vec();
        mask.push(0);
        let cmd = TASKSTATS_CMD_GET;
        genl_request(
            self.family,
            flags,
            seq,
            cmd,
            TASKSTATS_GENL_VERSION,
            attr,
            &mask,
        )
    }

    /// Asks the generic netlink controller for the TASKSTATS family's id.
    fn resolve_family(&mut self) -> Result<u16, OpenError> {
        let request = genl_request(
            GENL_ID_CTRL,
            NLM_F_REQUEST,
            SEQ_FAMILY,
            CTRL_CMD_GETFAMILY,
            1,
            CTRL_ATTR_FAMILY_NAME,
            TASKSTATS_GENL_NAME,
        );
        let step = "look up the TASKSTATS family";
        let reply = match self.ask(&request, SEQ_FAMILY, step)? {
            Answer::Message(reply) => reply,
            Answer::Error(Errno::NOENT) => return Err(OpenError::NotInKernel),
            Answer::Error(e) => {
                return Err(OpenError::Io {
                    step,
                    err: e.into(),
                })
            }
            Answer::Ack => {
                return Err(OpenError::Protocol {
                    step,
                    detail: "an acknowledgement without the family".into(),
                })
            }
        };
        let attrs = reply.get(NLMSG_HDRLEN + GENL_HDRLEN..).unwrap_or_default();
        Attrs::new(attrs)
            .map_while(Result::ok)
            .find(|&(kind, _)| kind == CTRL_ATTR_FAMILY_ID)
            .and_then(|(_, id)| Some(u16::from_ne_bytes(id.get(..2)?.try_into().ok()?)))
            .ok_or_else(|| OpenError::Protocol {
                step,
                detail: "no family id in the reply".into(),
            })
    }

    /// Sends `request` and waits for the kernel's answer to `seq`: an error message
    /// (0: acknowledged) or a message of the controller. Exit records that arrive
    /// first are kept for the first drain.
    fn ask(&mut self, request: &[u8], seq: u32, step: &'static str) -> Result<Answer, OpenError> {
        let io = |e: Errno| OpenError::Io {
            step,
            err: e.into(),
        };
        rustix::net::send(&self.fd, request, SendFlags::empty()).map_err(io)?;
        for _ in 0..DATAGRAMS_PER_ANSWER {
            let n = match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                Ok((n, _)) => n,
                Err(Errno::INTR) => continue,
                Err(Errno::NOBUFS) => {
                    self.overruns += 1;
                    continue;
                }
                Err(Errno::AGAIN) => {
                    return Err(OpenError::Protocol {
                        step,
                        detail: format!("no answer within {ANSWER_TIMEOUT:?}"),
                    })
                }
                Err(e) => return Err(io(e)),
            };
            let datagram = &self.buf[..n];
            for message in Messages::new(datagram).map_while(Result::ok) {
                let header = Header::read(message);
                if header.kind == self.family && self.family != 0 {
                    self.undecoded += decode_message(message, &mut self.early) as u64;
                } else if header.seq == seq && header.kind == NLMSG_ERROR {
                    let errno = message
                        .get(NLMSG_HDRLEN..NLMSG_HDRLEN + 4)
                        .and_then(|b| b.try_into().ok())
                        .map(i32::from_ne_bytes)
                        .ok_or_else(|| OpenError::Protocol {
                            step,
                            detail: "a short error message".into(),
                        })?;
                    return Ok(match errno {
                        0 => Answer::Ack,
                        e => Answer::Error(Errno::from_raw_os_error(e.saturating_neg())),
                    });
                } else if header.seq == seq && header.kind == GENL_ID_CTRL {
                    return Ok(Answer::Message(message.to_vec()));
                }
            }
        }
        Err(OpenError::Protocol {
            step,
            detail: format!("no answer among {DATAGRAMS_PER_ANSWER} datagrams"),
        })
    }

    /// Appends every exit record available now to `out`, without blocking (at most
    /// [`DATAGRAMS_PER_DRAIN`] datagrams a call). An overrun of the receive buffer is
    /// counted, not returned; any other receive error is.
    pub fn drain(&mut self, out: &mut Vec<TaskExit>) -> io::Result<()> {
        out.append(&mut self.early);
        for _ in 0..DATAGRAMS_PER_DRAIN {
            let flags = RecvFlags::DONTWAIT | RecvFlags::TRUNC;
            match rustix::net::recv(&self.fd, &mut self.buf[..], flags) {
                // TRUNC makes recv return the datagram's real length: one longer than
                // the buffer was cut, and is not decoded.
                Ok((_, len)) if len > self.buf.len() => self.undecoded += 1,
                Ok((n, _)) => {
                    self.undecoded += parse_datagram(&self.buf[..n], self.family, out) as u64;
                }
                Err(Errno::AGAIN) => return Ok(()),
                Err(Errno::INTR) => {}
                Err(Errno::NOBUFS) => self.overruns += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Times the receive buffer overflowed and the kernel dropped records (ENOBUFS),
    /// since opening. Each is at least one lost record.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Datagrams and records received that did not decode (cut, or lengths that do
    /// not add up), since opening. The kernel sends none such: a count here is a bug
    /// or a kernel this reader does not know.
    pub fn undecoded(&self) -> u64 {
        self.undecoded
    }
}

impl AsFd for ExitWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for ExitWatch {
    /// Deregisters, so the kernel stops building records for this port (closing alone
    /// leaves the registration until the kernel next fails to deliver to it). Not
    /// acknowledged and not waited for: a drop never blocks.
    fn drop(&mut self) {
        if !self.registered {
            return;
        }
        let request = self.cpumask_request(
            TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK,
            NLM_F_REQUEST,
            SEQ_DEREGISTER,
        );
        let _ = rustix::net::send(&self.fd, &request, SendFlags::DONTWAIT);
    }
}

/// Sequence numbers of this socket's requests.
const SEQ_FAMILY: u32 = 1;
const SEQ_REGISTER: u32 = 2;
const SEQ_DEREGISTER: u32 = 3;

/// The kernel's answer to a request.
#[derive(Debug)]
enum Answer {
    Ack,
    Error(Errno),
    Message(Vec<u8>),
}

/// Whether this process shares the network namespace of PID 1 (the host's, whenever
/// registering can succeed at all: it must run in the initial PID namespace). When it
/// cannot tell (no /proc), it assumes so.
fn in_host_network_namespace() -> bool {
    let ns = |path| rustix::fs::stat(path).ok().map(|s| (s.st_dev, s.st_ino));
    match (ns("/proc/self/ns/net"), ns("/proc/1/ns/net")) {
        (Some(own), Some(init)) => own == init,
        _ => true,
    }
}

/// A generic netlink request with one attribute.
fn genl_request(
    family: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
    attr: u16,
    payload: &[u8],
) -> Vec<u8> {
    let attr_len = NLA_HDRLEN + payload.len();
    let total = NLMSG_HDRLEN + GENL_HDRLEN + align4(attr_len);
    let mut msg = Vec::with_capacity(total);
    msg.extend_from_slice(&(total as u32).to_ne_bytes());
    msg.extend_from_slice(&family.to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    // Port 0: the kernel fills in this socket's own.
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[cmd, version, 0, 0]);
    msg.extend_from_slice(&(attr_len as u16).to_ne_bytes());
    msg.extend_from_slice(&attr.to_ne_bytes());
    msg.extend_from_slice(payload);
    msg.resize(total, 0);
    msg
}

/// Netlink lengths are padded to 4 bytes (NLMSG_ALIGN, NLA_ALIGN).
fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// A part of a datagram whose length did not add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Malformed;

/// The netlink messages of a datagram. Yields `Err` once and stops at a length that
/// is shorter than a header or runs past the datagram.
struct Messages<'a> {
    rest: &'a [u8],
}

impl<'a> Messages<'a> {
    fn new(datagram: &'a [u8]) -> Messages<'a> {
        Messages { rest: datagram }
    }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<&'a [u8], Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let len = self
            .rest
            .get(..4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize);
        match len {
            Some(len) if (NLMSG_HDRLEN..=self.rest.len()).contains(&len) => {
                let message = &self.rest[..len];
                self.rest = self.rest.get(align4(len)..).unwrap_or_default();
                Some(Ok(message))
            }
            _ => {
                self.rest = &[];
                Some(Err(Malformed))
            }
        }
    }
}

/// The fields of a netlink header this reader uses.
struct Header {
    kind: u16,
    seq: u32,
}

impl Header {
    /// Reads the header of a message [`Messages`] yielded (at least 16 bytes).
    fn read(message: &[u8]) -> Header {
        let u16_at = |at: usize| u16::from_ne_bytes([message[at], message[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_ne_bytes([
                message[at],
                message[at + 1],
                message[at + 2],
                message[at + 3],
            ])
        };
        Header {
            kind: u16_at(4),
            seq: u32_at(8),
        }
    }
}

/// The attributes in a run of bytes: (type without flag bits, payload). Yields `Err`
/// once and stops at a length shorter than the attribute header (a zero length would
/// otherwise never advance) or past the end.
struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    fn new(bytes: &'a [u8]) -> Attrs<'a> {
        Attrs { rest: bytes }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<(u16, &'a [u8]), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let header = self.rest.get(..NLA_HDRLEN).map(|b| {
            (
                u16::from_ne_bytes([b[0], b[1]]) as usize,
                u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK,
            )
        });
        match header {
            Some((len, kind)) if (NLA_HDRLEN..=self.rest.len()).contains(&len) => {
                let payload = &self.rest[NLA_HDRLEN..len];
                self.rest = self.rest.get(align4(len)..).unwrap_or_default();
                Some(Ok((kind, payload)))
            }
            _ => {
                self.rest = &[];
                Some(Err(Malformed))
            }
        }
    }
}

/// Decodes one datagram as received from a socket registered for exit records:
/// appends a [`TaskExit`] for every record of the taskstats `family` in it and returns
/// how many parts did not decode (messages, records or attributes whose lengths do not
/// add up; 0 for anything the kernel sends). Messages of other types are skipped.
/// Never panics, whatever the bytes.
pub fn parse_datagram(datagram: &[u8], family: u16, out: &mut Vec<TaskExit>) -> usize {
    let mut undecoded = 0;
    for message in Messages::new(datagram) {
        match message {
            Ok(m) if Header::read(m).kind == family => undecoded += decode_message(m, out),
            Ok(_) => {}
            Err(Malformed) => undecoded += 1,
        }
    }
    undecoded
}

/// Decodes one TASKSTATS_CMD_NEW message: AGGR_PID {PID, STATS}, then, when it ends a
/// process with threads, AGGR_TGID {TGID, STATS}. Padding attributes
/// (TASKSTATS_TYPE_NULL, on architectures that align the struct) and unknown ones are
/// skipped. Returns the parts that did not decode.
fn decode_message(message: &[u8], out: &mut Vec<TaskExit>) -> usize {
    let Some(genl) = message.get(NLMSG_HDRLEN..NLMSG_HDRLEN + GENL_HDRLEN) else {
        return 1;
    };
    if genl[0] != TASKSTATS_CMD_NEW {
        return 0;
    }
    let mut undecoded = 0;
    // The record this message appended, which group totals that follow belong to.
    let mut record: Option<usize> = None;
    for attr in Attrs::new(&message[NLMSG_HDRLEN + GENL_HDRLEN..]) {
        let Ok((kind, nest)) = attr else {
            undecoded += 1;
            continue;
        };
        match kind {
            TASKSTATS_TYPE_AGGR_PID => match aggregate(nest, TASKSTATS_TYPE_PID) {
                Some((pid, stats)) => {
                    out.push(task_exit(pid, &stats));
                    record = Some(out.len() - 1);
                }
                None => undecoded += 1,
            },
            TASKSTATS_TYPE_AGGR_TGID => {
                let totals = aggregate(nest, TASKSTATS_TYPE_TGID);
                match (totals, record.and_then(|i| out.get_mut(i))) {
                    (Some((tgid, stats)), Some(thread))
                        if thread.tgid.is_none_or(|t| t == tgid) =>
                    {
                        add_group_totals(thread, tgid, &stats);
                    }
                    _ => undecoded += 1,
                }
            }
            _ => {}
        }
    }
    undecoded
}

/// The id (a PID or TGID attribute of type `id_kind`) and the stats of an AGGR_PID or
/// AGGR_TGID nest; `None` when either is missing or a length does not add up.
fn aggregate(nest: &[u8], id_kind: u16) -> Option<(u32, Stats<'_>)> {
    let mut id = None;
    let mut stats = None;
    for attr in Attrs::new(nest) {
        let (kind, payload) = attr.ok()?;
        if kind == id_kind {
            id = Some(u32::from_ne_bytes(payload.get(..4)?.try_into().ok()?));
        } else if kind == TASKSTATS_TYPE_STATS {
            stats = Some(Stats::new(payload)?);
        }
    }
    Some((id?, stats?))
}

/// A `struct taskstats` as received: read by field, each field only if the record
/// reaches its end and its version has it.
struct Stats<'a> {
    raw: &'a [u8],
    version: u16,
}

impl<'a> Stats<'a> {
    /// `None` when the record is too short to hold even its version.
    fn new(raw: &'a [u8]) -> Option<Stats<'a>> {
        let version = u16::from_ne_bytes(raw.get(..2)?.try_into().ok()?);
        Some(Stats { raw, version })
    }

    fn bytes<const N: usize>(&self, f: Field) -> Option<[u8; N]> {
        if self.version < f.since {
            return None;
        }
        self.raw.get(f.at..f.at.checked_add(N)?)?.try_into().ok()
    }

    fn u8(&self, f: Field) -> Option<u8> {
        self.bytes::<1>(f).map(|b| b[0])
    }

    fn u32(&self, f: Field) -> Option<u32> {
        self.bytes(f).map(u32::from_ne_bytes)
    }

    fn u64(&self, f: Field) -> Option<u64> {
        self.bytes(f).map(u64::from_ne_bytes)
    }

    fn comm(&self) -> Option<String> {
        let raw = self.bytes::<COMM_LEN>(field::COMM)?;
        let end = raw.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
        Some(String::from_utf8_lossy(&raw[..end]).into_owned())
    }
}

/// KiB (how the kernel gives hiwater_rss and hiwater_vm) to bytes.
fn kib(v: Option<u64>) -> Option<u64> {
    v?.checked_mul(1024)
}

/// The record of thread `pid`.
fn task_exit(pid: u32, s: &Stats<'_>) -> TaskExit {
    let flag = s.u8(field::FLAG);
    let has_flag = |bit: u8| flag.map(|f| f & bit != 0);
    let wait_status = s.u32(field::EXITCODE);
    TaskExit {
        pid,
        tgid: s.u32(field::TGID),
        ppid: s.u32(field::PPID),
        uid: s.u32(field::UID),
        gid: s.u32(field::GID),
        comm: s.comm(),
        version: s.version,
        wait_status,
        exit: wait_status.and_then(ExitStatus::from_wait_status),
        ends_process: has_flag(AGROUP).filter(|_| s.version >= VERSION_AGROUP),
        forked_without_exec: has_flag(AFORK),
        dumped_core: has_flag(ACORE),
        begin_time_unix: s
            .u64(field::BTIME64)
            .or_else(|| s.u32(field::BTIME).map(u64::from)),
        elapsed_us: s.u64(field::ETIME),
        process_elapsed_us: s.u64(field::TGETIME),
        utime_us: s.u64(field::UTIME),
        stime_us: s.u64(field::STIME),
        minflt: s.u64(field::MINFLT),
        majflt: s.u64(field::MAJFLT),
        hiwater_rss_bytes: kib(s.u64(field::HIWATER_RSS)),
        hiwater_vm_bytes: kib(s.u64(field::HIWATER_VM)),
        read_char: s.u64(field::READ_CHAR),
        write_char: s.u64(field::WRITE_CHAR),
        read_bytes: s.u64(field::READ_BYTES),
        write_bytes: s.u64(field::WRITE_BYTES),
        cancelled_write_bytes: s.u64(field::CANCELLED_WRITE_BYTES),
        nvcsw: s.u64(field::NVCSW),
        nivcsw: s.u64(field::NIVCSW),
        group: None,
    }
}

/// Puts the group's totals on the record of its last thread. Kernels that sum CPU
/// times and context switches there sum the threads' elapsed times too; older ones sum
/// delay accounting alone. An elapsed sum of zero, impossible for threads that ran,
/// means nothing else was summed: the totals are then None, not zero.
fn add_group_totals(thread: &mut TaskExit, tgid: u32, s: &Stats<'_>) {
    thread.tgid = Some(tgid);
    thread.ends_process = Some(true);
    let summed = s.u64(field::ETIME).is_some_and(|e| e > 0);
    let sum = |f| s.u64(f).filter(|_| summed);
    thread.group = Some(GroupTotals {
        utime_us: sum(field::UTIME),
        stime_us: sum(field::STIME),
        nvcsw: sum(field::NVCSW),
        nivcsw: sum(field::NIVCSW),
    });
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::Instant;

    use proptest::prelude::*;

    use super::*;

    /// The family id the dev VM's kernel gave taskstats when the fixtures were recorded.
    const FAMILY: u16 = 31;

    /// Where the struct starts in a recorded single-record message: netlink and genl
    /// headers, the AGGR_PID nest's header, the PID attribute, the STATS header.
    const STATS_AT: usize = 16 + 4 + 4 + 8 + 4;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/taskstats/{name}.bin",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn decode(datagram: &[u8]) -> (Vec<TaskExit>, usize) {
        let mut out = Vec::new();
        let undecoded = parse_datagram(datagram, FAMILY, &mut out);
        (out, undecoded)
    }

    /// The one record of a recorded datagram that decodes cleanly.
    fn one(name: &str) -> TaskExit {
        let (mut records, undecoded) = decode(&fixture(name));
        assert_eq!((records.len(), undecoded), (1, 0), "{name}");
        records.remove(0)
    }

    fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut a = ((NLA_HDRLEN + payload.len()) as u16).to_ne_bytes().to_vec();
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(payload);
        a.resize(align4(a.len()), 0);
        a
    }

    /// A TASKSTATS_CMD_NEW message holding `attrs`.
    fn message(attrs: &[u8]) -> Vec<u8> {
        let mut m = genl_request(FAMILY, 0, 0, TASKSTATS_CMD_NEW, 1, 0, &[]);
        m.truncate(NLMSG_HDRLEN + GENL_HDRLEN);
        m.extend_from_slice(attrs);
        let len = (m.len() as u32).to_ne_bytes();
        m[..4].copy_from_slice(&len);
        m
    }

    /// The record of `pid` with the struct `stats`, framed as the kernel frames it.
    fn record(pid: u32, stats: &[u8]) -> Vec<u8> {
        let nest = [
            attr(TASKSTATS_TYPE_PID, &pid.to_ne_bytes()),
            attr(TASKSTATS_TYPE_STATS, stats),
        ]
        .concat();
        message(&attr(TASKSTATS_TYPE_AGGR_PID, &nest))
    }

    /// The struct of a recorded record, as version `version`, cut to `len` bytes.
    fn stats_as(name: &str, version: u16, len: usize) -> Vec<u8> {
        let mut stats = fixture(name)[STATS_AT..].to_vec();
        stats[..2].copy_from_slice(&version.to_ne_bytes());
        stats.truncate(len);
        stats
    }

    #[test]
    fn framing_rebuilds_a_recorded_datagram_byte_for_byte() {
        let sleep = fixture("sleep");
        let mut rebuilt = record(21865, &sleep[STATS_AT..]);
        // The kernel numbers its records per CPU.
        rebuilt[8..12].copy_from_slice(&sleep[8..12]);
        assert!(rebuilt == sleep, "the framing differs from the kernel's");
    }

    #[test]
    fn recorded_single_threaded_exits() {
        let t = one("true");
        assert_eq!(
            (t.pid, t.tgid, t.ppid, t.uid, t.gid),
            (21862, Some(21862), Some(21820), Some(0), Some(0))
        );
        assert_eq!(t.comm.as_deref(), Some("true"));
        assert_eq!(t.version, 16);
        assert_eq!(t.exit, Some(ExitStatus::Exited { code: 0 }));
        assert_eq!(t.ends_process, Some(true));
        assert_eq!(t.group, None);
        assert_eq!(t.forked_without_exec, Some(false));
        assert_eq!(t.dumped_core, Some(false));
        assert_eq!(t.begin_time_unix, Some(1_796_171_487));
        assert_eq!(
            (t.elapsed_us, t.process_elapsed_us),
            (Some(2352), Some(2352))
        );
        assert_eq!((t.utime_us, t.stime_us), (Some(3921), Some(0)));
        assert_eq!(t.process_cpu_us(), Some(3921));
        assert_eq!(t.minflt, Some(115));
        assert_eq!(t.hiwater_rss_bytes, Some(1076 << 10));
        assert_eq!(t.hiwater_vm_bytes, Some(2404 << 10));
        assert_eq!((t.nvcsw, t.nivcsw), (Some(0), Some(2)));

        let dd = one("dd");
        assert_eq!(dd.comm.as_deref(), Some("dd"));
        assert!(dd.hiwater_rss_bytes.unwrap() >= 300 << 20);
        assert_eq!((dd.minflt, dd.stime_us), (Some(76945), Some(675_984)));
        // Its 300 MiB went through read(2) and write(2), not storage.
        assert_eq!(
            (dd.read_char, dd.write_char),
            (Some(314_583_040), Some(300 << 20))
        );
        assert_eq!((dd.read_bytes, dd.write_bytes), (Some(0), Some(0)));

        let sleep = one("sleep");
        assert_eq!(sleep.elapsed_us, Some(304_189));

        let exit3 = one("exit3");
        assert_eq!(exit3.wait_status, Some(0x300));
        assert_eq!(exit3.exit, Some(ExitStatus::Exited { code: 3 }));

        let killed = one("sigkill");
        assert_eq!(killed.wait_status, Some(9));
        assert_eq!(
            killed.exit,
            Some(ExitStatus::Killed {
                signal: 9,
                core_dumped: false
            })
        );

        let child = one("subshell-child");
        let parent = one("subshell-parent");
        assert_eq!(child.ppid, Some(parent.pid));
        assert_eq!(child.forked_without_exec, Some(true));
        assert_eq!(child.exit, Some(ExitStatus::Exited { code: 4 }));
        assert_eq!(parent.forked_without_exec, Some(false));
    }

    #[test]
    fn recorded_threads_then_the_exit_that_ends_their_process() {
        for name in ["thread-a", "thread-b"] {
            let t = one(name);
            assert_eq!(t.tgid, Some(21880));
            assert_ne!(t.pid, 21880);
            assert_eq!(t.ends_process, Some(false), "{name}");
            assert_eq!((t.group.as_ref(), t.process_cpu_us()), (None, None));
            // The address space's peak is shared; its lifetime is the process's.
            assert_eq!(t.hiwater_rss_bytes, Some(13456 << 10));
            assert!(t.process_elapsed_us > t.elapsed_us);
        }
        let end = one("threads-end");
        assert_eq!((end.pid, end.tgid), (21880, Some(21880)));
        assert_eq!(end.ends_process, Some(true));
        assert_eq!(end.exit, Some(ExitStatus::Exited { code: 5 }));
        assert_eq!(
            end.group,
            Some(GroupTotals {
                utime_us: Some(72_000),
                stime_us: Some(12_000),
                nvcsw: Some(8),
                nivcsw: Some(23),
            })
        );
        assert_eq!(end.process_cpu_us(), Some(84_000));
        // The aggregate's own zeros (comm, pid, faults, hiwater) are not taken.
        assert_eq!(end.comm.as_deref(), Some("python3"));
        assert_eq!(end.minflt, Some(1998));
    }

    #[test]
    fn older_and_shorter_structs_leave_the_later_fields_none() {
        // Version 9 ends before ac_btime64 (v10) and ac_tgid (v12).
        let (v9, bad) = decode(&record(7, &stats_as("sleep", 9, 344)));
        let v9 = &v9[0];
        assert_eq!(bad, 0);
        assert_eq!(v9.version, 9);
        assert_eq!(
            v9.begin_time_unix,
            Some(1_796_171_488),
            "from the 32-bit ac_btime"
        );
        assert_eq!(
            (v9.tgid, v9.process_elapsed_us, v9.ends_process),
            (None, None, None)
        );
        assert_eq!(v9.hiwater_rss_bytes, Some(1556 << 10));
        assert_eq!(v9.nivcsw, Some(1));

        // A version-16 record that claims fields it is too short to hold: none read.
        let short = &decode(&record(7, &stats_as("sleep", 16, 150))).0[0];
        assert_eq!(short.ppid, Some(21820));
        assert_eq!(short.comm.as_deref(), Some("sleep"));
        assert_eq!(
            (short.elapsed_us, short.utime_us, short.hiwater_rss_bytes),
            (None, None, None)
        );
        // A length past the struct this reader knows reads what it knows.
        let mut long = fixture("sleep")[STATS_AT..].to_vec();
        long.resize(4096, 0xff);
        assert_eq!(decode(&record(21865, &long)).0[0], one("sleep"));

        // A short record with a high version is not read past its end either.
        let cut = &decode(&record(7, &stats_as("sleep", 16, 372))).0[0];
        assert_eq!((cut.tgid, cut.process_elapsed_us), (Some(21865), None));

        // Version 1 had another layout: nothing but the version and the id is read.
        let v1 = &decode(&record(7, &stats_as("sleep", 1, 560))).0[0];
        assert_eq!((v1.pid, v1.version), (7, 1));
        assert_eq!(
            (v1.comm.as_ref(), v1.exit, v1.elapsed_us),
            (None, None, None)
        );

        // Too short for a version: the record does not decode.
        assert_eq!(decode(&record(7, &[16])), (vec![], 1));
    }

    #[test]
    fn group_totals_of_a_kernel_that_sums_delays_only_are_none() {
        let end = fixture("threads-end");
        let tgid_stats = 596 + 4 + 8 + 4;
        let mut old = end.clone();
        // Zero the aggregate's elapsed sum, as kernels that sum delay accounting alone
        // leave it.
        old[tgid_stats + 144..tgid_stats + 152].fill(0);
        let r = &decode(&old).0[0];
        assert_eq!(r.ends_process, Some(true));
        let none = GroupTotals {
            utime_us: None,
            stime_us: None,
            nvcsw: None,
            nivcsw: None,
        };
        assert_eq!(r.group, Some(none));
        assert_eq!(r.process_cpu_us(), None);
    }

    #[test]
    fn hostile_datagrams_decode_what_they_can_and_count_the_rest() {
        let sleep = fixture("sleep");
        let end = fixture("threads-end");
        let set = |bytes: &[u8], at: usize, value: &[u8]| {
            let mut b = bytes.to_vec();
            b[at..at + value.len()].copy_from_slice(value);
            b
        };
        let cases: Vec<(&str, Vec<u8>, usize, usize)> = vec![
            ("empty", vec![], 0, 0),
            ("cut inside the header", sleep[..10].to_vec(), 0, 1),
            ("cut inside the struct", sleep[..300].to_vec(), 0, 1),
            (
                "message length 0",
                set(&sleep, 0, &0u32.to_ne_bytes()),
                0,
                1,
            ),
            (
                "message length 8",
                set(&sleep, 0, &8u32.to_ne_bytes()),
                0,
                1,
            ),
            (
                "message length past the end",
                set(&sleep, 0, &u32::MAX.to_ne_bytes()),
                0,
                1,
            ),
            (
                "no genl header",
                set(&sleep[..16], 0, &16u32.to_ne_bytes()),
                0,
                1,
            ),
            (
                "zero-length attribute",
                set(&sleep, 20, &0u16.to_ne_bytes()),
                0,
                1,
            ),
            (
                "attribute length 2",
                set(&sleep, 20, &2u16.to_ne_bytes()),
                0,
                1,
            ),
            (
                "nest past the message",
                set(&sleep, 20, &1000u16.to_ne_bytes()),
                0,
                1,
            ),
            (
                "inner length past the nest",
                set(&sleep, 32, &600u16.to_ne_bytes()),
                0,
                1,
            ),
            (
                "zero-length inner attribute",
                set(&sleep, 24, &0u16.to_ne_bytes()),
                0,
                1,
            ),
            (
                "PID attribute too short",
                set(&sleep, 24, &5u16.to_ne_bytes()),
                0,
                1,
            ),
            (
                "another family",
                set(&sleep, 4, &(FAMILY + 1).to_ne_bytes()),
                0,
                0,
            ),
            (
                "a request, not a record",
                set(&sleep, 16, &[TASKSTATS_CMD_GET]),
                0,
                0,
            ),
            (
                "two messages in one datagram",
                [&sleep[..], &end[..]].concat(),
                2,
                0,
            ),
            (
                "a good message, then garbage",
                [&sleep[..], &[0xff; 7][..]].concat(),
                1,
                1,
            ),
            // The totals of another process do not land on this one.
            (
                "totals of another TGID",
                set(&end, 596 + 4 + 4, &1u32.to_ne_bytes()),
                1,
                1,
            ),
        ];
        for (what, bytes, records, undecoded) in cases {
            let (out, bad) = decode(&bytes);
            assert_eq!((out.len(), bad), (records, undecoded), "{what}");
        }
        // Zero-payload padding attributes (TASKSTATS_TYPE_NULL), before the nest as
        // older kernels put them and inside it as nla_reserve_64bit does.
        let null = attr(6, &[]);
        let stats = &sleep[STATS_AT..];
        let nest = [
            attr(TASKSTATS_TYPE_PID, &21865u32.to_ne_bytes()),
            null.clone(),
            attr(TASKSTATS_TYPE_STATS, stats),
        ]
        .concat();
        let padded = message(&[null, attr(TASKSTATS_TYPE_AGGR_PID, &nest)].concat());
        assert_eq!(decode(&padded), (vec![one("sleep")], 0));
        // Totals with no thread record before them.
        let alone = message(&end[596..]);
        assert_eq!(decode(&alone), (vec![], 1));
        let (out, _) = decode(&set(&end, 596 + 4 + 4, &1u32.to_ne_bytes()));
        assert_eq!(out[0].group, None);
    }

    #[test]
    fn wait_statuses() {
        let exited = |code| Some(ExitStatus::Exited { code });
        let killed = |signal, core_dumped| {
            Some(ExitStatus::Killed {
                signal,
                core_dumped,
            })
        };
        assert_eq!(ExitStatus::from_wait_status(0), exited(0));
        assert_eq!(ExitStatus::from_wait_status(0xff00), exited(255));
        assert_eq!(ExitStatus::from_wait_status(9), killed(9, false));
        assert_eq!(ExitStatus::from_wait_status(0x86), killed(6, true));
        assert_eq!(ExitStatus::from_wait_status(0x137f), None, "stopped");
        assert_eq!(ExitStatus::from_wait_status(0x1_0000), None);
    }

    /// The most records `bytes` can hold: each takes at least 18 bytes (a nest header,
    /// an id attribute, a stats attribute holding a version) after the 20 of the
    /// message's headers.
    fn most_records(bytes: &[u8]) -> usize {
        bytes.len() / 18
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let (out, _) = decode(&bytes);
            prop_assert!(out.len() <= most_records(&bytes));
            // With the family's type, so the bytes reach the record decoder.
            let mut typed = bytes.clone();
            if typed.len() >= 6 {
                typed[4..6].copy_from_slice(&FAMILY.to_ne_bytes());
            }
            let (out, _) = decode(&typed);
            prop_assert!(out.len() <= most_records(&typed));
        }

        #[test]
        fn mutated_records_never_panic(
            edits in proptest::collection::vec((0usize..1172, any::<u8>()), 1..16),
            cut in 0usize..1172,
        ) {
            let mut bytes = fixture("threads-end");
            for (at, b) in edits {
                bytes[at] = b;
            }
            let cut = &bytes[..cut.max(1)];
            let (out, _) = decode(cut);
            prop_assert!(out.len() <= most_records(cut));
            let (out, _) = decode(&bytes);
            prop_assert!(out.len() <= most_records(&bytes));
        }
    }

    /// Set in the environment of this test binary re-run as a child of a live test.
    const CHILD_ENV: &str = "SYSLENS_TASKSTATS_CHILD";

    /// An open watch on every online CPU, or the reason there can be none here.
    fn live_watch() -> Option<ExitWatch> {
        live_watch_with(DEFAULT_BUFFER_BYTES)
    }

    /// As [`live_watch`], with a receive buffer of `buffer_bytes`.
    fn live_watch_with(buffer_bytes: usize) -> Option<ExitWatch> {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: registering for exit records needs CAP_NET_ADMIN: run as root");
            return None;
        }
        let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
        match ExitWatch::open_with_buffer(online.trim(), buffer_bytes) {
            Ok(w) => Some(w),
            Err(e @ (OpenError::Io { .. } | OpenError::Protocol { .. })) => panic!("{e}"),
            Err(e) => {
                eprintln!("SKIPPED: {e}");
                None
            }
        }
    }

    /// Drains `watch` until `done` holds of what it gave, for at most 5 s.
    fn drain_until(watch: &mut ExitWatch, done: impl Fn(&[TaskExit]) -> bool) -> Vec<TaskExit> {
        let started = Instant::now();
        let mut seen = Vec::new();
        while !done(&seen) && started.elapsed() < Duration::from_secs(5) {
            watch.drain(&mut seen).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        seen
    }

    /// This test binary run again as a child that runs only `as_child`, in `role`.
    fn child(role: &str) -> Command {
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.args([
            "--exact",
            "taskstats::tests::as_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_ENV, role)
        .stdout(Stdio::null());
        c
    }

    /// The child of the live tests that need another process: `threads` exits with
    /// status 5 from a process with threads; `unprivileged` checks what opening says
    /// without CAP_NET_ADMIN.
    #[test]
    #[ignore = "run by the live tests as their child"]
    fn as_child() {
        match std::env::var(CHILD_ENV).as_deref() {
            Ok("threads") => {
                let spin = std::thread::Builder::new().name("spin".into());
                spin.spawn(|| {
                    let t = Instant::now();
                    while t.elapsed() < Duration::from_millis(60) {
                        std::hint::black_box(());
                    }
                })
                .unwrap()
                .join()
                .unwrap();
                let parked = std::thread::Builder::new().name("parked".into());
                parked
                    .spawn(|| loop {
                        std::thread::park()
                    })
                    .unwrap();
                std::thread::sleep(Duration::from_millis(100));
                std::process::exit(5);
            }
            Ok("unprivileged") => {
                let err = ExitWatch::open("0").unwrap_err();
                assert!(matches!(err, OpenError::Permission), "{err:?}");
                assert!(err.to_string().contains("CAP_NET_ADMIN"), "{err}");
            }
            _ => eprintln!("SKIPPED: runs only as the child of a live test"),
        }
    }

    #[test]
    fn live_exits_of_dd_sleep_an_exit_code_and_a_sigkill() {
        let Some(mut watch) = live_watch() else {
            return;
        };
        let sh = |script: &str| {
            Command::new("sh")
                .args(["-c", script])
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut children = [
            sh("exec dd if=/dev/zero of=/dev/null bs=300M count=1"),
            sh("exec sleep 0.3"),
            sh("exit 3"),
            sh("kill -KILL $$"),
        ];
        let ids: [u32; 4] = children.each_ref().map(|c| c.id());
        for c in &mut children {
            c.wait().unwrap();
        }
        let seen = drain_until(&mut watch, |s| {
            ids.iter().all(|id| s.iter().any(|e| e.pid == *id))
        });
        let [dd, sleep, exit3, killed] = ids.map(|id| {
            seen.iter()
                .find(|e| e.pid == id)
                .unwrap_or_else(|| panic!("no record of {id} among {}", seen.len()))
        });
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        for e in [dd, sleep, exit3, killed] {
            assert_eq!(e.ppid, Some(std::process::id()));
            assert_eq!((e.tgid, e.ends_process), (Some(e.pid), Some(true)));
            assert_eq!(e.uid, Some(rustix::process::getuid().as_raw()));
            let began = e.begin_time_unix.unwrap();
            assert!(
                (now - 60..=now).contains(&began),
                "began {began}, now {now}"
            );
        }
        assert_eq!(dd.comm.as_deref(), Some("dd"));
        assert_eq!(dd.exit, Some(ExitStatus::Exited { code: 0 }));
        let peak = dd.hiwater_rss_bytes.unwrap();
        assert!(peak >= 300 << 20, "dd peaked at {peak} bytes");
        assert_eq!(dd.write_char, Some(300 << 20));
        assert_eq!(sleep.comm.as_deref(), Some("sleep"));
        assert_eq!(sleep.exit, Some(ExitStatus::Exited { code: 0 }));
        let lived = sleep.elapsed_us.unwrap();
        assert!(
            (300_000..=1_000_000).contains(&lived),
            "sleep 0.3 lived {lived} us"
        );
        assert_eq!(exit3.exit, Some(ExitStatus::Exited { code: 3 }));
        let sigkill = ExitStatus::Killed {
            signal: 9,
            core_dumped: false,
        };
        assert_eq!(killed.exit, Some(sigkill));
        assert_eq!(watch.undecoded(), 0);
        eprintln!(
            "dd: peak RSS {} MiB, {} minor faults, {} ms system CPU, lived {} ms; \
             sleep 0.3 lived {} ms; {} records seen, {} overruns",
            peak >> 20,
            dd.minflt.unwrap(),
            dd.stime_us.unwrap() / 1000,
            dd.elapsed_us.unwrap() / 1000,
            lived / 1000,
            seen.len(),
            watch.overruns()
        );
    }

    #[test]
    fn live_a_process_with_threads_ends_with_the_group_totals() {
        let Some(mut watch) = live_watch() else {
            return;
        };
        let mut c = child("threads").stderr(Stdio::null()).spawn().unwrap();
        let tgid = c.id();
        assert_eq!(c.wait().unwrap().code(), Some(5));
        let seen = drain_until(&mut watch, |s| {
            s.iter()
                .any(|e| e.tgid == Some(tgid) && e.ends_process == Some(true))
        });
        let threads: Vec<&TaskExit> = seen.iter().filter(|e| e.tgid == Some(tgid)).collect();
        let ends: Vec<&&TaskExit> = threads
            .iter()
            .filter(|e| e.ends_process == Some(true))
            .collect();
        assert_eq!(ends.len(), 1, "{threads:#?}");
        let end = ends[0];
        let by_name = |name: &str| {
            threads
                .iter()
                .find(|e| e.comm.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no thread {name}: {threads:#?}"))
        };
        let spin = by_name("spin");
        // It returned and was joined: a thread's own exit, with status 0.
        assert_eq!(
            (spin.ends_process, spin.exit),
            (Some(false), Some(ExitStatus::Exited { code: 0 }))
        );
        // Killed by the group's exit, it carries the group's status.
        assert_eq!(by_name("parked").exit, Some(ExitStatus::Exited { code: 5 }));
        assert_eq!(end.exit, Some(ExitStatus::Exited { code: 5 }));
        assert!(end.process_elapsed_us.unwrap() >= 160_000, "{end:#?}");

        // The totals are the sums of every thread's record (each thread's share is
        // taken just before its record, so a tick may fall between).
        let group = end.group.as_ref().unwrap();
        let total = end.process_cpu_us().unwrap();
        let sum: u64 = threads
            .iter()
            .map(|e| e.utime_us.unwrap() + e.stime_us.unwrap())
            .sum();
        let slack = 4_000 * threads.len() as u64;
        assert!(
            total <= sum && sum - total <= slack,
            "totals {total} us, records {sum} us"
        );
        let own = end.utime_us.unwrap() + end.stime_us.unwrap();
        assert!(
            total > own,
            "the 60 ms spin is in the totals: {total} vs {own}"
        );
        let switches: u64 = threads.iter().map(|e| e.nvcsw.unwrap()).sum();
        assert!(group.nvcsw.unwrap() <= switches);
        eprintln!(
            "{} thread records; totals {total} us CPU, the last thread's own {own} us",
            threads.len()
        );
    }

    #[test]
    fn live_opening_without_cap_net_admin_says_what_it_needs() {
        if !rustix::process::geteuid().is_root() {
            let err = ExitWatch::open("0").unwrap_err();
            assert!(matches!(err, OpenError::Permission), "{err:?}");
            return;
        }
        let out = match child("unprivileged").uid(65534).gid(65534).output() {
            Ok(out) => out,
            // The checkout may sit below a directory nobody cannot enter (mktemp -d).
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                eprintln!("SKIPPED: nobody cannot run the test binary here: {e}");
                return;
            }
            Err(e) => panic!("run the test binary as nobody: {e}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "as nobody: {stderr}");
    }

    #[test]
    fn live_records_forged_by_a_local_process_are_refused() {
        let Some(mut watch) = live_watch() else {
            return;
        };
        let addr = rustix::net::getsockname(&watch).unwrap();
        let port = SocketAddrNetlink::try_from(addr).unwrap().pid();
        let forger = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::GENERIC),
        )
        .unwrap();
        let mut forged = fixture("sigkill");
        forged[4..6].copy_from_slice(&watch.family.to_ne_bytes());
        let fake_pid = u32::MAX - 1;
        forged[28..32].copy_from_slice(&fake_pid.to_ne_bytes());
        let to = SocketAddrNetlink::new(port, 0);
        let sent = rustix::net::sendto(&forger, &forged, SendFlags::empty(), &to);
        assert_eq!(sent, Err(Errno::CONNREFUSED));
        std::thread::sleep(Duration::from_millis(50));
        let mut seen = Vec::new();
        watch.drain(&mut seen).unwrap();
        assert!(seen.iter().all(|e| e.pid != fake_pid));
    }

    #[test]
    fn live_dropping_the_watch_deregisters_its_port() {
        let Some(watch) = live_watch() else { return };
        let addr = rustix::net::getsockname(&watch).unwrap();
        let port = SocketAddrNetlink::try_from(addr).unwrap().pid();
        drop(watch);
        // A socket that takes the freed port would get the records of a registration
        // left behind.
        let heir = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            Some(netlink::GENERIC),
        )
        .unwrap();
        rustix::net::bind(&heir, &SocketAddrNetlink::new(port, 0)).unwrap();
        thread_exits(10);
        Command::new("true").status().unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let mut buf = [0u8; 4096];
        let got = rustix::net::recv(&heir, &mut buf[..], RecvFlags::DONTWAIT);
        assert_eq!(got.map(|(n, _)| n), Err(Errno::AGAIN));
    }

    /// Exits of short-lived threads of this process: `n` spawned and joined one by one.
    fn thread_exits(n: usize) -> Duration {
        let started = Instant::now();
        for _ in 0..n {
            std::thread::spawn(|| {}).join().unwrap();
        }
        started.elapsed()
    }

    fn ours(seen: &[TaskExit]) -> usize {
        let me = std::process::id();
        seen.iter()
            .filter(|e| e.tgid == Some(me) && e.pid != me)
            .count()
    }

    #[test]
    fn live_a_full_receive_buffer_is_counted_not_silent() {
        // The kernel's smallest receive buffer holds a record or two.
        let Some(mut watch) = live_watch_with(1) else {
            return;
        };
        thread_exits(64);
        let mut seen = Vec::new();
        watch.drain(&mut seen).unwrap();
        assert!(watch.overruns() >= 1, "{} records, no overrun", seen.len());
        assert!(ours(&seen) < 64);
    }

    #[test]
    fn live_the_default_buffer_keeps_a_burst_of_1000_exits() {
        let without = thread_exits(1000);
        let Some(mut watch) = live_watch() else {
            return;
        };
        let mut seen = Vec::new();
        watch.drain(&mut seen).unwrap();
        seen.clear();
        let with = thread_exits(1000);
        let started = Instant::now();
        watch.drain(&mut seen).unwrap();
        let drained = started.elapsed();
        assert_eq!(watch.overruns(), 0);
        assert_eq!(ours(&seen), 1000);
        eprintln!(
            "drained {} records in {drained:?}: {:.2} us each; a thread spawn and join \
             took {:.1} us without a listener, {:.1} us with",
            seen.len(),
            drained.as_secs_f64() * 1e6 / seen.len() as f64,
            without.as_secs_f64() * 1e3,
            with.as_secs_f64() * 1e3,
        );
    }
}
