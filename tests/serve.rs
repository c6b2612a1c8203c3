//! `syslens serve` against the live kernel: the exposition read back by promtool, the
//! HTTP edge cases (stalled and malformed requests, SIGTERM), and a real Prometheus
//! server scraping it, querying the peak-RSS series and firing an alerting rule.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// A running `syslens serve` on an ephemeral loopback port; killed when dropped.
pub(crate) struct Serve {
    pub(crate) child: Child,
    pub(crate) port: u16,
}

impl Serve {
    pub(crate) fn start(extra: &[&str]) -> Serve {
        Serve::start_with(syslens(), extra)
    }

    fn start_with(mut cmd: Command, extra: &[&str]) -> Serve {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("syslens: serving http://127.0.0.1:")
            .and_then(|s| s.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Serve { child, port }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP exchange: (status, body); an error when nothing listens yet.
fn try_exchange(port: u16, request: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(request.as_bytes())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

fn exchange(port: u16, request: &str) -> (u16, String) {
    try_exchange(port, request).unwrap()
}

fn try_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    try_exchange(
        port,
        &format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    )
}

pub(crate) fn get(port: u16, path: &str) -> (u16, String) {
    try_get(port, path).unwrap()
}

/// The value of the sample `name{labels}` in an exposition.
fn sample(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// A copy of the syslens binary under `name`, so a specimen started from it has a
/// command name (and so a group) of its own.
fn binary_named(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(env!("CARGO_BIN_EXE_syslens"), &path).unwrap();
    path
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

#[test]
fn exposition_passes_promtool_and_reports_the_peak() {
    let dir = tempfile::tempdir().unwrap();
    // Under prlimit (util-linux), with a finite RLIMIT_AS, so the address-space ratio
    // has a known denominator.
    let bin = binary_named(dir.path(), "slpeakgroup");
    let as_limit: u64 = 16 << 30;
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--as={as_limit}"))
        .arg("--memlock=8388608")
        .arg("--")
        .arg(&bin);
    let libs = dir.path().to_str().unwrap().to_owned();
    let specimen = Specimen::start_with(
        cmd,
        &[
            "--spike-mib",
            "48",
            "--ignore-term",
            "--deleted-lib-in",
            &libs,
        ],
    );
    let serve = Serve::start(&["--max-groups", "10000"]);
    let (code, text) = get(serve.port, "/metrics");
    assert_eq!(code, 200);
    let hwm = status_kib(specimen.pid(), "VmHWM:");
    let rss = status_kib(specimen.pid(), "VmRSS:");
    assert!(hwm >= 48 << 20, "the specimen touched 48 MiB: VmHWM {hwm}");
    let peak = sample(
        &text,
        "syslens_group_peak_resident_bytes{group=\"slpeakgroup\"}",
    );
    assert_eq!(
        peak,
        Some(hwm as f64),
        "peak RSS of the group is the specimen's VmHWM"
    );
    let gap = sample(
        &text,
        "syslens_group_below_peak_bytes{group=\"slpeakgroup\"}",
    )
    .unwrap();
    assert!(
        (gap - (hwm - rss) as f64).abs() <= 1024.0 * 1024.0,
        "gap {gap} vs {}",
        hwm - rss
    );
    assert_eq!(
        sample(&text, "syslens_group_processes{group=\"slpeakgroup\"}"),
        Some(1.0)
    );
    assert!(!text.contains("kworker"), "kernel threads share one group");
    let vm_size = status_kib(specimen.pid(), "VmSize:") as f64;
    let as_ratio = sample(
        &text,
        "syslens_group_address_space_limit_ratio{group=\"slpeakgroup\"}",
    )
    .unwrap();
    assert!(
        (as_ratio - vm_size / as_limit as f64).abs() < 1e-3,
        "AS ratio {as_ratio} vs VmSize {vm_size}"
    );
    for family in [
        "syslens_group_deleted_library_processes",
        "syslens_group_sigterm_ignored_processes",
    ] {
        assert_eq!(
            sample(&text, &format!("{family}{{group=\"slpeakgroup\"}}")),
            Some(1.0),
            "{family}"
        );
    }
    let memlock = sample(
        &text,
        "syslens_group_locked_memory_limit_ratio{group=\"slpeakgroup\"}",
    );
    assert_eq!(
        memlock,
        Some(0.0),
        "nothing mlocked, under a finite RLIMIT_MEMLOCK"
    );

    skip_unless!(
        which("promtool").is_some(),
        "promtool not installed (Debian package prometheus)"
    );
    let mut check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openmetrics_on_request_and_no_pid_or_cmdline_by_default() {
    let _specimen = Specimen::start(&["--open-fds", "3"]);
    let serve = Serve::start(&[]);
    let (code, om) = exchange(
        serve.port,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
    );
    assert_eq!(code, 200);
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE syslens_group_minor_faults counter\n"));
    assert!(om.contains("\nsyslens_group_minor_faults_total{"));
    let (_, text) = get(serve.port, "/metrics");
    assert!(
        text.contains("syslens_group_processes{group=\"syslens\"}"),
        "the specimen is grouped by comm"
    );
    assert!(
        !text.contains("{pid=") && !text.contains(",pid=") && !text.contains("__specimen"),
        "no PIDs or command lines by default"
    );
    let folded = sample(&text, "syslens_groups_folded").unwrap();
    let groups = text
        .lines()
        .filter(|l| l.starts_with("syslens_group_processes{"))
        .count();
    assert!(groups <= 50, "default --max-groups is 50, got {groups}");
    assert_eq!(
        folded > 0.0,
        text.contains("syslens_group_processes{group=\"other\"}")
    );
    let (code, index) = get(serve.port, "/");
    assert_eq!(code, 200);
    assert!(index.contains("href=\"/metrics\""));
    assert_eq!(get(serve.port, "/nope").0, 404);
}

#[test]
fn stalled_and_malformed_requests_time_out_without_blocking_scrapes() {
    let mut serve = Serve::start(&["--request-timeout", "2"]);
    let mut stalled = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    stalled.write_all(b"GET /metr").unwrap();
    let started = Instant::now();
    let (code, _) = get(serve.port, "/metrics");
    assert_eq!(code, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a stalled client delayed a scrape"
    );
    let mut answer = String::new();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stalled.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(1900));
    assert_eq!(exchange(serve.port, "\u{1}\u{2} garbage\r\n\r\n").0, 400);
    assert_eq!(
        exchange(serve.port, "POST /metrics HTTP/1.1\r\n\r\n").0,
        405
    );
    assert_eq!(
        exchange(
            serve.port,
            &format!("GET /{} HTTP/1.1\r\n", "a".repeat(20_000))
        )
        .0,
        431
    );
    // SIGTERM: a clean exit with status 0.
    // SAFETY: kill takes a pid and a signal number.
    unsafe { libc::kill(serve.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = serve.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Percent-encodes a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Polls `what` until it returns Some, for up to `limit`.
fn wait_for<T>(limit: Duration, mut what: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(v) = what() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    None
}

#[test]
fn prometheus_scrapes_the_peak_and_the_fd_rule_fires() {
    skip_unless!(
        which("prometheus").is_some(),
        "prometheus not installed (Debian package prometheus)"
    );
    let dir = tempfile::tempdir().unwrap();
    let peak = Specimen::start_with(
        Command::new(binary_named(dir.path(), "slpromPeak")),
        &["--spike-mib", "40"],
    );
    let _fds = Specimen::start_with(
        Command::new(binary_named(dir.path(), "slpromFds")),
        &["--fd-limit", "64", "--open-fds", "57"],
    );
    let serve = Serve::start(&["--max-groups", "10000", "--cache", "0.5"]);
    // The shipped rules, with `for:` shortened so the test sees them fire.
    let rules = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/rules/syslens.rules.yml"
    ))
    .unwrap()
    .lines()
    .map(|l| {
        if l.trim_start().starts_with("for:") {
            "        for: 0s"
        } else {
            l
        }
    })
    .collect::<Vec<_>>()
    .join("\n");
    std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n\
             scrape_configs:\n  - job_name: syslens\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            serve.port
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let mut prom = Command::new("prometheus")
        .current_dir(dir.path())
        .args([
            "--config.file=prometheus.yml".to_owned(),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();
    let query = |q: &str| -> Option<Value> {
        let (code, body) =
            try_get(prom_port, &format!("/api/v1/query?query={}", encode(q))).ok()?;
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    };
    let hwm = status_kib(peak.pid(), "VmHWM:") as f64;
    let series = wait_for(Duration::from_secs(30), || {
        let v = query("syslens_group_peak_resident_bytes{group=\"slpromPeak\"}")?;
        let r = v["data"]["result"].as_array()?.first()?.clone();
        Some(r)
    });
    let alerts = wait_for(Duration::from_secs(30), || {
        let (code, body) = try_get(prom_port, "/api/v1/alerts").ok()?;
        let v: Value = serde_json::from_str(&body).ok().filter(|_| code == 200)?;
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| {
                a["labels"]["group"] == "slpromFds"
                    && a["labels"]["alertname"] == "SyslensOpenFilesNearLimit"
                    && a["state"] == "firing"
            })
            .cloned()
    });
    let _ = prom.kill();
    let _ = prom.wait();
    let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    let series = series.unwrap_or_else(|| panic!("no peak series in Prometheus; its log:\n{log}"));
    let value: f64 = series["value"][1].as_str().unwrap().parse().unwrap();
    assert_eq!(value, hwm, "Prometheus holds the specimen's VmHWM");
    let alert =
        alerts.unwrap_or_else(|| panic!("the fd rule did not fire; Prometheus log:\n{log}"));
    let ratio: f64 = alert["value"].as_str().unwrap().parse().unwrap();
    assert!(ratio > 0.8, "fd ratio {ratio}");
}

#[test]
fn dashboard_and_rules_use_only_exported_metrics() {
    let serve = Serve::start(&[]);
    let (_, text) = get(serve.port, "/metrics");
    let exported: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let names = regex::Regex::new(r"syslens_[a-z_]+").unwrap();
    for file in ["dashboards/syslens.json", "rules/syslens.rules.yml"] {
        let body =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        let mut referenced: Vec<&str> = names.find_iter(&body).map(|m| m.as_str()).collect();
        referenced.sort_unstable();
        referenced.dedup();
        assert!(referenced.len() >= 7, "{file} references {referenced:?}");
        for name in referenced {
            if name == "syslens_slab_cache_bytes" && !is_root() {
                eprintln!("SKIPPED: {name} in {file}: slabinfo needs root");
                continue;
            }
            assert!(
                exported.contains(&name),
                "{file} uses {name}, which syslens serve does not export"
            );
        }
    }
    if which("promtool").is_some() {
        let out = Command::new("promtool")
            .args(["check", "rules"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("rules/syslens.rules.yml"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    } else {
        eprintln!("SKIPPED: promtool check rules: promtool not installed");
    }
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/syslens.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let rows = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "row")
        .count();
    assert!(
        rows >= 10,
        "a row per concept the exporter covers, got {rows}"
    );
}

#[test]
fn as_nobody_unreadable_maps_are_counted_as_unknown_not_zero() {
    if let Err(why) = nobody_can_run() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let _root = Specimen::start_with(Command::new(binary_named(dir.path(), "slrootgroup")), &[]);
    let serve = Serve::start_with(as_nobody(), &["--max-groups", "10000"]);
    let (code, text) = get(serve.port, "/metrics");
    assert_eq!(code, 200);
    assert_eq!(
        sample(
            &text,
            "syslens_group_maps_unreadable_processes{group=\"slrootgroup\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "syslens_group_deleted_library_processes{group=\"slrootgroup\"}"
        ),
        Some(0.0)
    );
    assert!(
        sample(
            &text,
            "syslens_group_peak_resident_bytes{group=\"slrootgroup\"}"
        )
        .unwrap()
            > 0.0,
        "status is world-readable"
    );
    assert!(
        !text.contains("syslens_slab_cache_bytes{"),
        "slabinfo needs root"
    );
    assert!(
        text.contains("syslens_scrape_collector_errors_total{collector=\"process_details\"} 0"),
        "unreadable files are not collector errors"
    );
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines).
fn keyed(path: &Path, key: &str) -> f64 {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {}", path.display()))
}

#[test]
fn cgroup_v2_metrics_come_from_the_recorded_files() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v2");
    let mut cmd = syslens();
    cmd.arg("--root").arg(&fixture);
    let serve = Serve::start_with(cmd, &[]);
    let (code, text) = get(serve.port, "/metrics");
    assert_eq!(code, 200);
    let dir = fixture.join("sys/fs/cgroup/system.slice/nginx.service");
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .unwrap()
            .trim()
            .parse::<f64>()
            .unwrap()
    };
    let cg = |family: &str| {
        sample(
            &text,
            &format!("{family}{{cgroup=\"/system.slice/nginx.service\"}}"),
        )
    };
    assert_eq!(
        cg("syslens_cgroup_memory_usage_bytes"),
        Some(read("memory.current"))
    );
    assert_eq!(
        cg("syslens_cgroup_memory_peak_bytes"),
        Some(read("memory.peak"))
    );
    assert_eq!(
        cg("syslens_cgroup_memory_limit_bytes"),
        Some(read("memory.max"))
    );
    assert_eq!(
        cg("syslens_cgroup_memory_working_set_bytes"),
        Some(read("memory.current") - keyed(&dir.join("memory.stat"), "inactive_file"))
    );
    assert_eq!(
        cg("syslens_cgroup_oom_kills_total"),
        Some(keyed(&dir.join("memory.events"), "oom_kill"))
    );
    assert_eq!(
        cg("syslens_cgroup_cpu_throttled_periods_total"),
        Some(keyed(&dir.join("cpu.stat"), "nr_throttled"))
    );
    assert_eq!(
        cg("syslens_cgroup_cpu_throttled_seconds_total"),
        Some(keyed(&dir.join("cpu.stat"), "throttled_usec") / 1e6)
    );
    // user.slice has memory.max "max": no limit sample rather than a made-up number.
    assert_eq!(
        sample(
            &text,
            "syslens_cgroup_memory_limit_bytes{cgroup=\"/user.slice\"}"
        ),
        None
    );
    assert_eq!(
        sample(&text, "syslens_group_processes{group=\"nginx\"}"),
        Some(2.0)
    );
}

#[test]
fn regex_over_command_lines_and_pss_under_the_rss_guard() {
    let specimen = Specimen::start(&["--open-fds", "7"]);
    // The pattern as written does not match itself in serve's own command line.
    let serve = Serve::start(&[
        "--cmdline",
        "--group-regex",
        "__(specimen) --open-fds 7",
        "--pss-rss-guard",
        "1G",
    ]);
    let (_, text) = get(serve.port, "/metrics");
    assert_eq!(
        sample(&text, "syslens_group_processes{group=\"specimen\"}"),
        Some(1.0)
    );
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", specimen.pid())).unwrap();
    let pss_kib: f64 = rollup
        .lines()
        .find_map(|l| {
            l.strip_prefix("Pss:")?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .unwrap();
    let exported = sample(
        &text,
        "syslens_group_proportional_bytes{group=\"specimen\"}",
    )
    .unwrap();
    assert!(
        (exported - pss_kib * 1024.0).abs() <= pss_kib * 1024.0 * 0.05,
        "PSS {exported} vs smaps_rollup {pss_kib} kB"
    );
    // Everything else fails the regex and lands in "other".
    assert!(sample(&text, "syslens_group_processes{group=\"other\"}").unwrap() >= 1.0);
}

/// The attack of issue 14 from this test: `tricklers` connections that send one byte
/// every 0.3 s and `idle` ones that send nothing, each opened again as soon as the
/// server answers or closes it, until `stop`. Returns how many were opened again.
fn attack(
    port: u16,
    tricklers: usize,
    idle: usize,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let open = || {
            let s = TcpStream::connect_timeout(&addr, Duration::from_millis(100)).ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        };
        let mut sockets: Vec<(Option<TcpStream>, bool)> = (0..tricklers + idle)
            .map(|i| (open(), i < tricklers))
            .collect();
        let mut reopened = 0;
        let mut next_byte = Instant::now();
        let mut sink = [0u8; 1024];
        let pending = |r: std::io::Result<usize>| matches!(r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
        while !stop.load(Ordering::Relaxed) {
            let trickle = Instant::now() >= next_byte;
            if trickle {
                next_byte += Duration::from_millis(300);
            }
            for (socket, trickles) in &mut sockets {
                let held = socket.as_mut().is_some_and(|s| {
                    pending(s.read(&mut sink)) && !(trickle && *trickles && s.write(b"a").is_err())
                });
                if !held {
                    *socket = open();
                    reopened += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        reopened
    })
}

/// One scrape with a client timeout: the latency when it was answered 200 in time.
fn scrape_within(port: u16, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, limit).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 64 << 10];
    loop {
        let left = limit
            .checked_sub(started.elapsed())
            .filter(|l| !l.is_zero())?;
        s.set_read_timeout(Some(left)).ok()?;
        match s.read(&mut chunk).ok()? {
            0 => break,
            n => answer.extend_from_slice(&chunk[..n]),
        }
    }
    answer
        .starts_with(b"HTTP/1.1 200 ")
        .then(|| started.elapsed())
}

#[test]
fn issue_14_trickling_and_idle_clients_do_not_stall_scrapes() {
    // The defaults, as a user runs it; the attacker and the scraper share 127.0.0.1.
    let serve = Serve::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let attacker = attack(serve.port, 70, 300, Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));
    let mut answered: Vec<Duration> = (0..20)
        .filter_map(|_| {
            let started = Instant::now();
            let latency = scrape_within(serve.port, Duration::from_secs(2));
            std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
            latency
        })
        .collect();
    stop.store(true, Ordering::Relaxed);
    let reopened = attacker.join().unwrap();
    answered.sort();
    let figures = format!(
        "{} of 20 scrapes answered 200 within 2 s (median {:?}, slowest {:?}) under 70 \
         trickling and 300 idle connections, {reopened} of them opened again",
        answered.len(),
        answered.get(answered.len() / 2),
        answered.last()
    );
    eprintln!("{figures}");
    assert!(answered.len() >= 18, "{figures}");
}

/// How long the server holds a connection that trickles a byte every 50 ms (until a
/// write fails: the server closed the socket, not only its sending side, and so stopped
/// reading) or that sends nothing (until the server closes).
fn held_for(port: u16, trickle: bool, limit: Duration) -> Duration {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut sink = [0u8; 1024];
    while started.elapsed() < limit {
        let closed = if trickle {
            s.write(b"a").is_err()
        } else {
            match s.read(&mut sink) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            }
        };
        if closed {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    started.elapsed()
}

#[test]
fn issue_14_trickling_and_idle_connections_are_closed_at_the_request_timeout() {
    let serve = Serve::start(&["--request-timeout", "1"]);
    let limit = Duration::from_secs(6);
    for trickle in [true, false] {
        let held = held_for(serve.port, trickle, limit);
        assert!(
            held >= Duration::from_millis(900) && held < Duration::from_millis(1400),
            "a connection that {} was held {held:?} under --request-timeout 1",
            if trickle { "trickles" } else { "sends nothing" }
        );
    }
}

/// Reads what the server sent on `s` until it closed (or `limit`).
fn answer_of(s: &mut TcpStream, limit: Duration) -> String {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// A connection to the server on 127.0.0.1 from `source` (every 127.x.y.z is this
/// host's), so that the server sees another peer address.
fn connect_from(source: [u8; 4], port: u16) -> TcpStream {
    use std::os::fd::FromRawFd;
    let address = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: socket takes no pointers.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a socket just opened and owned by nothing else.
    let stream = unsafe { TcpStream::from_raw_fd(fd) };
    let (from, to) = (address(source, 0), address([127, 0, 0, 1], port));
    // SAFETY: `from` is a sockaddr_in of `len` bytes that outlives the call.
    let bound = unsafe { libc::bind(fd, (&raw const from).cast(), len) };
    assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
    // SAFETY: as for bind.
    let connected = unsafe { libc::connect(fd, (&raw const to).cast(), len) };
    assert_eq!(connected, 0, "connect: {}", std::io::Error::last_os_error());
    stream
}

/// Whether the server still holds `s` (nothing to read yet, no close).
fn still_held(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let r = (&*s).read(&mut [0u8; 16]);
    s.set_nonblocking(false).unwrap();
    matches!(&r, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[test]
fn issue_14_a_full_server_makes_room_from_the_address_holding_more_than_its_share() {
    let serve = Serve::start(&["--max-connections", "6", "--max-per-peer", "2"]);
    // The oldest connection, from an address holding no more than its share.
    let other = connect_from([127, 0, 0, 2], serve.port);
    std::thread::sleep(Duration::from_millis(50));
    let mut mine: Vec<TcpStream> = (0..5)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s
        })
        .collect();
    // Full: a scrape from 127.0.0.1 is made room for from 127.0.0.1's oldest.
    assert_eq!(get(serve.port, "/metrics").0, 200);
    let answer = answer_of(&mut mine[0], Duration::from_secs(2));
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    assert!(
        still_held(&other),
        "127.0.0.2 held one connection, within its share of 2"
    );
    assert!(mine[1..].iter().all(still_held));
}

#[test]
fn issue_14_a_burst_of_scrapers_from_one_address_is_served() {
    // More connections at once than --max-per-peer, none with its request yet: the
    // share applies only once the server is full.
    let serve = Serve::start(&["--max-per-peer", "4"]);
    let mut burst: Vec<TcpStream> = (0..12)
        .map(|_| TcpStream::connect(("127.0.0.1", serve.port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for s in &mut burst {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
    }
    for s in &mut burst {
        let answer = answer_of(s, Duration::from_secs(10));
        assert!(
            answer.starts_with("HTTP/1.1 200 "),
            "{:?}",
            &answer[..answer.len().min(80)]
        );
    }
}

#[test]
fn issue_14_a_full_server_makes_room_by_closing_the_oldest_idle_connection() {
    let serve = Serve::start(&["--max-connections", "3", "--max-per-peer", "100"]);
    let mut idle: Vec<TcpStream> = (0..3)
        .map(|_| {
            let s = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
            std::thread::sleep(Duration::from_millis(50));
            s
        })
        .collect();
    assert_eq!(get(serve.port, "/metrics").0, 200);
    let answer = answer_of(&mut idle[0], Duration::from_secs(2));
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
}

/// Scrapes (the server runs with `--cache 0`) until every series reaches its value,
/// for at most 15 s; returns the last exposition.
fn scrape_until(port: u16, want: &[(&str, f64)]) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, text) = get(port, "/metrics");
        assert_eq!(code, 200);
        let reached = want
            .iter()
            .all(|(series, at_least)| sample(&text, series).is_some_and(|v| v >= *at_least));
        if reached || Instant::now() >= deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The event families of an exposition, for a failure's message.
fn event_lines(text: &str) -> String {
    text.lines()
        .filter(|l| {
            !l.starts_with('#')
                && [
                    "syslens_oom",
                    "syslens_signals",
                    "syslens_exits",
                    "syslens_event",
                ]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn issue_16_serve_counts_a_sigkill_as_fatal_and_its_exit_as_signaled() {
    skip_unless!(is_root(), "tracepoints and taskstats need root");
    let dir = tempfile::tempdir().unwrap();
    // A shell of a group of its own, that catches SIGUSR1.
    let shell = dir.path().join("slkill16sh");
    std::fs::copy("/bin/sh", &shell).unwrap();
    let serve = Serve::start(&["--cache", "0", "--max-groups", "10000"]);
    let text = scrape_until(
        serve.port,
        &[
            ("syslens_event_source_up{source=\"signal\"}", 1.0),
            ("syslens_event_source_up{source=\"exit\"}", 1.0),
        ],
    );
    for kind in ["oom-kill", "signal", "exit"] {
        assert_eq!(
            sample(
                &text,
                &format!("syslens_event_source_up{{source=\"{kind}\"}}")
            ),
            Some(1.0),
            "as root every default source opens: {}",
            event_lines(&text)
        );
    }
    let kills = "syslens_signals_total{signal=\"SIGKILL\",group=\"slkill16sh\"}";
    let usr1 = "syslens_signals_total{signal=\"SIGUSR1\",group=\"slkill16sh\"}";
    let signaled = "syslens_exits_total{group=\"slkill16sh\",how=\"signaled\"}";
    let before = |series| sample(&text, series).unwrap_or(0.0);
    let (kills_before, signaled_before) = (before(kills), before(signaled));
    let mut child = Command::new(&shell)
        .args(["-c", "trap 'true' USR1; while :; do sleep 0.2; done"])
        .spawn()
        .unwrap();
    let pid = child.id();
    // The trap is set once the shell runs its loop's first sleep.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("SigCgt:") && l.trim_end().ends_with(|c| c != '0'))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = Command::new("sh")
        .args(["-c", "kill -USR1 $1; kill -KILL $1", "sh", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    let text = scrape_until(
        serve.port,
        &[
            (kills, kills_before + 1.0),
            (signaled, signaled_before + 1.0),
        ],
    );
    let events = event_lines(&text);
    assert!(
        sample(&text, kills).unwrap_or(0.0) >= kills_before + 1.0,
        "the SIGKILL of {pid} was not counted:\n{events}"
    );
    assert!(
        sample(&text, signaled).unwrap_or(0.0) >= signaled_before + 1.0,
        "the exit of {pid} by a signal was not counted:\n{events}"
    );
    assert_eq!(
        sample(&text, usr1),
        None,
        "a caught SIGUSR1 is not fatal:\n{events}"
    );
    assert_eq!(
        sample(&text, "syslens_event_samples_lost_total"),
        Some(0.0),
        "{events}"
    );
}

#[test]
fn issue_16_serve_counts_an_oom_kill_by_the_victims_cgroup() {
    skip_unless!(is_root(), "a memory cgroup and tracepoints need root");
    let jail = match MemJail::new(64 << 20) {
        Ok(j) => j,
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let serve = Serve::start(&[
        "--cache",
        "0",
        "--group-by",
        "cgroup",
        "--max-groups",
        "10000",
    ]);
    scrape_until(
        serve.port,
        &[("syslens_event_source_up{source=\"oom-kill\"}", 1.0)],
    );
    let victim = jail.oom_kill_dd();
    let series = format!(
        "syslens_oom_kills_total{{victim_group=\"{}\",constraint=\"cgroup\"}}",
        jail.path
    );
    let text = scrape_until(serve.port, &[(&series, 1.0)]);
    assert_eq!(
        sample(&text, &series),
        Some(1.0),
        "one OOM kill (dd {victim}) in {}:\n{}",
        jail.path,
        event_lines(&text)
    );
}

#[test]
fn issue_16_as_nobody_the_event_sources_are_down_and_serve_still_serves() {
    if let Err(why) = nobody_can_run() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let serve = Serve::start_with(as_nobody(), &[]);
    let (code, text) = get(serve.port, "/metrics");
    assert_eq!(code, 200);
    // The kernel log is readable by anyone only with kernel.dmesg_restrict=0.
    let restricted =
        std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict").is_ok_and(|v| v.trim() != "0");
    for (kind, up) in [
        ("oom-kill", if restricted { 0.0 } else { 1.0 }),
        ("signal", 0.0),
        ("exit", 0.0),
    ] {
        assert_eq!(
            sample(
                &text,
                &format!("syslens_event_source_up{{source=\"{kind}\"}}")
            ),
            Some(up),
            "{kind}: {}",
            event_lines(&text)
        );
    }
    assert!(
        text.contains("# TYPE syslens_exits_total counter\n")
            && !text.contains("syslens_exits_total{"),
        "the family is there, with nothing counted"
    );
    assert!(
        text.contains("syslens_group_processes{"),
        "the rest is served"
    );
}

/// The label pairs of one sample line of the text exposition, unescaped as Prometheus
/// reads them; None when the line is not well formed (an unescaped quote ends a value
/// early, an unknown escape, text after the closing brace other than the value).
fn parse_labels(line: &str) -> Option<Vec<(String, String)>> {
    let (_, rest) = line.split_once('{')?;
    let mut labels = Vec::new();
    let mut chars = rest.chars();
    loop {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => value.push(match chars.next()? {
                    '\\' => '\\',
                    '"' => '"',
                    'n' => '\n',
                    _ => return None,
                }),
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((name.trim_start_matches(',').to_owned(), value));
        match chars.next()? {
            ',' => continue,
            '}' => break,
            _ => return None,
        }
    }
    let value: String = chars.collect();
    value.trim().parse::<f64>().ok()?;
    Some(labels)
}

#[test]
fn issue_23_a_group_named_with_quote_and_backslash_is_escaped_in_the_exposition() {
    let hostile = "q\"x\\y";
    let _specimen = Specimen::start(&["--comm", hostile]);
    let serve = Serve::start(&["--max-groups", "10000"]);
    let (code, text) = get(serve.port, "/metrics");
    assert_eq!(code, 200);
    let mut groups = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('{'))
    {
        let labels = parse_labels(line).unwrap_or_else(|| panic!("malformed sample: {line}"));
        groups.extend(
            labels
                .into_iter()
                .filter(|(k, _)| k == "group")
                .map(|(_, v)| v),
        );
    }
    assert!(
        groups.iter().any(|g| g == hostile),
        "no group {hostile:?} read back from the exposition"
    );
    assert_eq!(
        sample(&text, "syslens_group_processes{group=\"q\\\"x\\\\y\"}"),
        Some(1.0)
    );
}
