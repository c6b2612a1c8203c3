//! /proc/PID/status and /proc/PID/task/TID/status.

use serde::Serialize;

use crate::missing::{Missing, Val};
use crate::parse::{kb_as_bytes, key_value, lines, u64_dec, u64_hex, InlineStr};

/// What /proc/PID/status says, in bytes where the kernel says kB.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// Name: the command name, as status escapes it (`\n` for a newline).
    pub name: Val<InlineStr<64>>,
    /// State: the letter only (R, S, D, Z, T, t, X, I).
    pub state: Val<u8>,
    /// PPid: the parent's pid.
    pub ppid: Val<u64>,
    /// The real uid (first Uid column).
    pub uid_real: Val<u64>,
    /// The effective uid (second Uid column).
    pub uid_effective: Val<u64>,
    /// VmPeak: the largest virtual size so far.
    pub vm_peak: Val<u64>,
    /// VmSize: the virtual size now.
    pub vm_size: Val<u64>,
    /// VmHWM: the largest RSS so far.
    pub vm_hwm: Val<u64>,
    /// VmRSS: resident now (RssAnon + RssFile + RssShmem).
    pub vm_rss: Val<u64>,
    /// RssAnon: resident anonymous memory.
    pub rss_anon: Val<u64>,
    /// RssFile: resident file-backed memory.
    pub rss_file: Val<u64>,
    /// RssShmem: resident shared memory (shmem, tmpfs, SysV).
    pub rss_shmem: Val<u64>,
    /// VmSwap: anonymous memory swapped out.
    pub vm_swap: Val<u64>,
    /// Memory locked with mlock (VmLck), counted against RLIMIT_MEMLOCK.
    pub vm_lck: Val<u64>,
    /// Threads: the thread count.
    pub threads: Val<u64>,
    /// Signals pending for the whole process (shared by all threads).
    pub shd_pnd: Val<u64>,
    /// Signals pending for this thread only.
    pub sig_pnd: Val<u64>,
    /// Signals blocked by this thread (per thread).
    pub sig_blk: Val<u64>,
    /// Ignored signals (per process).
    pub sig_ign: Val<u64>,
    /// Caught signals (per process).
    pub sig_cgt: Val<u64>,
    /// CapEff: the effective capability set, one bit per capability.
    pub cap_eff: Val<u64>,
    /// voluntary_ctxt_switches: times the task gave up the CPU (it blocked).
    pub voluntary_ctxt_switches: Val<u64>,
    /// nonvoluntary_ctxt_switches: times the scheduler took the CPU away.
    pub nonvoluntary_ctxt_switches: Val<u64>,
    /// Cpus_allowed_list: the CPUs the task may run on, such as `0-3,6`.
    pub cpus_allowed_list: Val<InlineStr<64>>,
    /// The pid in the process's own (innermost) PID namespace: NSpid's last entry.
    pub ns_pid: Val<u64>,
    /// How many PID namespaces see the process (NSpid's entries; 1 on the host's).
    pub ns_levels: Val<u64>,
}

fn absent<T>(field: &'static str) -> Val<T> {
    Err(Missing::not_in_kernel(field))
}

impl Status {
    /// Parses status text. Fields the text lacks are missing; a process with no
    /// address space (kernel thread, zombie) has its memory fields marked as such.
    pub fn parse(buf: &[u8]) -> Status {
        let mut s = Status {
            name: absent("Name"),
            state: absent("State"),
            ppid: absent("PPid"),
            uid_real: absent("Uid"),
            uid_effective: absent("Uid"),
            vm_peak: absent("VmPeak"),
            vm_size: absent("VmSize"),
            vm_hwm: absent("VmHWM"),
            vm_rss: absent("VmRSS"),
            rss_anon: absent("RssAnon"),
            rss_file: absent("RssFile"),
            rss_shmem: absent("RssShmem"),
            vm_swap: absent("VmSwap"),
            vm_lck: absent("VmLck"),
            threads: absent("Threads"),
            shd_pnd: absent("ShdPnd"),
            sig_pnd: absent("SigPnd"),
            sig_blk: absent("SigBlk"),
            sig_ign: absent("SigIgn"),
            sig_cgt: absent("SigCgt"),
            cap_eff: absent("CapEff"),
            voluntary_ctxt_switches: absent("voluntary_ctxt_switches"),
            nonvoluntary_ctxt_switches: absent("nonvoluntary_ctxt_switches"),
            cpus_allowed_list: absent("Cpus_allowed_list"),
            ns_pid: absent("NSpid"),
            ns_levels: absent("NSpid"),
        };
        for line in lines(buf) {
            let Some((key, value)) = key_value(line) else {
                continue;
            };
            let slot = match key {
                b"Name" => {
                    s.name = Ok(InlineStr::new(value));
                    continue;
                }
                b"State" => {
                    s.state = value
                        .first()
                        .copied()
                        .ok_or_else(|| Missing::malformed("status", "empty State"));
                    continue;
                }
                b"Cpus_allowed_list" => {
                    s.cpus_allowed_list = Ok(InlineStr::new(value));
                    continue;
                }
                b"Uid" => {
                    let mut it = crate::parse::tokens(value);
                    s.uid_real = it.next().and_then(u64_dec).ok_or_else(|| bad("Uid"));
                    s.uid_effective = it.next().and_then(u64_dec).ok_or_else(|| bad("Uid"));
                    continue;
                }
                b"NSpid" => {
                    let (mut levels, mut last) = (0u64, None);
                    for t in crate::parse::tokens(value) {
                        levels += 1;
                        last = u64_dec(t);
                    }
                    s.ns_pid = last.ok_or_else(|| bad("NSpid"));
                    s.ns_levels = Ok(levels);
                    continue;
                }
                b"PPid" => (&mut s.ppid, Kind::Dec),
                b"VmPeak" => (&mut s.vm_peak, Kind::Kb),
                b"VmSize" => (&mut s.vm_size, Kind::Kb),
                b"VmHWM" => (&mut s.vm_hwm, Kind::Kb),
                b"VmRSS" => (&mut s.vm_rss, Kind::Kb),
                b"RssAnon" => (&mut s.rss_anon, Kind::Kb),
                b"RssFile" => (&mut s.rss_file, Kind::Kb),
                b"RssShmem" => (&mut s.rss_shmem, Kind::Kb),
                b"VmSwap" => (&mut s.vm_swap, Kind::Kb),
                b"VmLck" => (&mut s.vm_lck, Kind::Kb),
                b"Threads" => (&mut s.threads, Kind::Dec),
                b"ShdPnd" => (&mut s.shd_pnd, Kind::Hex),
                b"SigPnd" => (&mut s.sig_pnd, Kind::Hex),
                b"SigBlk" => (&mut s.sig_blk, Kind::Hex),
                b"SigIgn" => (&mut s.sig_ign, Kind::Hex),
                b"SigCgt" => (&mut s.sig_cgt, Kind::Hex),
                b"CapEff" => (&mut s.cap_eff, Kind::Hex),
                b"voluntary_ctxt_switches" => (&mut s.voluntary_ctxt_switches, Kind::Dec),
                b"nonvoluntary_ctxt_switches" => (&mut s.nonvoluntary_ctxt_switches, Kind::Dec),
                _ => continue,
            };
            let (field, kind) = slot;
            let parsed = match kind {
                Kind::Dec => u64_dec(value),
                Kind::Kb => kb_as_bytes(value),
                Kind::Hex => u64_hex(value),
            };
            *field = parsed.ok_or_else(|| bad_key(key));
        }
        if s.vm_size.is_err() && s.threads.is_ok() {
            let why = Missing::NotApplicable {
                why: "no user address space (kernel thread or zombie)",
            };
            for f in [
                &mut s.vm_peak,
                &mut s.vm_size,
                &mut s.vm_hwm,
                &mut s.vm_rss,
                &mut s.rss_anon,
                &mut s.rss_file,
                &mut s.rss_shmem,
                &mut s.vm_swap,
                &mut s.vm_lck,
            ] {
                *f = Err(why.clone());
            }
        }
        s
    }
}

enum Kind {
    Dec,
    Kb,
    Hex,
}

fn bad(field: &str) -> Missing {
    Missing::malformed("status", format!("bad {field}"))
}

fn bad_key(key: &[u8]) -> Missing {
    bad(&String::from_utf8_lossy(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"Name:\tsyslens\nState:\tS (sleeping)\nPPid:\t1\nUid:\t1000\t0\t0\t0\n\
VmPeak:\t   10000 kB\nVmSize:\t    9000 kB\nVmHWM:\t    5000 kB\nVmRSS:\t    4000 kB\n\
RssAnon:\t    3000 kB\nRssFile:\t     900 kB\nRssShmem:\t     100 kB\nVmSwap:\t       0 kB\n\
Threads:\t2\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000100\nSigBlk:\t0000000000000200\n\
SigIgn:\t0000000000004000\nSigCgt:\t0000000000000000\nCapEff:\t000001ffffffffff\n\
Cpus_allowed_list:\t0-1\nvoluntary_ctxt_switches:\t7\nnonvoluntary_ctxt_switches:\t3\n";

    #[test]
    fn parses_fields() {
        let s = Status::parse(SAMPLE);
        assert_eq!(s.name.unwrap().as_str(), "syslens");
        assert_eq!(s.state, Ok(b'S'));
        assert_eq!(s.uid_real, Ok(1000));
        assert_eq!(s.uid_effective, Ok(0));
        assert_eq!(s.vm_hwm, Ok(5000 * 1024));
        assert_eq!(s.shd_pnd, Ok(0x100));
        assert_eq!(s.sig_ign, Ok(0x4000));
        assert_eq!(s.cap_eff, Ok(0x1ff_ffff_ffff));
        assert_eq!(s.nonvoluntary_ctxt_switches, Ok(3));
        assert_eq!(s.cpus_allowed_list.unwrap().as_str(), "0-1");
    }

    #[test]
    fn issue_23_every_field_of_the_sample_has_its_value() {
        let mut text = SAMPLE.to_vec();
        text.extend_from_slice(b"VmLck:\t      16 kB\n");
        let s = Status::parse(&text);
        assert_eq!(s.ppid, Ok(1));
        assert_eq!((s.vm_peak, s.vm_size), (Ok(10000 << 10), Ok(9000 << 10)));
        assert_eq!(s.vm_rss, Ok(4000 << 10));
        assert_eq!(
            (s.rss_anon, s.rss_file, s.rss_shmem),
            (Ok(3000 << 10), Ok(900 << 10), Ok(100 << 10))
        );
        assert_eq!((s.vm_swap, s.vm_lck), (Ok(0), Ok(16 << 10)));
        assert_eq!(s.threads, Ok(2));
        assert_eq!((s.sig_pnd, s.sig_blk, s.sig_cgt), (Ok(0), Ok(0x200), Ok(0)));
        assert_eq!(s.voluntary_ctxt_switches, Ok(7));
        // Every field the sample lacks is missing, never a zero.
        assert_eq!(
            Status::parse(b"Name:\tx\n").sig_cgt.unwrap_err().kind(),
            "not_in_kernel"
        );
    }

    #[test]
    fn issue_15_nspid_gives_the_pid_inside_each_namespace() {
        let s = Status::parse(b"Name:\tsleep\nNSpid:\t4242\t17\t1\n");
        assert_eq!(s.ns_pid.unwrap(), 1);
        assert_eq!(s.ns_levels.unwrap(), 3);
        let host = Status::parse(b"NSpid:\t812\n");
        assert_eq!((host.ns_pid.unwrap(), host.ns_levels.unwrap()), (812, 1));
        assert_eq!(
            Status::parse(b"Name:\tx\n").ns_pid.unwrap_err().kind(),
            "not_in_kernel"
        );
    }

    #[test]
    fn kernel_thread_has_no_memory() {
        let s = Status::parse(b"Name:\tkthreadd\nState:\tS (sleeping)\nThreads:\t1\n");
        assert_eq!(s.vm_rss.unwrap_err().kind(), "not_applicable");
    }

    #[test]
    fn garbage_is_malformed_not_zero() {
        let s = Status::parse(b"VmRSS:\tlots kB\n");
        assert_eq!(s.vm_rss.unwrap_err().kind(), "malformed");
        assert_eq!(s.vm_hwm.unwrap_err().kind(), "not_in_kernel");
    }
}
