//! `syslens watch` against the live kernel (issue 16): each kind provoked and matched
//! field by field.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// A running `syslens watch --json`, ready (its header printed) when started.
struct Watch {
    child: Child,
}

impl Watch {
    fn start(args: &[&str]) -> Watch {
        let mut child = syslens()
            .args(["--json", "watch", "--summary", "1"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The header (on stderr in JSON mode) is written after every source is open.
        let mut header = String::new();
        BufReader::new(child.stderr.as_mut().unwrap())
            .read_line(&mut header)
            .unwrap();
        assert!(header.starts_with("watching"), "watch said: {header}");
        Watch { child }
    }

    /// Ends the watch with SIGINT (as Ctrl-C) and returns its events.
    fn stop(mut self) -> Vec<Value> {
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: kill sends a signal to our own child, which is alive (not reaped).
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let mut text = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "watch exited {status}");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

fn pid_of(e: &Value, key: &str) -> i64 {
    e[key].as_i64().unwrap_or(-1)
}

/// The futex-wait summaries of process `pid`, and why its memory was refused if it was
/// (Yama's ptrace_scope 3 refuses even root: the words say so, and nothing is named).
fn futex_words_of(events: &[Value], pid: i64) -> (Vec<&Value>, Option<&str>) {
    let words: Vec<&Value> = of_kind(events, "futex-wait")
        .into_iter()
        .filter(|e| pid_of(e, "pid") == pid)
        .collect();
    let refused = words
        .iter()
        .find_map(|e| e.get("deadlock_unchecked"))
        .and_then(Value::as_str);
    (words, refused)
}

/// Every event has an RFC 3339 time, a catalogue concept and a kind.
fn well_formed(events: &[Value]) {
    for e in events {
        let t = e["time"].as_str().unwrap_or("");
        assert!(
            t.len() == 27 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{e}"
        );
        assert!(e["concept"].is_string() && e["kind"].is_string(), "{e}");
    }
}

#[test]
fn issue_16_signals_name_sender_target_and_signal() {
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    let watch = Watch::start(&["signals"]);
    let mut a = Command::new("sleep").arg("30").spawn().unwrap();
    let mut b = Command::new("sleep").arg("30").spawn().unwrap();
    // spawn returns when the exec has released the parent, a moment before the
    // kernel renames the task: wait for the name the events must carry.
    for pid in [a.id(), b.id()] {
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .unwrap_or_default()
            .trim()
            != "sleep"
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let mut sender = Command::new("sh")
        .args([
            "-c",
            "kill -USR1 $1; kill -KILL $2",
            "sh",
            &a.id().to_string(),
            &b.id().to_string(),
        ])
        .spawn()
        .unwrap();
    let sender_pid = sender.id() as i64;
    sender.wait().unwrap();
    a.wait().unwrap();
    b.wait().unwrap();
    let events = watch.stop();
    well_formed(&events);
    let signals = of_kind(&events, "signal");
    for (target, name) in [(a.id(), "SIGUSR1"), (b.id(), "SIGKILL")] {
        let e = signals
            .iter()
            .find(|e| pid_of(e, "target_pid") == target as i64 && e["signal"] == name)
            .unwrap_or_else(|| panic!("no {name} to {target} in {signals:#?}"));
        assert_eq!(pid_of(e, "sender_pid"), sender_pid, "{e}");
        assert_eq!(e["target_comm"], "sleep", "{e}");
        assert_eq!(e["sender_comm"], "sh", "{e}");
        assert_eq!(e["result"], "delivered", "{e}");
        assert_eq!(e["code"], "user", "{e}");
        assert_eq!(e["concept"], "signals", "{e}");
    }
}

#[test]
fn issue_16_emfile_is_reported_with_the_soft_limit() {
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    let watch = Watch::start(&["fds-limits"]);
    // Opens /dev/null 40 times under a soft limit of 32: the 30th open fails with
    // EMFILE, and the specimen lives on (as a server would).
    let s = Specimen::start(&["--fd-limit", "32", "--open-fds", "40"]);
    assert_eq!(s.report["emfile"], true, "{}", s.report);
    let pid = s.pid() as i64;
    let events = watch.stop();
    well_formed(&events);
    let e = of_kind(&events, "emfile")
        .into_iter()
        .find(|e| pid_of(e, "pid") == pid);
    let e = e.unwrap_or_else(|| panic!("no emfile for {pid} in {events:#?}"));
    assert_eq!(e["syscall"], "openat", "{e}");
    assert_eq!(e["limit"], 32, "{e}");
    assert_eq!(e["concept"], "fds-limits", "{e}");
}

#[test]
fn issue_16_a_forked_child_writing_n_pages_takes_n_copy_on_write_faults() {
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    const PAGES: i64 = 16384; // 64 MiB
    let watch = Watch::start(&["cow"]);
    let s = Specimen::start(&["--cow-child-pages", &PAGES.to_string()]);
    let child = s.report["cow_child_pid"].as_i64().unwrap();
    let events = watch.stop();
    well_formed(&events);
    let faults: Vec<&Value> = of_kind(&events, "faults")
        .into_iter()
        .filter(|e| pid_of(e, "pid") == child)
        .collect();
    let cow: i64 = faults
        .iter()
        .map(|e| e["cow_faults"].as_i64().unwrap())
        .sum();
    // Samples the kernel dropped (a ring full on a busy host) may have been the child's.
    let lost: i64 = of_kind(&events, "lost")
        .into_iter()
        .filter(|e| e["concept"] == "page-faults")
        .map(|e| e["count"].as_i64().unwrap())
        .sum();
    if lost > 0 {
        eprintln!("{lost} samples lost: the lower bound is loosened by what they held");
    }
    // Sampled one fault in 64 per CPU: the estimate is within 64 per CPU per span of the
    // count; at least 0.9 of the pages is what the issue asks.
    assert!(
        faults.iter().all(|e| e["sampled_one_in"] == 64),
        "{faults:#?}"
    );
    assert!(
        cow + lost * 64 >= PAGES * 9 / 10,
        "child {child}: {cow} copy-on-write faults estimated for {PAGES} pages, {lost} samples lost: {faults:#?}"
    );
    assert!(
        cow <= PAGES * 12 / 10,
        "child {child}: {cow} copy-on-write faults for {PAGES} pages: {faults:#?}"
    );
}

#[test]
fn issue_16_fsync_calls_are_timed_from_the_file_systems_sync() {
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let fs = rustix::fs::statfs(dir.path()).unwrap().f_type as i64;
    // ext4, xfs and btrfs have the sync tracepoints the start is taken from.
    if ![0xEF53, 0x5846_5342, 0x9123_683E].contains(&fs) {
        eprintln!(
            "SKIPPED: the test directory's file system (magic {fs:#x}) has no sync tracepoint"
        );
        return;
    }
    let watch = Watch::start(&["storage"]);
    // 20 fsyncs on disk, then 7 on tmpfs (no sync tracepoint: counted, not timed); the
    // two runs of one thread must not be paired with each other.
    let script = format!(
        "import os\n\
         f = os.open({disk:?}, os.O_CREAT | os.O_WRONLY)\n\
         for _ in range(20): os.write(f, b'x' * 4096); os.fsync(f)\n\
         g = os.open('/dev/shm/syslens-fsync-{pid}', os.O_CREAT | os.O_WRONLY)\n\
         for _ in range(7): os.fsync(g)\n\
         os.unlink('/dev/shm/syslens-fsync-{pid}')\n",
        disk = dir.path().join("f").to_str().unwrap(),
        pid = std::process::id(),
    );
    // Started on CPU 1, it execs (through taskset, and python3 itself may be a shim
    // script) on CPU 0: its names land in two CPUs' task rings, the last one in the ring
    // read first, so only names applied in time order leave "python3".
    let two_cpus = std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let mut py = if two_cpus {
        Command::new("taskset")
            .args(["-c", "1", "sh", "-c", "exec taskset -c 0 python3 -c \"$0\""])
            .arg(&script)
            .spawn()
            .unwrap()
    } else {
        eprintln!("one CPU: the name is not checked across CPUs");
        Command::new("python3")
            .args(["-c", &script])
            .spawn()
            .unwrap()
    };
    let pid = py.id() as i64;
    assert!(py.wait().unwrap().success());
    let events = watch.stop();
    well_formed(&events);
    let mine: Vec<&Value> = of_kind(&events, "fsync")
        .into_iter()
        .filter(|e| pid_of(e, "pid") == pid)
        .collect();
    let sum = |k: &str| mine.iter().map(|e| e[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(sum("calls"), 20, "{mine:#?}");
    assert_eq!(sum("untimed_calls"), 7, "{mine:#?}");
    assert!(mine.iter().all(|e| e["comm"] == "python3"), "{mine:#?}");
    for e in &mine {
        if e["calls"].as_i64().unwrap() > 0 {
            let (p50, max) = (
                e["p50_seconds"].as_f64().unwrap(),
                e["max_seconds"].as_f64().unwrap(),
            );
            // A disk fsync takes microseconds at least; one paired with a later start
            // would be 0.
            assert!(p50 > 1e-6 && p50 <= max && max < 10.0, "{e}");
        }
    }
}

/// The scheduler's own run-queue wait of a process (/proc/PID/schedstat: time on a CPU,
/// time waiting for one, times it ran), in seconds and runs.
fn schedstat(pid: u32) -> (f64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/schedstat")).unwrap();
    let f: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (f[1] as f64 / 1e9, f[2])
}

/// The `runq` summaries of process `pid`, with their waits and seconds summed.
fn runq_of(events: &[Value], pid: i64) -> (Vec<&Value>, i64, f64) {
    let mine: Vec<&Value> = of_kind(events, "runq")
        .into_iter()
        .filter(|e| pid_of(e, "pid") == pid)
        .collect();
    let waits = mine.iter().map(|e| e["waits"].as_i64().unwrap()).sum();
    let waited = mine
        .iter()
        .map(|e| e["runq_seconds"].as_f64().unwrap())
        .sum();
    (mine, waits, waited)
}

#[test]
fn issue_16_run_queue_waits_agree_with_the_scheduler_s_own_count() {
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    skip_unless!(
        std::path::Path::new("/proc/self/schedstat").exists(),
        "no /proc/PID/schedstat (a kernel without CONFIG_SCHED_INFO)"
    );
    let watch = Watch::start(&["scheduling"]);
    // Two spinners on one CPU: each waits for a CPU while the other runs. Both start
    // after watch, so every wait of theirs is in its samples and in schedstat.
    let cpu = if std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2) {
        "1"
    } else {
        "0"
    };
    let spin = || {
        Command::new("taskset")
            .args(["-c", cpu, "sh", "-c", "while :; do :; done"])
            .spawn()
            .unwrap()
    };
    let mut spinners = [spin(), spin()];
    std::thread::sleep(Duration::from_secs(1));
    let kernel: Vec<(f64, u64)> = spinners.iter().map(|c| schedstat(c.id())).collect();
    for c in &mut spinners {
        c.kill().unwrap();
        c.wait().unwrap();
    }
    let events = watch.stop();
    well_formed(&events);
    for (c, (delay, runs)) in spinners.iter().zip(kernel) {
        let (mine, waits, waited) = runq_of(&events, i64::from(c.id()));
        // Two spinners sharing a CPU each wait about half the second.
        assert!(
            delay > 0.2,
            "schedstat says {delay} s: the spinners did not share a CPU"
        );
        // After schedstat was read each waits once more at most (a slice) to die.
        assert!(
            waited >= delay * 0.95 && waited <= delay * 1.05 + 0.02,
            "watch {waited} s in {waits} waits, schedstat {delay} s in {runs} runs: {mine:#?}"
        );
        let runs = runs as i64;
        assert!(
            waits >= runs * 9 / 10 && waits <= runs * 11 / 10 + 3,
            "watch {waits} waits, schedstat {runs} runs: {mine:#?}"
        );
        for e in &mine {
            if let (Some(p50), Some(p99), Some(max)) = (
                e["runq_p50_seconds"].as_f64(),
                e["runq_p99_seconds"].as_f64(),
                e["runq_max_seconds"].as_f64(),
            ) {
                assert!(0.0 < p50 && p50 <= p99 && p99 <= max && max < 1.0, "{e}");
            }
        }
    }
}

#[test]
fn issue_16_run_queue_waits_after_wake_ups_agree_with_schedstat() {
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    skip_unless!(
        std::path::Path::new("/proc/self/schedstat").exists(),
        "no /proc/PID/schedstat (a kernel without CONFIG_SCHED_INFO)"
    );
    skip_unless!(
        std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
        "one CPU: no wake-up from one CPU to another"
    );
    let watch = Watch::start(&["scheduling"]);
    // A ping-pong across two CPUs, each side sleeping 1 ms before it answers: every
    // wait follows a wake-up (from the other CPU, or its timer), and each read blocks
    // a millisecond, which counted as waiting would dwarf the waits. Each prints its
    // own schedstat and the time it spent blocked in reads, in one write (print's
    // pieces interleave).
    let script = "import os, time\n\
        a, b = os.pipe(), os.pipe()\n\
        child = os.fork()\n\
        os.sched_setaffinity(0, {1 if child == 0 else 0})\n\
        r, w = (a[0], b[1]) if child == 0 else (b[0], a[1])\n\
        blocked = 0\n\
        for i in range(500):\n    \
            if child: time.sleep(0.001); os.write(w, b'x')\n    \
            t = time.perf_counter_ns(); os.read(r, 1); blocked += time.perf_counter_ns() - t\n    \
            if not child: time.sleep(0.001); os.write(w, b'x')\n\
        stat = open('/proc/self/schedstat').read().strip()\n\
        os.write(1, f'{os.getpid()} {stat} {blocked}\\n'.encode())\n\
        child and os.waitpid(child, 0)\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let events = watch.stop();
    well_formed(&events);
    let lost: i64 = of_kind(&events, "lost")
        .iter()
        .map(|e| e["count"].as_i64().unwrap())
        .sum();
    skip_unless!(lost == 0, "the host was too busy: samples were lost");
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    for line in text.lines() {
        let f: Vec<u64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        let (pid, delay, runs) = (f[0] as i64, f[2] as f64 / 1e9, f[3] as i64);
        let blocked = f[4] as f64 / 1e9;
        let (mine, waits, waited) = runq_of(&events, pid);
        // 500 reads and 500 sleeps each end in a wake-up, and each run after one
        // follows it.
        assert!(
            waits >= 900 && waits >= runs * 9 / 10 - 3 && waits <= runs + 10,
            "watch {waits} waits, schedstat {runs} runs ({line})"
        );
        // schedstat reads low (after a wake-up that preempts, the switch reuses the
        // run-queue clock of the wake-up: no wait at all), so it bounds from below;
        // half a second blocked in reads counted as waiting would bound from above.
        assert!(
            waited >= delay * 0.9 - 0.0005 && waited <= blocked * 0.1,
            "watch {waited} s in {waits} waits, schedstat {delay} s in {runs} runs, \
             {blocked} s blocked in reads: {mine:#?}"
        );
    }
}

/// Maps and unmaps 16 KiB over and over for `secs` on this thread, and returns the
/// time spent inside the two calls.
fn map_and_unmap(secs: f64) -> Duration {
    let began = Instant::now();
    let mut inside = Duration::ZERO;
    while began.elapsed().as_secs_f64() < secs {
        let t = Instant::now();
        // SAFETY: a fresh private anonymous mapping, written once and unmapped whole
        // here; nothing else refers to it.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                16384,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            assert_ne!(p, libc::MAP_FAILED);
            p.cast::<u8>().write(1);
            libc::munmap(p, 16384);
        }
        inside += t.elapsed();
    }
    inside
}

#[test]
fn issue_16_mmap_lock_contention_is_timed_and_named_by_its_caller() {
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    skip_unless!(
        std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2),
        "one CPU: two threads cannot contend for a lock at once"
    );
    let watch = Watch::start(&["locking", "--kind", "kernel-lock"]);
    // Two threads of this process map and unmap at once: each call takes the
    // process's mmap_lock for writing, so they queue on it (an rw-semaphore).
    let threads: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(|| map_and_unmap(1.0)))
        .collect();
    let inside: f64 = threads
        .into_iter()
        .map(|t| t.join().unwrap().as_secs_f64())
        .sum();
    let events = watch.stop();
    well_formed(&events);
    let me = i64::from(std::process::id());
    let mine: Vec<&Value> = of_kind(&events, "kernel-lock")
        .into_iter()
        .filter(|e| pid_of(e, "pid") == me && e["lock"] == "rwsem (write)")
        .collect();
    assert!(
        mine.iter().all(|e| e["caller"].is_string()),
        "a caller not named: {mine:#?}"
    );
    // The two calls' own functions (vm_mmap_pgoff, __vm_munmap); starting a thread
    // takes the lock too (do_mprotect_pkey for its stack's guard page).
    let mine: Vec<&Value> = mine
        .into_iter()
        .filter(|e| {
            e["caller"]
                .as_str()
                .is_some_and(|c| c.contains("mmap") || c.contains("munmap"))
        })
        .collect();
    for e in &mine {
        let (p50, p99, max) = (
            e["p50_wait_seconds"].as_f64().unwrap(),
            e["p99_wait_seconds"].as_f64().unwrap(),
            e["max_wait_seconds"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{e}");
    }
    let waits: i64 = mine.iter().map(|e| e["waits"].as_i64().unwrap()).sum();
    let waited: f64 = mine
        .iter()
        .map(|e| e["wait_seconds"].as_f64().unwrap())
        .sum();
    assert!(waits >= 100, "{waits} waits: {mine:#?}");
    // Every wait is inside a call, as the threads' own clocks measured them.
    assert!(
        waited > 0.0 && waited <= inside,
        "waited {waited} s, {inside} s inside mmap and munmap: {mine:#?}"
    );
}

#[test]
fn issue_16_two_threads_waiting_for_each_other_s_mutex_are_named_a_deadlock() {
    skip_unless!(
        is_root(),
        "tracepoints and reading another process's memory need root"
    );
    let watch = Watch::start(&["--kind", "futex-wait"]);
    // Each thread holds one glibc mutex and, 200 ms later, waits for the other's.
    let s = Specimen::start(&["--deadlock-after-ms", "200"]);
    let tids: Vec<i64> = s.report["deadlocked_tids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_i64().unwrap())
        .collect();
    // A summary (every second) while both have been blocked for a second or more.
    std::thread::sleep(Duration::from_millis(2500));
    let events = watch.stop();
    let pid = s.pid() as i64;
    drop(s);
    well_formed(&events);
    let (words, refused) = futex_words_of(&events, pid);
    let locked: Vec<&&Value> = words
        .iter()
        .filter(|e| e.get("deadlock").is_some())
        .collect();
    skip_unless!(
        !locked.is_empty() || refused.is_none(),
        format!("the specimen's memory is refused here: {refused:?}")
    );
    let uaddrs: std::collections::BTreeSet<&str> = locked
        .iter()
        .map(|e| e["uaddr"].as_str().unwrap())
        .collect();
    assert_eq!(
        uaddrs.len(),
        2,
        "both mutexes' words are in the deadlock: {words:#?}"
    );
    for e in &locked {
        let text = e["deadlock"].as_str().unwrap();
        for t in &tids {
            assert!(
                text.contains(&format!("thread {t} waits for"))
                    && text.contains(&format!("held by {t}")),
                "{text} names {tids:?}"
            );
        }
        assert!(e["blocked_now"].as_i64().unwrap() >= 1, "{e}");
    }
}

#[test]
fn issue_16_a_deadlock_older_than_the_watch_is_found_and_named() {
    skip_unless!(
        is_root(),
        "tracepoints and reading another process's memory need root"
    );
    // Deadlocked before the watch begins: no entry sample will ever announce it.
    let s = Specimen::start(&["--deadlock-after-ms", "100"]);
    std::thread::sleep(Duration::from_millis(500));
    let watch = Watch::start(&["--kind", "futex-wait"]);
    // A summary a second or more after the scan that found them.
    std::thread::sleep(Duration::from_millis(2500));
    let events = watch.stop();
    let pid = s.pid() as i64;
    drop(s);
    well_formed(&events);
    let (words, refused) = futex_words_of(&events, pid);
    skip_unless!(
        refused.is_none(),
        format!("the specimen's memory is refused here: {refused:?}")
    );
    let locked: std::collections::BTreeSet<&str> = words
        .iter()
        .filter(|e| e.get("deadlock").is_some())
        .map(|e| e["uaddr"].as_str().unwrap())
        .collect();
    assert_eq!(locked.len(), 2, "both words named: {words:#?}");
    assert!(
        words
            .iter()
            .any(|e| e["blocked_before_watch"].as_i64() >= Some(1)),
        "{words:#?}"
    );
}

#[test]
fn issue_16_futex_waits_are_timed_per_word_as_the_waiter_s_own_clock_says() {
    use std::sync::atomic::{AtomicU32, Ordering};
    skip_unless!(is_root(), "tracepoints need root or CAP_PERFMON");
    let watch = Watch::start(&["locking", "--kind", "futex-wait"]);
    // A waiter blocks on a futex word of this process ten times; each time the waker
    // lets it wait 50 ms before it bumps the word and wakes it.
    static WORD: AtomicU32 = AtomicU32::new(0);
    let futex = |op: i32, val: u32| {
        // SAFETY: WORD is a static u32, valid for the process's lifetime; the other
        // arguments are unused by FUTEX_WAIT (no timeout) and FUTEX_WAKE.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                WORD.as_ptr(),
                op | libc::FUTEX_PRIVATE_FLAG,
                val,
                std::ptr::null::<libc::timespec>(),
            )
        }
    };
    let waker = std::thread::spawn(move || {
        for round in 1..=10 {
            std::thread::sleep(Duration::from_millis(50));
            WORD.store(round, Ordering::SeqCst);
            futex(libc::FUTEX_WAKE, 1);
        }
    });
    let mut blocked = Duration::ZERO;
    for round in 1..=10 {
        let t = Instant::now();
        loop {
            let seen = WORD.load(Ordering::SeqCst);
            if seen >= round {
                break;
            }
            futex(libc::FUTEX_WAIT, seen);
        }
        blocked += t.elapsed();
    }
    waker.join().unwrap();
    let events = watch.stop();
    well_formed(&events);
    let me = i64::from(std::process::id());
    let word = format!("{:#x}", WORD.as_ptr() as usize);
    let mine: Vec<&Value> = of_kind(&events, "futex-wait")
        .into_iter()
        .filter(|e| pid_of(e, "pid") == me && e["uaddr"] == word.as_str())
        .collect();
    let waits: i64 = mine.iter().map(|e| e["waits"].as_i64().unwrap()).sum();
    let waited: f64 = mine
        .iter()
        .map(|e| e["wait_seconds"].as_f64().unwrap())
        .sum();
    let blocked = blocked.as_secs_f64();
    // One wait a round, more only if a wake-up came early (a spurious one).
    assert!((10..=20).contains(&waits), "{waits} waits: {mine:#?}");
    assert!(
        waited <= blocked && waited >= blocked * 0.9 - 0.005,
        "watch {waited} s, the waiter's clock {blocked} s: {mine:#?}"
    );
    for e in &mine {
        assert_eq!(e["threads"], 1, "{e}");
        assert_eq!(e["timeouts"], 0, "{e}");
        let max = e["max_wait_seconds"].as_f64().unwrap();
        assert!((0.04..0.5).contains(&max), "{e}");
    }
}

#[test]
fn issue_16_a_short_lived_process_exits_with_its_peak() {
    skip_unless!(is_root(), "taskstats needs CAP_NET_ADMIN");
    let watch = Watch::start(&["high-water-mark", "--kind", "exit"]);
    // dd's 300 MiB buffer is touched whole by its one read, then it sleeps out 0.3 s.
    let mut p = Command::new("sh")
        .args([
            "-c",
            "dd if=/dev/zero of=/dev/null bs=300M count=1 2>/dev/null; sleep 0.3; exit 3",
        ])
        .spawn()
        .unwrap();
    let shell = p.id() as i64;
    p.wait().unwrap();
    let mut k = Command::new("sleep").arg("30").spawn().unwrap();
    let killed = k.id() as i64;
    k.kill().unwrap();
    k.wait().unwrap();
    let events = watch.stop();
    well_formed(&events);
    let exits = of_kind(&events, "exit");
    let dd = exits
        .iter()
        .find(|e| e["comm"] == "dd" && pid_of(e, "ppid") == shell)
        .unwrap_or_else(|| panic!("no exit of dd under {shell}: {exits:#?}"));
    assert!(dd["peak_rss_bytes"].as_i64().unwrap() >= 300 << 20, "{dd}");
    assert_eq!(dd["exit_code"], 0, "{dd}");
    let sh = exits
        .iter()
        .find(|e| pid_of(e, "pid") == shell)
        .unwrap_or_else(|| panic!("no exit of {shell}"));
    assert_eq!(sh["exit_code"], 3, "{sh}");
    let life = sh["lifetime_seconds"].as_f64().unwrap();
    assert!((0.3..2.0).contains(&life), "{sh}");
    let k = exits
        .iter()
        .find(|e| pid_of(e, "pid") == killed)
        .unwrap_or_else(|| panic!("no exit of {killed}"));
    assert_eq!(k["signal"], "SIGKILL", "{k}");
    assert!(k.get("exit_code").is_none(), "{k}");
}

/// Seconds since the epoch of an RFC 3339 UTC time as events write it
/// (`2026-12-07T14:58:40.245048Z`).
fn epoch_seconds(t: &str) -> f64 {
    let num = |r: std::ops::Range<usize>| t[r].parse::<i64>().unwrap();
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs = days * 86_400 + num(11..13) * 3600 + num(14..16) * 60;
    secs as f64 + t[17..t.len() - 1].parse::<f64>().unwrap()
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn status_bytes(pid: i64, field: &str) -> i64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<i64>()
        .unwrap()
        * 1024
}

#[test]
fn issue_16_an_rss_spike_between_polls_is_seen_with_its_peak_and_time() {
    skip_unless!(is_root(), "tracepoints need root");
    let watch = Watch::start(&["--kind", "rss-peak"]);
    // A process touches 300 MiB of private memory (in 4 KiB pages: a huge page is one
    // change of 2 MiB, and one in 8 changes is kept) and unmaps it, between two
    // summaries of the watch; then stays, so a summary sees it after the spike.
    let script = "import mmap, os, sys\n\
         os.write(1, b'ready\\n'); sys.stdin.readline()\n\
         m = mmap.mmap(-1, 300 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n\
         m.madvise(mmap.MADV_NOHUGEPAGE)\n\
         for i in range(0, 300 << 20, 4096): m[i] = 1\n\
         m.close(); os.write(1, b'done\\n'); sys.stdin.readline()\n";
    let mut py = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = py.id() as i64;
    let mut said = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let before = unix_now();
    let mut stdin = py.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"go\n").unwrap();
    line.clear();
    said.read_line(&mut line).unwrap();
    assert_eq!(line, "done\n");
    let after = unix_now();
    // The kernel's own high-water mark (set as the 300 MiB was unmapped).
    let hwm = status_bytes(pid, "VmHWM:");
    std::thread::sleep(Duration::from_millis(1500));
    let rss = status_bytes(pid, "VmRSS:");
    let events = watch.stop();
    drop(stdin);
    assert!(py.wait().unwrap().success());
    well_formed(&events);
    let mine: Vec<&Value> = of_kind(&events, "rss-peak")
        .into_iter()
        .filter(|e| pid_of(e, "pid") == pid)
        .collect();
    let top = mine
        .iter()
        .max_by_key(|e| e["peak_rss_bytes"].as_i64().unwrap())
        .unwrap_or_else(|| panic!("no rss-peak of {pid}: {events:#?}"));
    let peak = top["peak_rss_bytes"].as_i64().unwrap();
    // Sampled one change in 8 per CPU: the peak read is at most a few pages below the
    // kernel's VmHWM, never above it by more than a counter's lag.
    assert!(
        (hwm - (2 << 20)..=hwm + (2 << 20)).contains(&peak),
        "peak {peak} against VmHWM {hwm}: {top}"
    );
    assert!(
        top["peak_anon_bytes"].as_i64().unwrap() >= 300 << 20,
        "{top}"
    );
    let when = epoch_seconds(top["when"].as_str().unwrap());
    assert!(
        (before - 0.01..=after + 0.01).contains(&when),
        "peak at {when}, spike from {before} to {after}"
    );
    // The last summary of the live address space, after the spike, has what status
    // said then. (The pid's earlier space, left by exec of a `python3` shim, is
    // reported gone, without `rss_bytes`, and may come after it in the same summary.)
    let last = mine
        .iter()
        .rev()
        .find(|e| e.get("rss_bytes").is_some())
        .unwrap_or_else(|| panic!("no summary of {pid}'s live space: {mine:#?}"));
    let now = last["rss_bytes"].as_i64().unwrap_or(-1);
    assert!(
        (rss - (4 << 20)..=rss + (4 << 20)).contains(&now),
        "{last}, VmRSS {rss}"
    );
    assert!(
        mine.iter().any(|e| e["peak_rss_bytes"].as_i64().unwrap()
            - e["rss_bytes"].as_i64().unwrap_or(0)
            >= 250 << 20),
        "no summary shows the spike above the RSS after it: {mine:#?}"
    );
}

/// From /proc/pagetypeinfo: the free bytes of unmovable and reclaimable pages (every
/// zone; a count the kernel caps, `>100000`, read as its cap), and the pageblocks typed
/// unmovable.
fn unmovable_state() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/pagetypeinfo").unwrap();
    // SAFETY: sysconf reads a constant of the system.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let count = |w: &str| w.trim_start_matches('>').parse::<u64>().unwrap();
    let mut free = 0;
    let mut blocks = 0;
    let mut section = "";
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        if line.starts_with("Free pages count") {
            section = "free";
        } else if line.starts_with("Number of blocks type") {
            section = "blocks";
        } else if !line.starts_with("Node") {
            // Another section (mixed blocks, with page_owner) or the gap before one.
            section = "";
        } else if section == "blocks" {
            // Node 0, zone Normal <Unmovable> <Movable> ...
            blocks += count(words[4]);
        } else if section == "free" {
            if let Some(at) = words.iter().position(|w| *w == "type") {
                if matches!(words.get(at + 1), Some(&"Unmovable") | Some(&"Reclaimable")) {
                    for (order, n) in words[at + 2..].iter().enumerate() {
                        free += (count(n) << order) * page;
                    }
                }
            }
        }
    }
    (free, blocks)
}

#[test]
fn issue_16_unmovable_allocations_that_steal_blocks_are_counted_by_type() {
    skip_unless!(is_root(), "tracepoints need root");
    let mem_available = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap()
        << 10;
    let (free, blocks_before) = unmovable_state();
    // Pipe buffers are unmovable kernel pages: more of them than the unmovable and
    // reclaimable free lists hold makes the allocator take movable blocks.
    let want = free + (256 << 20);
    skip_unless!(
        want <= mem_available / 4,
        "the free unmovable pages and 256 MiB more are over a quarter of the available memory"
    );
    let pipes = want.div_ceil(1 << 20);
    let watch = Watch::start(&["--kind", "extfrag"]);
    let script = format!(
        "import os, fcntl, resource, sys\n\
         hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n\
         resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n\
         held = []\n\
         for _ in range({pipes}):\n    \
             r, w = os.pipe(); fcntl.fcntl(w, 1031, 1 << 20); os.set_blocking(w, False)\n    \
             try:\n        \
                 while True: os.write(w, b'x' * 65536)\n    \
             except BlockingIOError: pass\n    \
             held.append((r, w))\n\
         os.write(1, b'filled\\n'); sys.stdin.readline()\n"
    );
    let mut py = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = py.id() as i64;
    let mut line = String::new();
    BufReader::new(py.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "filled\n", "the pipes were not filled");
    let (_, blocks_after) = unmovable_state();
    let events = watch.stop();
    drop(py.stdin.take());
    assert!(py.wait().unwrap().success());
    well_formed(&events);
    let mine: Vec<&Value> = of_kind(&events, "extfrag")
        .into_iter()
        .filter(|e| pid_of(e, "pid") == pid)
        .collect();
    let stolen: Vec<&&Value> = mine
        .iter()
        .filter(|e| e["alloc_migratetype"] == "unmovable")
        .collect();
    assert!(
        !stolen.is_empty(),
        "no unmovable fallback of {pid}: {mine:#?}"
    );
    let claimed: i64 = stolen.iter().map(|e| e["claimed"].as_i64().unwrap()).sum();
    for e in &stolen {
        // Decoded from the right offsets: a fallback is from another type.
        assert!(e["fallback_migratetype"] != "unmovable", "{e}");
    }
    // Each claim turned at least one pageblock unmovable, as pagetypeinfo counts them.
    assert!(claimed >= 1, "{stolen:#?}");
    assert!(
        blocks_after >= blocks_before + claimed as u64,
        "{claimed} claims, unmovable blocks {blocks_before} -> {blocks_after}"
    );
}

#[test]
fn issue_16_an_oom_kill_names_victim_cgroup_and_trigger() {
    skip_unless!(is_root(), "a memory cgroup and tracepoints need root");
    let jail = match MemJail::new(64 << 20) {
        Ok(j) => j,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let watch = Watch::start(&["swap-oom"]);
    let victim = jail.oom_kill_dd() as i64;
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let events = watch.stop();
    well_formed(&events);
    let kills = of_kind(&events, "oom-kill");
    let e = kills
        .iter()
        .find(|e| pid_of(e, "victim_pid") == victim)
        .unwrap_or_else(|| panic!("no oom-kill of {victim}: {events:#?}"));
    assert_eq!(e["victim_comm"], "dd", "{e}");
    // dd's own allocation hit the limit: it is its own trigger.
    assert_eq!(pid_of(e, "trigger_pid"), victim, "{e}");
    assert_eq!(e["constraint"], "cgroup", "{e}");
    let name = jail.dir.file_name().unwrap().to_str().unwrap();
    assert!(e["cgroup"].as_str().unwrap_or("").ends_with(name), "{e}");
    assert!(e["anon_rss_bytes"].as_i64().unwrap_or(0) > 32 << 20, "{e}");
    // doctor names the trigger and the constraint of the same kill, from the log.
    let out = syslens()
        .args(["--json", "doctor", "--window", "0"])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let finding = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "oom-killed" && f["subject"].as_str().unwrap_or("").ends_with(name))
        .unwrap_or_else(|| panic!("no oom-killed finding for {name}: {report:#}"));
    let message = finding["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("latest pid {victim} (dd)")),
        "{message}"
    );
    assert!(
        message.contains("its own allocation (dd)") && message.contains("the cgroup's limit"),
        "{message}"
    );
}

#[test]
fn issue_16_watch_as_nobody_says_what_is_unavailable_and_exits_0() {
    if let Err(why) = nobody_can_run() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let out = as_nobody()
        .args(["watch", "--for", "0.5"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("unavailable: tracepoints") && text.contains("root"),
        "{text}"
    );
    assert!(text.contains("-- watched"), "{text}");
}

#[test]
fn issue_16_watch_refuses_root_and_unknown_kinds() {
    let out = syslens()
        .args(["--root", "/tmp", "watch"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = syslens()
        .args(["watch", "--kind", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("oom-kill"));
    let out = syslens().args(["watch", "signls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signals"));
}

#[test]
fn issue_16_watch_header_is_wrapped_never_cut() {
    let out = syslens()
        .env("COLUMNS", "80")
        .args(["watch", "--for", "0.3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // Without root the reasons are long too: every header line fits, none is cut.
    for line in text
        .lines()
        .filter(|l| !l.starts_with(|c: char| c.is_ascii_digit()))
    {
        assert!(line.chars().count() <= 100, "too wide: {line}");
    }
    assert!(text.contains("-- watched"), "{text}");
}
