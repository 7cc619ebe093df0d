//! Progress on stderr: one line per running entry (rows, rows/s, pages or files), only when
//! stderr is a terminal and neither `--quiet` nor `--output json` was given.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::sources::Progress;

/// All bars of a run (or none).
pub struct Bars {
    multi: Option<MultiProgress>,
}

/// One entry's bar, refreshed from its counters by a ticker task.
pub struct Bar {
    bar: Option<ProgressBar>,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Bars {
    pub fn new(enabled: bool) -> Bars {
        Bars { multi: enabled.then(MultiProgress::new) }
    }

    pub fn add(&self, name: &str, progress: Arc<Progress>) -> Bar {
        let Some(multi) = &self.multi else { return Bar { bar: None, ticker: None } };
        let bar = multi.add(ProgressBar::new_spinner());
        bar.set_style(ProgressStyle::with_template("{spinner} {prefix:<24} {wide_msg} {elapsed:>6}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        let b = bar.clone();
        let started = std::time::Instant::now();
        let ticker = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let rows = progress.rows.load(Ordering::Relaxed);
                let units = progress.units.load(Ordering::Relaxed);
                let rate = rows as f64 / started.elapsed().as_secs_f64().max(0.001);
                b.set_message(format!("{rows} rows  {rate:.0} rows/s  {units} pages/files"));
            }
        });
        Bar { bar: Some(bar), ticker: Some(ticker) }
    }

    pub fn clear(&self) {
        if let Some(m) = &self.multi {
            let _ = m.clear();
        }
    }
}

impl Bar {
    pub fn set_message(&self, msg: String) {
        if let Some(b) = &self.bar {
            b.set_message(msg);
        }
    }

    pub fn finish(&self) {
        if let Some(t) = &self.ticker {
            t.abort();
        }
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
