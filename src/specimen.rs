//! A process with known state, started by syslens's own tests as `syslens __specimen`
//! so that `inspect` can be checked against what the process really did. It reports
//! what it did as one JSON line on stdout, then waits until stdin closes.

use std::fs::File;
use std::io::{self, BufRead, Write};
use std::sync::mpsc;

use serde::Serialize;

use crate::cli::Status;

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
}

fn check(rc: libc::c_int, what: &str) -> io::Result<()> {
    if rc == -1 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("{what}: {e}")));
    }
    Ok(())
}

pub fn run(args: SpecimenArgs, out: &mut dyn Write) -> io::Result<Status> {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number; no memory is passed.
    check(
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) },
        "prctl",
    )?;
    // Namespaces first, while single-threaded: unshare applies to the calling thread.
    if args.unshare_uts_net {
        // SAFETY: plain syscalls without pointers beyond the hostname slice.
        check(
            unsafe { libc::unshare(libc::CLONE_NEWUTS | libc::CLONE_NEWNET) },
            "unshare",
        )?;
        let name = b"syslens-specimen";
        check(
            unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) },
            "sethostname",
        )?;
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
    let mut held = Vec::new();
    for _ in 0..args.open_fds {
        held.push(File::open("/dev/null")?);
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
            // SAFETY: gettid has no arguments.
            let _ = tx.send(unsafe { libc::gettid() });
            loop {
                std::thread::park();
            }
        });
        blocker_tid = rx.recv().ok();
    }
    let report = Report {
        pid: std::process::id(),
        spike_bytes: args.spike_mib << 20,
        open_fds: args.open_fds,
        deleted_file,
        deleted_file_bytes,
        blocker_tid,
        unshared: args.unshare_uts_net,
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
