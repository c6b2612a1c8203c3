//! Helpers shared by the integration tests: the real binary, specimens with known
//! state, and lookups in the JSON reports.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Output, Stdio};

use serde_json::Value;

pub fn syslens() -> Command {
    Command::new(env!("CARGO_BIN_EXE_syslens"))
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Skips a test visibly: the reason goes to stderr, which the runner shows.
#[macro_export]
macro_rules! skip_unless {
    ($cond:expr, $why:expr) => {
        if !$cond {
            eprintln!("SKIPPED: {}", $why);
            return;
        }
    };
}

/// A running `syslens __specimen`, killed and reaped when dropped.
pub struct Specimen {
    pub child: Child,
    stdin: Option<ChildStdin>,
    pub report: Value,
}

impl Specimen {
    pub fn start(args: &[&str]) -> Specimen {
        Specimen::start_with(syslens(), args)
    }

    /// Starts the specimen from a prepared command (to run it as another user).
    pub fn start_with(mut cmd: Command, args: &[&str]) -> Specimen {
        cmd.arg("__specimen")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("start specimen");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let report: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("specimen said {line:?}: {e}"));
        let stdin = child.stdin.take();
        Specimen {
            child,
            stdin,
            report,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Specimen {
    fn drop(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.flush();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run syslens");
    assert!(
        out.status.success(),
        "syslens failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn inspect_json(pid: u32, extra: &[&str]) -> Value {
    let out = run_ok(
        syslens()
            .args(["inspect", "--json", &pid.to_string()])
            .args(extra),
    );
    serde_json::from_slice(&out.stdout).expect("inspect --json is JSON")
}

pub fn section<'a>(report: &'a Value, concept: &str) -> &'a Value {
    report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["concept"] == concept)
        .unwrap_or_else(|| panic!("no section {concept}"))
}

/// The value of a figure by its name.
pub fn figure<'a>(report: &'a Value, concept: &str, name: &str) -> &'a Value {
    let s = section(report, concept);
    let f = s["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no figure {name:?} in {concept}: {s}"));
    &f["value"]
}

/// Rows of a table by its title prefix, as JSON arrays.
pub fn table<'a>(report: &'a Value, concept: &str, title: &str) -> &'a Vec<Value> {
    let s = section(report, concept);
    let t = s["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"].as_str().unwrap().starts_with(title))
        .unwrap_or_else(|| panic!("no table {title:?} in {concept}"));
    t["rows"].as_array().unwrap()
}

pub fn u64_of(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a number: {v}"))
}

pub fn list_of(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

pub fn missing_kind(v: &Value) -> Option<&str> {
    v["missing"]["kind"].as_str()
}
