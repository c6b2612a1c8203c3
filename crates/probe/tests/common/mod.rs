//! Children for the live scanner tests, killed and reaped however a test ends.
#![allow(dead_code, clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};

/// A child killed and reaped when dropped.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `n` idle `sleep` processes and their PIDs.
pub fn sleepers(n: usize) -> (Vec<Reaped>, Vec<i32>) {
    let children: Vec<Reaped> = (0..n)
        .map(|_| {
            Reaped(
                Command::new("sleep")
                    .arg("30")
                    .stdin(Stdio::null())
                    .spawn()
                    .unwrap(),
            )
        })
        .collect();
    let pids = children.iter().map(|c| c.0.id() as i32).collect();
    (children, pids)
}
