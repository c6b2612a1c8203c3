//! A process with known state, started by syslens's own tests as `syslens __specimen`
//! so that `inspect` can be checked against what the process really did. It reports
//! what it did as one JSON line on stdout, then waits until stdin closes.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::sync::mpsc;

use serde::Serialize;

use crate::commands::Status;

/// Flags of `syslens __specimen`: the state to put the process in.
#[derive(Debug, clap::Args)]
pub struct SpecimenArgs {
    /// Allocate and touch this many MiB, then free them (RSS falls below the HWM).
    #[arg(long, default_value_t = 0)]
    pub spike_mib: usize,
    /// Open /dev/null this many times.
    #[arg(long, default_value_t = 0)]
    pub open_fds: usize,
    /// Also hold a file in this directory that is deleted but still open.
    #[arg(long)]
    pub deleted_file_in: Option<std::path::PathBuf>,
    /// Ignore SIGTERM.
    #[arg(long)]
    pub ignore_term: bool,
    /// Start a thread that blocks SIGUSR1.
    #[arg(long)]
    pub block_usr1_thread: bool,
    /// Enter new UTS and network namespaces (needs CAP_SYS_ADMIN).
    #[arg(long)]
    pub unshare_uts_net: bool,
    /// Lower the own soft RLIMIT_NOFILE to this before opening fds.
    #[arg(long)]
    pub fd_limit: Option<u64>,
    /// Keep allocating (and touching) this many MiB per second.
    #[arg(long)]
    pub leak_mib_per_s: Option<u64>,
    /// Map this file read-only and read it page by page at --map-read-mib-per-s (its
    /// resident set grows in file pages, RssFile, not in anonymous memory).
    #[arg(long, requires = "map_read_mib_per_s")]
    pub map_read: Option<std::path::PathBuf>,
    /// How fast to read the mapped file, in MiB per second.
    #[arg(long, requires = "map_read")]
    pub map_read_mib_per_s: Option<u64>,
    /// Map a copy of a shared library, then delete the copy (a library "updated" on disk).
    #[arg(long)]
    pub deleted_lib_in: Option<std::path::PathBuf>,
    /// Hold an exclusive flock on this file.
    #[arg(long)]
    pub flock_hold: Option<std::path::PathBuf>,
    /// Wait (in a thread) for an exclusive flock on this file.
    #[arg(long)]
    pub flock_wait: Option<std::path::PathBuf>,
    /// Leave this many exited, unreaped children.
    #[arg(long, default_value_t = 0)]
    pub zombies: usize,
    /// Start this many threads that wait on a condition variable forever.
    #[arg(long, default_value_t = 0)]
    pub idle_pool: usize,
    /// Fork a child that writes one byte in each of this many pages of the parent's
    /// memory (copy-on-write faults), waits for it, and report its pid.
    #[arg(long, default_value_t = 0)]
    pub cow_child_pages: usize,
    /// Rename the process (PR_SET_NAME; at most 15 bytes), as any user can.
    #[arg(long)]
    pub comm: Option<String>,
    /// Start two threads that deadlock on two glibc mutexes this many milliseconds
    /// after the report (each holds one and then waits for the other); report their tids.
    #[arg(long)]
    pub deadlock_after_ms: Option<u64>,
}

/// What the specimen did, for the test to compare with `inspect`.
#[derive(Debug, Serialize)]
struct Report {
    pid: u32,
    spike_bytes: usize,
    open_fds: usize,
    deleted_file: Option<String>,
    deleted_file_bytes: u64,
    blocker_tid: Option<i32>,
    unshared: bool,
    deleted_lib: Option<String>,
    cow_child_pid: Option<i32>,
    emfile: bool,
    deadlocked_tids: Option<[i32; 2]>,
}

/// The last OS error if a libc call returned -1, named after the call.
fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == -1 {
        return Err(context(io::Error::last_os_error(), what));
    }
    Ok(())
}

/// `e` with the name of the call that failed in front, of the same kind.
fn context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Copies a shared library this process already maps (not libc) into `dir`, dlopens
/// the copy and deletes it: the mapping then shows `(deleted)`, as after an update.
fn map_deleted_library(dir: &std::path::Path) -> io::Result<String> {
    let maps = std::fs::read_to_string("/proc/self/maps")?;
    let source = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains(".so") && !p.contains("libc.so") && !p.contains("ld-linux"))
        .ok_or_else(|| io::Error::other("no library to copy"))?
        .to_owned();
    let copy = dir.join(format!("libsyslens-specimen-{}.so", std::process::id()));
    std::fs::copy(&source, &copy)?;
    let c = std::ffi::CString::new(copy.to_string_lossy().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: loads a copy of a library already loaded in this process.
    let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if handle.is_null() {
        return Err(io::Error::other("dlopen of the copy failed"));
    }
    std::fs::remove_file(&copy)?;
    Ok(copy.display().to_string())
}

/// Touches `pages` pages, forks a child that writes each once (a copy-on-write fault
/// per page), and waits for it; returns the child's pid.
fn cow_child(pages: usize) -> io::Result<i32> {
    let mut memory = vec![1u8; pages * 4096];
    std::hint::black_box(&mut memory);
    // SAFETY: the child only writes memory it owns and calls _exit (async-signal-safe),
    // so locks other threads might hold at the fork do not matter.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        for page in memory.chunks_mut(4096) {
            // SAFETY: a volatile write to memory the child owns (its copy of the Vec),
            // so the compiler cannot elide the fault.
            unsafe { std::ptr::write_volatile(page.as_mut_ptr(), 2) };
        }
        // SAFETY: _exit ends the child without running destructors that could touch
        // state shared with the parent.
        unsafe { libc::_exit(0) };
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    rustix::process::waitpid(
        rustix::process::Pid::from_raw(pid),
        rustix::process::WaitOptions::empty(),
    )
    .map_err(|e| context(e.into(), "waitpid"))?;
    Ok(pid)
}

/// Two threads that take two pthread mutexes in opposite orders `after` from now: each
/// holds one and waits for the other until the process exits. Their tids.
fn deadlock(after: std::time::Duration) -> io::Result<[i32; 2]> {
    // Leaked: the threads wait on them until the process exits.
    let pair = Box::into_raw(Box::new([libc::PTHREAD_MUTEX_INITIALIZER; 2])) as usize;
    let (tx, rx) = mpsc::channel();
    let both_hold = std::sync::Arc::new(std::sync::Barrier::new(2));
    for first in 0..2 {
        let (tx, both_hold) = (tx.clone(), both_hold.clone());
        std::thread::spawn(move || {
            let lock = |i: usize| {
                // SAFETY: index 0 or 1 of the leaked pair of initialised mutexes, which
                // live until the process exits.
                unsafe { libc::pthread_mutex_lock((pair as *mut libc::pthread_mutex_t).add(i)) }
            };
            lock(first);
            let _ = tx.send(rustix::thread::gettid().as_raw_pid());
            both_hold.wait();
            std::thread::sleep(after);
            lock(1 - first);
        });
    }
    let tid = || rx.recv().map_err(io::Error::other);
    Ok([tid()?, tid()?])
}

/// Puts the process in the state `args` asks for, reports it on `out` as one JSON line,
/// and holds it until stdin closes.
pub fn run(args: SpecimenArgs, out: &mut dyn Write) -> io::Result<Status> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| context(e.into(), "prctl"))?;
    // Namespaces first, while single-threaded: unshare applies to the calling thread.
    if args.unshare_uts_net {
        check(
            // SAFETY: unshare takes only flags; new UTS and network namespaces change
            // no memory or file descriptor this process holds.
            unsafe { libc::unshare(libc::CLONE_NEWUTS | libc::CLONE_NEWNET) },
            "unshare",
        )?;
        rustix::system::sethostname(b"syslens-specimen")
            .map_err(|e| context(e.into(), "sethostname"))?;
    }
    if args.spike_mib > 0 {
        let mut spike = vec![0u8; args.spike_mib << 20];
        // Write every page so each one is really resident, then let the Vec go: a
        // large allocation is its own mapping and returns to the kernel at once.
        for page in spike.chunks_mut(4096) {
            page[0] = 1;
        }
        std::hint::black_box(&spike);
    }
    if let Some(limit) = args.fd_limit {
        // Start from stdin, stdout and stderr only, whatever the caller left open.
        // SAFETY: closes only fds inherited from the caller; nothing in this process
        // has opened or taken ownership of an fd above 2 yet.
        unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
        use rustix::process::{getrlimit, setrlimit, Resource};
        let lim = rustix::process::Rlimit {
            current: Some(limit),
            ..getrlimit(Resource::Nofile)
        };
        setrlimit(Resource::Nofile, lim).map_err(|e| context(e.into(), "setrlimit"))?;
    }
    let mut held = Vec::new();
    // Past the limit the specimen stops opening and lives on, as a server that hit
    // EMFILE does.
    let mut emfile = false;
    for _ in 0..args.open_fds {
        match File::open("/dev/null") {
            Ok(f) => held.push(f),
            Err(e) if e.raw_os_error() == Some(libc::EMFILE) => {
                emfile = true;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    let mut deleted_file = None;
    let mut deleted_file_bytes = 0;
    if let Some(dir) = &args.deleted_file_in {
        let path = dir.join(format!("syslens-specimen-{}", std::process::id()));
        let mut f = File::create(&path)?;
        let block = vec![7u8; 1 << 20];
        f.write_all(&block)?;
        f.sync_all()?;
        std::fs::remove_file(&path)?;
        deleted_file_bytes = block.len() as u64;
        deleted_file = Some(path.display().to_string());
        held.push(f);
    }
    if args.ignore_term {
        // SAFETY: SIG_IGN is a valid disposition for SIGTERM.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    let mut blocker_tid = None;
    if args.block_usr1_thread {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // SAFETY: the sigset is initialised by sigemptyset before use.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGUSR1);
                libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            let _ = tx.send(rustix::thread::gettid().as_raw_pid());
            loop {
                std::thread::park();
            }
        });
        blocker_tid = rx.recv().ok();
    }
    let deleted_lib = match &args.deleted_lib_in {
        Some(dir) => Some(map_deleted_library(dir)?),
        None => None,
    };
    if let Some(path) = &args.flock_hold {
        let f = File::create(path)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| context(e.into(), "flock"))?;
        held.push(f);
    }
    if let Some(path) = args.flock_wait.clone() {
        let f = File::create(&path)?;
        std::thread::spawn(move || {
            // Blocks until the holder lets go.
            let _ = rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive);
            loop {
                std::thread::park();
            }
        });
    }
    if let Some(name) = &args.comm {
        rustix::thread::set_name(
            &std::ffi::CString::new(name.as_bytes()).map_err(io::Error::other)?,
        )?;
    }
    for _ in 0..args.zombies {
        // SAFETY: the child calls only _exit, which is async-signal-safe, so the
        // locks other threads might hold at the fork do not matter; it is never
        // reaped (that is the point).
        if unsafe { libc::fork() } == 0 {
            // SAFETY: _exit ends the child at once, without running Rust or libc
            // destructors that could touch the parent's state.
            unsafe { libc::_exit(0) };
        }
    }
    let cow_child_pid = match args.cow_child_pages {
        0 => None,
        pages => Some(cow_child(pages)?),
    };
    let pool = std::sync::Arc::new((std::sync::Mutex::new(()), std::sync::Condvar::new()));
    for _ in 0..args.idle_pool {
        let pool = pool.clone();
        std::thread::spawn(move || {
            let (lock, cv) = &*pool;
            let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
            }
        });
    }
    if let (Some(path), Some(rate)) = (&args.map_read, args.map_read_mib_per_s) {
        let file = File::open(path)?;
        let len = file.metadata()?.len() as usize;
        // SAFETY: a fresh read-only shared mapping of a file this process opened; it is
        // never unmapped (the specimen lives until killed), so the pointer stays valid.
        let base = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                rustix::mm::ProtFlags::READ,
                rustix::mm::MapFlags::SHARED,
                &file,
                0,
            )
        }? as usize;
        std::thread::spawn(move || {
            let step = ((rate << 20) as usize / 10).max(4096);
            let mut at = 0;
            while at < len {
                for page in (at..(at + step).min(len)).step_by(4096) {
                    // SAFETY: page < len, inside the mapping made above.
                    let _ = unsafe { std::ptr::read_volatile((base + page) as *const u8) };
                }
                at += step;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            loop {
                std::thread::park();
            }
        });
    }
    if let Some(rate) = args.leak_mib_per_s {
        std::thread::spawn(move || {
            let mut leaked: Vec<Vec<u8>> = Vec::new();
            loop {
                // A tenth of the rate every 100 ms, every page written.
                let mut v = vec![0u8; (rate << 20) as usize / 10];
                for page in v.chunks_mut(4096) {
                    page[0] = 1;
                }
                leaked.push(v);
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
    }
    let deadlocked_tids = match args.deadlock_after_ms {
        Some(ms) => Some(deadlock(std::time::Duration::from_millis(ms))?),
        None => None,
    };
    let report = Report {
        pid: std::process::id(),
        spike_bytes: args.spike_mib << 20,
        open_fds: args.open_fds,
        deleted_file,
        deleted_file_bytes,
        blocker_tid,
        unshared: args.unshare_uts_net,
        deleted_lib,
        cow_child_pid,
        emfile,
        deadlocked_tids,
    };
    serde_json::to_writer(&mut *out, &report).map_err(io::Error::other)?;
    writeln!(out)?;
    out.flush()?;
    // Hold the state until the test closes our stdin.
    let mut line = String::new();
    while io::stdin().lock().read_line(&mut line)? > 0 {
        line.clear();
    }
    drop(held);
    Ok(Status::Ok)
}
