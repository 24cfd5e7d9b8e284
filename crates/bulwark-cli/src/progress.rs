//! A one-line progress bar on stderr (plain lines when stderr is not a
//! terminal).

use std::io::{IsTerminal as _, Write as _};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Progress of one long step.
#[derive(Debug)]
pub(crate) struct Progress {
    label: String,
    total: u64,
    done: AtomicU64,
    tty: bool,
    last_line: Mutex<u64>,
}

impl Progress {
    pub(crate) fn new(label: &str, total: u64) -> Self {
        let p = Self {
            label: label.to_owned(),
            total: total.max(1),
            done: AtomicU64::new(0),
            tty: std::io::stderr().is_terminal(),
            last_line: Mutex::new(u64::MAX),
        };
        p.draw(0);
        p
    }

    pub(crate) fn set(&self, done: u64) {
        let done = done.min(self.total);
        if self.done.swap(done, Ordering::Relaxed) != done {
            self.draw(done);
        }
    }

    fn draw(&self, done: u64) {
        const WIDTH: u64 = 30;
        let fill = done * WIDTH / self.total;
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(
                err,
                "\r  {:<22} [{}{}] {done}/{}",
                self.label,
                "#".repeat(fill as usize),
                "-".repeat((WIDTH - fill) as usize),
                self.total
            );
            let _ = err.flush();
        } else {
            // One line per tenth, so logs stay short.
            let tenth = done * 10 / self.total;
            let mut last = self
                .last_line
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if *last != tenth {
                *last = tenth;
                let _ = writeln!(err, "  {}: {done}/{}", self.label, self.total);
            }
        }
    }

    pub(crate) fn finish(&self) {
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}
