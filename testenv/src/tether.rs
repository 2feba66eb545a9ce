//! Child processes tethered to this one: each reads a pipe held by this process as its stdin and
//! shuts itself down when the pipe closes, however this process ends.

use std::process::{Child, ChildStdin};
use std::time::{Duration, Instant};

/// A child process that shuts itself down when its stdin closes.
pub(crate) struct Tethered {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    stdin: Option<ChildStdin>,
}

/// Waits up to 20 s for `child` to exit by itself, then calls `kill` and reaps it.
pub(crate) fn wait_or_kill(child: &mut Child, kill: impl FnOnce(&mut Child)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    kill(child);
    let _ = child.wait();
}

impl Tethered {
    /// Tethers `child`, which must have been spawned with a piped stdin.
    pub(crate) fn new(name: &'static str, mut child: Child) -> Self {
        let stdin = child.stdin.take();
        Self { name, child, stdin }
    }

    /// Closes its stdin and waits for it to exit (at most 20 s, then SIGKILL).
    pub(crate) fn stop(&mut self) {
        drop(self.stdin.take());
        wait_or_kill(&mut self.child, |c| {
            let _ = c.kill();
        });
    }

    /// Why it is no longer running, if it is not.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(format!("{} exited with {status}", self.name)),
            Ok(None) => None,
            Err(e) => Some(format!("{}: {e}", self.name)),
        }
    }
}

impl Drop for Tethered {
    fn drop(&mut self) {
        self.stop();
    }
}
