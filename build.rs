//! Finds the tools the integration tests drive from their start (tmux, chromium)
//! so that a test needing a missing one is compiled `#[ignore]`d with the reason: the
//! test runner then counts it as skipped in its summary, which a skip decided at run
//! time cannot do (issue 14). In CI (`CI=true`) nothing is ignored: the test runs and
//! fails on the missing tool, since `.ci/run` installs every one of them.

use std::path::Path;

/// (cfg name, programs any of which will do).
const TOOLS: [(&str, &[&str]); 2] = [
    ("tmux", &["tmux"]),
    (
        "chromium",
        &["chromium", "chromium-browser", "google-chrome"],
    ),
];

fn main() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<_> = std::env::split_paths(&path).collect();
    let ci = std::env::var("CI").as_deref() == Ok("true");
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    for dir in &dirs {
        // A directory's mtime changes when a program is installed into it or removed.
        if dir.is_dir() {
            println!("cargo::rerun-if-changed={}", dir.display());
        }
    }
    for (name, programs) in TOOLS {
        println!("cargo::rustc-check-cfg=cfg(missing_{name})");
        let found = programs
            .iter()
            .any(|p| dirs.iter().any(|d| is_executable(&d.join(p))));
        if !found && !ci {
            println!("cargo::rustc-cfg=missing_{name}");
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
