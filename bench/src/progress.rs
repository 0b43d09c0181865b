//! Progress display: indicatif bars and spinners on a terminal, one plain
//! line per step when stderr is a log, nothing with `--json`/`--markdown`
//! (the report on stdout stays machine-readable either way).

use std::{io::IsTerminal, time::Duration};

use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bars,
    Lines,
    Quiet,
}

/// Where progress goes.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    mode: Mode,
}

impl Progress {
    /// Bars on a terminal, lines otherwise; `quiet` shows nothing.
    pub fn new(quiet: bool) -> Self {
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            Mode::Bars
        } else {
            Mode::Lines
        };
        Progress { mode }
    }

    /// No output at all (tests, library use).
    pub fn quiet() -> Self {
        Progress { mode: Mode::Quiet }
    }

    /// A task of `len` steps, or of unknown length (`None`: a spinner with
    /// the elapsed time).
    pub fn task(&self, what: impl Into<String>, len: Option<u64>) -> Task {
        let what = what.into();
        let bar = match (self.mode, len) {
            (Mode::Bars, Some(len)) => {
                let b = ProgressBar::new(len);
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:24.cyan/blue}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                b
            }
            (Mode::Bars, None) => {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("{spinner} {prefix} {msg} ({elapsed})")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b
            }
            _ => ProgressBar::hidden(),
        };
        bar.set_prefix(what.clone());
        bar.enable_steady_tick(Duration::from_millis(200));
        if self.mode == Mode::Lines {
            eprintln!("... {what}");
        }
        Task { bar, what, mode: self.mode }
    }
}

/// One running task; its bar is cleared when it is dropped.
#[derive(Debug)]
pub struct Task {
    bar: ProgressBar,
    what: String,
    mode: Mode,
}

impl Task {
    /// What the task is doing now.
    pub fn step(&self, doing: &str) {
        self.bar.set_message(doing.to_string());
        if self.mode == Mode::Lines {
            eprintln!("... {}: {doing}", self.what);
        }
    }

    /// One step done.
    pub fn inc(&self) {
        self.bar.inc(1);
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
