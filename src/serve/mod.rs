//! `syslens serve`: a Prometheus exporter. A small HTTP/1.1 server on std and poll(2)
//! (two routes, no keep-alive): one thread holds every connection, non-blocking and
//! under one deadline each, so that no client, however slow, holds a thread or the
//! accept loop; an async stack would add more code than the server itself for one
//! request per scrape interval. Collection happens on scrape, on a thread of its own,
//! at most one at a time, behind a short cache. The kernel's events (`--events`) are counted
//! by a thread of their own ([`events`]), which each collection copies.

pub mod events;
pub mod metrics;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use events::{EventFeed, EventOptions};
pub use metrics::GroupBy;
use metrics::{Exporter, Options};

/// How the exporter runs: the command line's flags, converted by `cli`.
#[derive(Debug)]
pub struct ServeOptions {
    /// Address to listen on (loopback unless asked otherwise).
    pub listen: SocketAddr,
    /// How processes are grouped.
    pub group_by: GroupBy,
    /// At most this many groups; the smaller ones are folded into "other".
    pub max_groups: u64,
    /// Read command lines (for a regex over them).
    pub cmdline: bool,
    /// Export PSS only for processes with at most this RSS.
    pub pss_rss_guard: Option<u64>,
    /// Serve a collection this recent instead of collecting again.
    pub cache: Duration,
    /// Re-read maps, limits and namespaces at most this often.
    pub slow_every: Duration,
    /// Connections held at once.
    pub max_connections: u64,
    /// An address's share when all connections are taken.
    pub max_per_peer: u64,
    /// A request head must arrive whole within this time of connecting.
    pub request_timeout: Duration,
    /// The event kinds counted (`--events`, checked by [`events::check_kinds`]).
    pub events: Vec<&'static str>,
}

/// Longest request head accepted; a scrape sends a few hundred bytes.
const MAX_HEAD: usize = 8 << 10;
/// Most input discarded after an error answer before closing anyway.
const MAX_DRAIN: usize = 256 << 10;
/// The longest the loop sleeps, so that it notices SIGTERM.
const TICK: Duration = Duration::from_millis(200);
/// Connections accepted per turn of the loop, so that a flood of new ones cannot keep
/// the loop from the ones it holds.
const ACCEPT_BATCH: usize = 64;
const TEXT: &str = "text/plain; charset=utf-8";

/// Serves until SIGTERM or SIGINT, then returns after the requests in flight finish.
///
/// One thread holds every connection, non-blocking, under poll(2): a client that
/// trickles or idles costs a file descriptor and the bytes it sent, never a thread,
/// and nothing a client does keeps the loop from accepting. Collections run on a
/// thread of their own.
///
/// With event kinds asked for, `events` (a reader of its own) feeds the event counter
/// thread, which stops with the exporter.
pub fn run(
    args: ServeOptions,
    reader: syslens_probe::Reader,
    events: Option<syslens_probe::Reader>,
    err: &mut dyn Write,
) -> io::Result<()> {
    let group_by = args.group_by.clone();
    let mut exporter = Exporter::new(
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
    listener.set_nonblocking(true)?;
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
    let mut feed = None;
    if let Some(reader) = events.filter(|_| !args.events.is_empty()) {
        let opts = EventOptions {
            kinds: args.events.clone(),
            group_by: args.group_by.clone(),
            max_groups: args.max_groups as usize,
            cmdline: args.cmdline,
        };
        let (started, said) = EventFeed::start(opts, reader, Arc::clone(&stop))?;
        // After the line that names the address, which scripts wait for; stderr may
        // be closed by then (a test that read only that line): the exporter goes on.
        for line in said {
            let _ = writeln!(err, "syslens: {line}");
        }
        exporter = exporter.with_events(&started);
        feed = Some(started);
    }
    let mut collector = Collector::start(exporter)?;
    let mut server = Server {
        conns: Vec::new(),
        cache: Cache {
            fresh_for: args.cache,
            text: None,
            openmetrics: None,
        },
        request_timeout: args.request_timeout,
        max_connections: args.max_connections as usize,
        max_per_peer: args.max_per_peer as usize,
    };
    let mut stopping: Option<Instant> = None;
    // Out of file descriptors, the listener stays readable: polling it again at once
    // would spin, so accepting pauses.
    let mut accept_after = Instant::now();
    loop {
        let now = Instant::now();
        if stopping.is_none() && stop.load(Ordering::Relaxed) {
            stopping = Some(now);
            // A request sent before the signal is in flight whether or not it was read
            // yet: take one batch of what the backlog holds and read what every
            // connection has been sent, then let go of those that sent nothing.
            server.accept_batch(&listener, now);
            server.read_sent(now);
            server.drop_idle();
        }
        if let Some(since) = stopping {
            let grace = args.request_timeout + Duration::from_secs(5);
            if server.conns.is_empty() || now >= since + grace {
                break;
            }
        }
        let accepting = stopping.is_none() && now >= accept_after;
        let resume = (stopping.is_none() && !accepting).then_some(accept_after);
        let wait = [server.next_deadline(), resume]
            .into_iter()
            .flatten()
            .min()
            .map_or(TICK, |t| t.saturating_duration_since(now).min(TICK));
        let ready = server.poll(accepting.then_some(&listener), &collector.wake, wait)?;
        let now = Instant::now();
        if ready.wake {
            for done in collector.finished()? {
                server.collected(done, now);
            }
        }
        for i in ready.conns {
            server.progress(i, now);
        }
        server.expire(now);
        server.conns.retain(|c| !c.is_closed());
        if ready.listener {
            if let Some(pause) = server.accept_batch(&listener, now) {
                accept_after = now + pause;
            }
        }
        if let Some(openmetrics) = server.next_collection(collector.busy) {
            collector.ask(openmetrics)?;
        }
    }
    if let Some(f) = feed {
        f.join();
    }
    writeln!(err, "syslens: stopped")?;
    Ok(())
}

/// A collection done on the collector thread.
struct Collected {
    openmetrics: bool,
    started: Instant,
    body: Arc<String>,
}

/// The exporter on a thread of its own, so a collection (tens of milliseconds) never
/// holds up a connection. It collects one format when asked and writes a byte to
/// `wake` when done, which ends the loop's poll.
struct Collector {
    ask: mpsc::Sender<bool>,
    done: mpsc::Receiver<Collected>,
    wake: UnixStream,
    busy: bool,
}

impl Collector {
    fn start(mut exporter: Exporter) -> io::Result<Collector> {
        let (ask, asked) = mpsc::channel::<bool>();
        let (finish, done) = mpsc::channel();
        let (wake, waker) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        waker.set_nonblocking(true)?;
        std::thread::Builder::new()
            .name("syslens-collect".into())
            .spawn(move || {
                for openmetrics in asked {
                    let started = Instant::now();
                    let body = Arc::new(exporter.collect(openmetrics));
                    let collected = Collected {
                        openmetrics,
                        started,
                        body,
                    };
                    if finish.send(collected).is_err() {
                        break;
                    }
                    // A full socket already holds a wake-up the loop has yet to read.
                    let _ = (&waker).write(&[1]);
                }
            })?;
        Ok(Collector {
            ask,
            done,
            wake,
            busy: false,
        })
    }

    fn ask(&mut self, openmetrics: bool) -> io::Result<()> {
        self.ask
            .send(openmetrics)
            .map_err(|_| collector_stopped())?;
        self.busy = true;
        Ok(())
    }

    /// The collections done since the last call; an error once the thread is gone.
    fn finished(&mut self) -> io::Result<Vec<Collected>> {
        let mut sink = [0u8; 64];
        while let Ok(1..) = (&self.wake).read(&mut sink) {}
        let mut done = Vec::new();
        loop {
            match self.done.try_recv() {
                Ok(c) => {
                    self.busy = false;
                    done.push(c);
                }
                Err(mpsc::TryRecvError::Empty) => return Ok(done),
                Err(mpsc::TryRecvError::Disconnected) => return Err(collector_stopped()),
            }
        }
    }
}

fn collector_stopped() -> io::Error {
    io::Error::other("the collector thread stopped")
}

/// The latest collection per format, with the time it started.
struct Cache {
    fresh_for: Duration,
    text: Option<(Instant, Arc<String>)>,
    openmetrics: Option<(Instant, Arc<String>)>,
}

impl Cache {
    /// The latest collection in this format, if it serves a request that arrived at
    /// `arrived`: fresh, or started after the request arrived (as fresh as one of its
    /// own, so even with `--cache 0` a burst of scrapers costs one collection).
    fn serves(&self, openmetrics: bool, arrived: Instant) -> Option<Arc<String>> {
        let slot = if openmetrics {
            &self.openmetrics
        } else {
            &self.text
        };
        let (started, body) = slot.as_ref()?;
        (*started >= arrived || started.elapsed() < self.fresh_for).then(|| Arc::clone(body))
    }

    fn store(&mut self, done: Collected) {
        let slot = if done.openmetrics {
            &mut self.openmetrics
        } else {
            &mut self.text
        };
        *slot = Some((done.started, done.body));
    }
}

/// Every connection held, and the bounds on them.
struct Server {
    conns: Vec<Conn>,
    cache: Cache,
    request_timeout: Duration,
    max_connections: usize,
    max_per_peer: usize,
}

/// What one poll found ready.
#[derive(Default)]
struct Ready {
    wake: bool,
    listener: bool,
    /// Indices into `Server::conns`.
    conns: Vec<usize>,
}

impl Server {
    fn poll(
        &self,
        listener: Option<&TcpListener>,
        wake: &UnixStream,
        wait: Duration,
    ) -> io::Result<Ready> {
        use rustix::event::{PollFd, PollFlags};
        let mut fds = Vec::with_capacity(self.conns.len() + 2);
        fds.push(PollFd::new(wake, PollFlags::IN));
        if let Some(l) = listener {
            fds.push(PollFd::new(l, PollFlags::IN));
        }
        let first = fds.len();
        let mut owners = Vec::with_capacity(self.conns.len());
        for (i, c) in self.conns.iter().enumerate() {
            if let Some(flags) = c.interest() {
                fds.push(PollFd::new(&c.stream, flags));
                owners.push(i);
            }
        }
        let timeout = rustix::event::Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok(Ready::default()),
            Err(e) => return Err(e.into()),
        }
        Ok(Ready {
            wake: !fds[0].revents().is_empty(),
            listener: listener.is_some() && !fds[1].revents().is_empty(),
            conns: fds[first..]
                .iter()
                .zip(owners)
                .filter(|(fd, _)| !fd.revents().is_empty())
                .map(|(_, i)| i)
                .collect(),
        })
    }

    fn progress(&mut self, i: usize, now: Instant) {
        self.conns[i].progress(&self.cache, now);
    }

    /// Takes a new connection, reads what it sent already (a scraper's request usually
    /// is there), and makes room for it within the bounds.
    fn admit(&mut self, stream: TcpStream, peer: IpAddr, now: Instant) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        // An answer's head and body are two writes: the body must not wait for an ACK.
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            stream,
            peer,
            since: now,
            deadline: now + self.request_timeout,
            peer_closed: false,
            phase: Phase::Head(Vec::new()),
        };
        conn.progress(&self.cache, now);
        if conn.is_closed() {
            return;
        }
        if self.conns.len() >= self.max_connections && !self.make_room(peer) {
            conn.answer_and_close(503, "every connection is waiting for a collection\n");
            return;
        }
        self.conns.push(conn);
    }

    /// Makes room for a new connection from `peer` when every one is taken: from the
    /// addresses that hold more than `--max-per-peer` (the newcomer counted), so that
    /// one address cannot push out the others, else from any. Whether one was let go.
    fn make_room(&mut self, peer: IpAddr) -> bool {
        let mut held: HashMap<IpAddr, usize> = HashMap::from([(peer, 1)]);
        for c in self.conns.iter().filter(|c| c.displace_order().is_some()) {
            *held.entry(c.peer).or_default() += 1;
        }
        let share = self.max_per_peer;
        self.displace(|c| held.get(&c.peer).is_some_and(|&n| n > share)) || self.displace(|_| true)
    }

    /// Lets go of the connection among `which` that has waited longest: one drained
    /// after an error first, then one that sent no request or does not read its
    /// answer. Connections waiting for a collection stay. Whether one was let go.
    fn displace(&mut self, which: impl Fn(&Conn) -> bool) -> bool {
        let oldest = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| which(c))
            .filter_map(|(i, c)| Some((c.displace_order()?, i)))
            .min();
        let Some((_, i)) = oldest else { return false };
        self.conns.swap_remove(i).displace();
        true
    }

    /// A collection is done: answers every request it serves.
    fn collected(&mut self, done: Collected, now: Instant) {
        let format = done.openmetrics;
        self.cache.store(done);
        for c in &mut self.conns {
            let Phase::Wait {
                openmetrics,
                with_body,
                arrived,
            } = c.phase
            else {
                continue;
            };
            if openmetrics != format {
                continue;
            }
            if let Some(body) = self.cache.serves(openmetrics, arrived) {
                // The collection may have taken a while: the answer gets its own time.
                c.deadline = now + self.request_timeout;
                c.answer(200, metrics_kind(openmetrics), body, with_body);
            }
        }
    }

    /// The format to collect next, for the request waiting longest, unless a
    /// collection is running.
    fn next_collection(&self, busy: bool) -> Option<bool> {
        if busy {
            return None;
        }
        self.conns
            .iter()
            .filter_map(|c| match c.phase {
                Phase::Wait {
                    openmetrics,
                    arrived,
                    ..
                } => Some((arrived, openmetrics)),
                _ => None,
            })
            .min()
            .map(|(_, openmetrics)| openmetrics)
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().filter_map(Conn::deadline).min()
    }

    fn expire(&mut self, now: Instant) {
        for c in &mut self.conns {
            if c.deadline().is_some_and(|d| d <= now) {
                c.expire();
            }
        }
    }

    /// Accepts up to [`ACCEPT_BATCH`] waiting connections; how long to pause accepting
    /// when the process is out of file descriptors or buffers.
    fn accept_batch(&mut self, listener: &TcpListener, now: Instant) -> Option<Duration> {
        for _ in 0..ACCEPT_BATCH {
            match listener.accept() {
                Ok((stream, peer)) => self.admit(stream, peer.ip().to_canonical(), now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // The client gave up before it was taken: take the next.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                    ) => {}
                // EMFILE, ENFILE, ENOBUFS: try again once some are released.
                Err(_) => return Some(Duration::from_millis(100)),
            }
        }
        None
    }

    /// Reads what each connection still reading its request has been sent.
    fn read_sent(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            if matches!(self.conns[i].phase, Phase::Head(_)) {
                self.progress(i, now);
            }
        }
    }

    /// On SIGTERM: lets go of the connections that sent nothing, or are drained after
    /// an error; one that sent part of a request keeps its deadline.
    fn drop_idle(&mut self) {
        for c in &mut self.conns {
            if c.sent_nothing() {
                c.close();
            }
        }
        self.conns.retain(|c| !c.is_closed());
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The method (GET, HEAD; others are refused).
    pub method: String,
    /// The path asked for, as sent.
    pub path: String,
    /// Accept asks for the OpenMetrics exposition format rather than Prometheus text.
    pub openmetrics: bool,
}

/// Why a request head was refused, with the status to answer.
#[derive(Debug, PartialEq, Eq)]
pub enum BadRequest {
    /// Not an HTTP/1.x request head: what is wrong with it (400).
    Malformed(&'static str),
    /// The head grew past `MAX_HEAD` bytes without ending (431).
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

/// One client connection, non-blocking.
struct Conn {
    stream: TcpStream,
    peer: IpAddr,
    /// When the current phase began: who waited longest is displaced first.
    since: Instant,
    /// Reading the head, answering it and draining after an error answer all end
    /// here, one deadline from the connect; an answer after a collection gets its own.
    deadline: Instant,
    /// The client closed its side: there is nothing to drain.
    peer_closed: bool,
    phase: Phase,
}

enum Phase {
    /// Reading the request head: the bytes so far.
    Head(Vec<u8>),
    /// A /metrics request waiting for a collection.
    Wait {
        openmetrics: bool,
        with_body: bool,
        arrived: Instant,
    },
    /// Writing the answer (head, then body) from `sent`.
    Send {
        head: Vec<u8>,
        body: Arc<String>,
        sent: usize,
        /// An error answer: drain the input afterwards.
        drain: bool,
    },
    /// After an error answer, discarding input until the client closes, up to `left`
    /// more bytes: closing a socket with unread input sends a reset, which can reach
    /// the client before the answer does.
    Drain {
        left: usize,
    },
    Closed,
}

impl Conn {
    fn interest(&self) -> Option<rustix::event::PollFlags> {
        use rustix::event::PollFlags;
        match self.phase {
            Phase::Head(_) | Phase::Drain { .. } => Some(PollFlags::IN),
            Phase::Send { .. } => Some(PollFlags::OUT),
            Phase::Wait { .. } | Phase::Closed => None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.interest().map(|_| self.deadline)
    }

    fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// No byte of a request read, or drained after an error.
    fn sent_nothing(&self) -> bool {
        match &self.phase {
            Phase::Head(head) => head.is_empty(),
            Phase::Drain { .. } => true,
            _ => false,
        }
    }

    /// Which connection to let go first for a newer one: drained ones, then the one
    /// in its phase the longest; None for those waiting for a collection.
    fn displace_order(&self) -> Option<(u8, Instant)> {
        match self.phase {
            Phase::Drain { .. } => Some((0, self.since)),
            Phase::Head(_) | Phase::Send { .. } => Some((1, self.since)),
            Phase::Wait { .. } | Phase::Closed => None,
        }
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.since = Instant::now();
    }

    /// Reads or writes what the socket allows now.
    fn progress(&mut self, cache: &Cache, now: Instant) {
        match self.phase {
            Phase::Head(_) => self.read_head(cache, now),
            Phase::Send { .. } => self.write_answer(),
            Phase::Drain { .. } => self.drain(),
            Phase::Wait { .. } | Phase::Closed => {}
        }
    }

    fn read_head(&mut self, cache: &Cache, now: Instant) {
        let Phase::Head(head) = &mut self.phase else {
            return;
        };
        let mut chunk = [0u8; 4096];
        let request = loop {
            match (&self.stream).read(&mut chunk) {
                Ok(0) => {
                    self.peer_closed = true;
                    break Err(BadRequest::Malformed("connection closed mid-request"));
                }
                Ok(n) => {
                    let from = head.len().saturating_sub(3);
                    head.extend_from_slice(&chunk[..n]);
                    if let Some(end) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
                        head.truncate(from + end);
                        break parse_request(head);
                    }
                    if head.len() > MAX_HEAD {
                        break Err(BadRequest::TooLarge);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.phase = Phase::Closed;
                    return;
                }
            }
        };
        self.request(request, cache, now);
    }

    /// Answers a whole request head, or one that can never be whole.
    fn request(&mut self, request: Result<Request, BadRequest>, cache: &Cache, now: Instant) {
        let r = match request {
            Ok(r) => r,
            Err(BadRequest::TooLarge) => {
                return self.answer(431, TEXT, text("request head too large\n"), true)
            }
            Err(BadRequest::Malformed(why)) => {
                return self.answer(400, TEXT, text(format!("malformed request: {why}\n")), true)
            }
        };
        if r.method != "GET" && r.method != "HEAD" {
            return self.answer(405, TEXT, text("only GET and HEAD\n"), true);
        }
        let with_body = r.method == "GET";
        match r.path.as_str() {
            "/metrics" => match cache.serves(r.openmetrics, now) {
                Some(body) => self.answer(200, metrics_kind(r.openmetrics), body, with_body),
                None => self.enter(Phase::Wait {
                    openmetrics: r.openmetrics,
                    with_body,
                    arrived: now,
                }),
            },
            "/" => self.answer(200, "text/html; charset=utf-8", text(INDEX), with_body),
            _ => self.answer(404, TEXT, text("not found: try /metrics\n"), with_body),
        }
    }

    fn answer(&mut self, status: u16, kind: &str, body: Arc<String>, with_body: bool) {
        self.enter(Phase::Send {
            head: answer_head(status, kind, body.len()).into_bytes(),
            body: if with_body { body } else { Arc::default() },
            sent: 0,
            drain: status >= 400,
        });
        self.write_answer();
    }

    fn write_answer(&mut self) {
        let Phase::Send {
            head,
            body,
            sent,
            drain,
        } = &mut self.phase
        else {
            return;
        };
        loop {
            let part = match sent.checked_sub(head.len()) {
                None => &head[*sent..],
                Some(at) => &body.as_bytes()[at..],
            };
            if part.is_empty() {
                break;
            }
            match (&self.stream).write(part) {
                Ok(n @ 1..) => *sent += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Ok(0) | Err(_) => {
                    self.phase = Phase::Closed;
                    return;
                }
            }
        }
        let drain = *drain && !self.peer_closed;
        let _ = self.stream.shutdown(Shutdown::Write);
        if drain {
            self.enter(Phase::Drain { left: MAX_DRAIN });
            self.drain();
        } else {
            self.close();
        }
    }

    fn drain(&mut self) {
        let Phase::Drain { left } = &mut self.phase else {
            return;
        };
        let mut sink = [0u8; 4096];
        loop {
            match (&self.stream).read(&mut sink) {
                Ok(n @ 1..) if n < *left => *left -= n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client closed, the cap is reached, or the socket failed.
                _ => {
                    self.phase = Phase::Closed;
                    return;
                }
            }
        }
    }

    /// At the deadline: a head still incomplete gets 408; an answer the client does
    /// not read, or a drain, ends.
    fn expire(&mut self) {
        match self.phase {
            Phase::Head(_) => self.answer_and_close(
                408,
                "request timed out: send the whole request head within --request-timeout\n",
            ),
            Phase::Send { .. } | Phase::Drain { .. } => self.close(),
            Phase::Wait { .. } | Phase::Closed => {}
        }
    }

    /// Lets go of this connection to make room for a newer one.
    fn displace(mut self) {
        if let Phase::Head(_) = self.phase {
            self.answer_and_close(
                503,
                "too many connections: this one had sent no request for the longest\n",
            );
        } else {
            self.close();
        }
    }

    /// One attempt at a short answer that never waits for the client, then close.
    fn answer_and_close(&mut self, status: u16, body: &str) {
        let answer = answer_head(status, TEXT, body.len()) + body;
        let _ = (&self.stream).write(answer.as_bytes());
        let _ = self.stream.shutdown(Shutdown::Write);
        self.close();
    }

    /// Discards the input already there, so that closing sends FIN rather than a reset
    /// that could overtake the answer, then closes (when dropped).
    fn close(&mut self) {
        let mut sink = [0u8; 4096];
        for _ in 0..16 {
            if !matches!((&self.stream).read(&mut sink), Ok(1..)) {
                break;
            }
        }
        self.phase = Phase::Closed;
    }
}

fn text(body: impl Into<String>) -> Arc<String> {
    Arc::new(body.into())
}

fn metrics_kind(openmetrics: bool) -> &'static str {
    if openmetrics {
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    } else {
        "text/plain; version=0.0.4; charset=utf-8"
    }
}

fn answer_head(status: u16, kind: &str, length: usize) -> String {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n")
}

const INDEX: &str = "<!doctype html><html><head><title>syslens exporter</title></head><body>\
<h1>syslens exporter</h1><p>Per process group: peak memory, rlimit usage, deleted libraries, \
signal dispositions. Per cgroup: working set, peak, OOM kills, throttling. System: buddy \
fragmentation, slab caches, namespace sets. The kernel's events: OOM kills, fatal signals, \
exits, EMFILE.</p><p><a href=\"/metrics\">/metrics</a></p></body></html>\n";

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
