//! `syslens serve`: a Prometheus exporter. A small blocking HTTP/1.1 server on std
//! (two routes, no keep-alive, a bounded number of handler threads): an async stack
//! would add more code than the server itself for one request per scrape interval.
//! Collection happens on scrape, at most one at a time, behind a short cache.

pub mod metrics;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use regex::Regex;

use metrics::{Exporter, GroupBy, Options};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GroupKey {
    /// The command name (comm).
    Comm,
    /// The memory cgroup (v1) or unified cgroup (v2).
    Cgroup,
    /// One group per process, labelled comm/pid (high cardinality: opt-in).
    Pid,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on. Loopback by default; any other address exposes
    /// process names and limits to whoever can reach it.
    #[arg(long, default_value = "127.0.0.1:9105")]
    pub listen: SocketAddr,
    /// How processes are grouped.
    #[arg(
        long,
        value_enum,
        default_value = "comm",
        conflicts_with = "group_regex"
    )]
    pub group_by: GroupKey,
    /// Group by the first capture group of this regex over the command name (or the
    /// command line with --cmdline); processes that do not match go to "other".
    #[arg(long, value_name = "REGEX")]
    pub group_regex: Option<Regex>,
    /// Export at most this many groups; the smaller ones are folded into "other".
    #[arg(long, default_value = "50", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_groups: u64,
    /// Read command lines for --group-regex (they can hold secrets: off by default).
    #[arg(long)]
    pub cmdline: bool,
    /// Export PSS from smaps_rollup, only for processes with at most this RSS (reading
    /// smaps stalls the target's memory map for a time that grows with its size).
    #[arg(long, value_name = "SIZE", value_parser = metrics::parse_size)]
    pub pss_rss_guard: Option<u64>,
    /// Serve a collection this recent instead of collecting again (seconds).
    #[arg(long, default_value = "1", value_parser = crate::cli::parse_seconds)]
    pub cache: Duration,
    /// Re-read maps, limits and namespaces of every process at most this often.
    #[arg(long, default_value = "60", value_parser = crate::cli::parse_seconds)]
    pub slow_every: Duration,
    /// Requests handled at once; more get 503 at once.
    #[arg(long, default_value = "64", value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub max_connections: u64,
    /// A request must arrive whole within this time, or it gets 408.
    #[arg(long, default_value = "5", value_parser = crate::cli::parse_seconds)]
    pub request_timeout: Duration,
}

/// The latest collection per format (with the time it started), and the exporter.
struct Cache {
    exporter: Exporter,
    text: Option<(Instant, Arc<String>)>,
    openmetrics: Option<(Instant, Arc<String>)>,
}

struct Shared {
    cache: Mutex<Cache>,
    fresh_for: Duration,
    request_timeout: Duration,
    in_flight: AtomicUsize,
}

/// One request being handled; the count drops when it is dropped, also should the
/// handler panic or its thread fail to start.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn take(shared: Arc<Shared>) -> InFlight {
        shared.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Longest request head accepted; a scrape sends a few hundred bytes.
const MAX_HEAD: usize = 8 << 10;

/// Serves until SIGTERM or SIGINT, then returns after the requests in flight finish.
pub fn run(args: ServeArgs, reader: syslens_probe::Reader, err: &mut dyn Write) -> io::Result<()> {
    let group_by = match (&args.group_regex, args.group_by) {
        (Some(re), _) => GroupBy::Regex(re.clone()),
        (None, GroupKey::Comm) => GroupBy::Comm,
        (None, GroupKey::Cgroup) => GroupBy::Cgroup,
        (None, GroupKey::Pid) => GroupBy::Pid,
    };
    let exporter = Exporter::new(
        Options {
            group_by,
            max_groups: args.max_groups as usize,
            cmdline: args.cmdline,
            pss_max_rss: args.pss_rss_guard,
            slow_every: args.slow_every,
        },
        reader,
    );
    // Each process's cheap-tier files stay open between scrapes (ScanOptions::keep_open).
    syslens_probe::table::raise_fd_limit();
    let listener = TcpListener::bind(args.listen)?;
    if !args.listen.ip().is_loopback() {
        writeln!(err, "syslens: listening on {}, not loopback: process names and limits are visible to anyone who can reach it", args.listen)?;
    }
    writeln!(
        err,
        "syslens: serving http://{}/metrics",
        listener.local_addr()?
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [libc::SIGTERM, libc::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let shared = Arc::new(Shared {
        cache: Mutex::new(Cache {
            exporter,
            text: None,
            openmetrics: None,
        }),
        fresh_for: args.cache,
        request_timeout: args.request_timeout,
        in_flight: AtomicUsize::new(0),
    });
    let max = args.max_connections as usize;
    while !stop.load(Ordering::Relaxed) {
        // Wake up periodically to notice the stop flag.
        let mut fds = [rustix::event::PollFd::new(
            &listener,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(
            &mut fds,
            Some(&rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: 200_000_000,
            }),
        ) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        if shared.in_flight.load(Ordering::Acquire) >= max {
            let _ = respond(
                &stream,
                503,
                "text/plain; charset=utf-8",
                b"too many concurrent requests\n",
                true,
            );
            continue;
        }
        let slot = InFlight::take(Arc::clone(&shared));
        let spawned = std::thread::Builder::new()
            .name("syslens-http".into())
            .spawn(move || handle(&slot.0, &stream));
        if spawned.is_err() {
            writeln!(err, "syslens: cannot start a request thread")?;
        }
    }
    let deadline = Instant::now() + args.request_timeout + Duration::from_secs(5);
    while shared.in_flight.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    writeln!(err, "syslens: stopped")?;
    Ok(())
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub openmetrics: bool,
}

/// Why a request head was refused, with the status to answer.
#[derive(Debug, PartialEq, Eq)]
pub enum BadRequest {
    Malformed(&'static str),
    TooLarge,
}

/// Parses an HTTP/1.x request head. Only the request line and Accept matter here.
pub fn parse_request(head: &[u8]) -> Result<Request, BadRequest> {
    let text = std::str::from_utf8(head).map_err(|_| BadRequest::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(BadRequest::Malformed("bad request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(BadRequest::Malformed("bad request line"));
    }
    let mut openmetrics = false;
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(BadRequest::Malformed("bad header line"))?;
        if name.eq_ignore_ascii_case("accept") && value.contains("application/openmetrics-text") {
            openmetrics = true;
        }
    }
    let path = target.split('?').next().unwrap_or(target).to_owned();
    Ok(Request {
        method: method.to_owned(),
        path,
        openmetrics,
    })
}

/// Reads the request head within the request timeout, however the bytes trickle in.
fn read_head(mut stream: &TcpStream, timeout: Duration) -> Result<Vec<u8>, Option<BadRequest>> {
    let deadline = Instant::now() + timeout;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Err(None);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return Err(Some(BadRequest::Malformed("connection closed mid-request"))),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(None),
        }
        if let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > MAX_HEAD {
            return Err(Some(BadRequest::TooLarge));
        }
    }
}

fn handle(shared: &Shared, stream: &TcpStream) {
    let _ = stream.set_write_timeout(Some(shared.request_timeout));
    let request = match read_head(stream, shared.request_timeout) {
        Ok(head) => parse_request(&head),
        Err(None) => {
            let _ = respond(
                stream,
                408,
                "text/plain; charset=utf-8",
                b"request timed out: send the whole request head within --request-timeout\n",
                true,
            );
            return;
        }
        Err(Some(bad)) => Err(bad),
    };
    let r = match request {
        Ok(r) => r,
        Err(BadRequest::TooLarge) => {
            let _ = respond(
                stream,
                431,
                "text/plain; charset=utf-8",
                b"request head too large\n",
                true,
            );
            return;
        }
        Err(BadRequest::Malformed(why)) => {
            let _ = respond(
                stream,
                400,
                "text/plain; charset=utf-8",
                format!("malformed request: {why}\n").as_bytes(),
                true,
            );
            return;
        }
    };
    let with_body = r.method != "HEAD";
    if r.method != "GET" && r.method != "HEAD" {
        let _ = respond(
            stream,
            405,
            "text/plain; charset=utf-8",
            b"only GET and HEAD\n",
            true,
        );
        return;
    }
    let _ = match r.path.as_str() {
        "/metrics" => {
            let body = scrape(shared, r.openmetrics);
            let kind = if r.openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                "text/plain; version=0.0.4; charset=utf-8"
            };
            respond(stream, 200, kind, body.as_bytes(), with_body)
        }
        "/" => respond(
            stream,
            200,
            "text/html; charset=utf-8",
            INDEX.as_bytes(),
            with_body,
        ),
        _ => respond(
            stream,
            404,
            "text/plain; charset=utf-8",
            b"not found: try /metrics\n",
            with_body,
        ),
    };
}

/// The cached collection when fresh, else a new one. The lock makes concurrent
/// scrapes wait for one collection and share it: a collection that started after a
/// request arrived is as fresh as one of its own, so even with `--cache 0` a burst of
/// scrapers costs one collection, not one each.
fn scrape(shared: &Shared, openmetrics: bool) -> Arc<String> {
    let arrived = Instant::now();
    let mut cache = shared
        .cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let slot = if openmetrics {
        &cache.openmetrics
    } else {
        &cache.text
    };
    if let Some((started, body)) = slot {
        if *started >= arrived || started.elapsed() < shared.fresh_for {
            return Arc::clone(body);
        }
    }
    let started = Instant::now();
    let body = Arc::new(cache.exporter.collect(openmetrics));
    let entry = Some((started, Arc::clone(&body)));
    if openmetrics {
        cache.openmetrics = entry;
    } else {
        cache.text = entry;
    }
    body
}

fn respond(
    mut stream: &TcpStream,
    status: u16,
    kind: &str,
    body: &[u8],
    with_body: bool,
) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    let head = format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
    stream.write_all(head.as_bytes())?;
    if with_body {
        stream.write_all(body)?;
    }
    stream.flush()?;
    if status >= 400 {
        linger(stream);
    }
    Ok(())
}

/// Closes after an error without losing the answer: closing a socket with unread
/// input sends a reset, which can reach the client before the response does. So
/// half-close, then drain what the client still sends, briefly.
fn linger(mut stream: &TcpStream) {
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 4096];
    let mut left: usize = 256 << 10;
    while let Ok(n @ 1..) = stream.read(&mut sink) {
        left = left.saturating_sub(n);
        if left == 0 {
            break;
        }
    }
}

const INDEX: &str = "<!doctype html><html><head><title>syslens exporter</title></head><body>\
<h1>syslens exporter</h1><p>Per process group: peak memory, rlimit usage, deleted libraries, \
signal dispositions. Per cgroup: working set, peak, OOM kills, throttling. System: buddy \
fragmentation, slab caches, namespace sets.</p><p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scrape() {
        let r = parse_request(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5").unwrap();
        assert_eq!(
            r,
            Request {
                method: "GET".into(),
                path: "/metrics".into(),
                openmetrics: true
            }
        );
        assert!(!parse_request(b"GET / HTTP/1.0").unwrap().openmetrics);
    }

    #[test]
    fn refuses_malformed_heads() {
        for head in [
            &b""[..],
            b"GET",
            b"GET /metrics",
            b"GET metrics HTTP/1.1",
            b"GET / HTTP/2 x",
            b"GET / HTTP/1.1\r\nno colon",
            b"\xff\xfe / HTTP/1.1",
        ] {
            assert!(
                matches!(parse_request(head), Err(BadRequest::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }
}
