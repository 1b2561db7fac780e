//! CPU time of a process, read from `/proc/PID/stat`, turned into a percentage of one core over a
//! window (so 2 busy cores read 200).

use std::time::Instant;

/// A process's user + system CPU time at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    ticks: u64,
    at: Instant,
}

impl CpuSample {
    /// Samples `pid` (`None` = this process); `None` when the process or its stat file is gone.
    pub fn take(pid: Option<u32>) -> Option<Self> {
        let path = match pid {
            Some(pid) => format!("/proc/{pid}/stat"),
            None => "/proc/self/stat".to_owned(),
        };
        let stat = std::fs::read_to_string(path).ok()?;
        Some(Self {
            ticks: parse_ticks(&stat)?,
            at: Instant::now(),
        })
    }

    /// Percent of one core used between `self` and a later `end`.
    pub fn percent_until(&self, end: &CpuSample) -> f64 {
        let seconds = end.at.duration_since(self.at).as_secs_f64();
        if seconds <= 0.0 {
            return 0.0;
        }
        let cpu_seconds = end.ticks.saturating_sub(self.ticks) as f64 / clock_ticks_per_second();
        100.0 * cpu_seconds / seconds
    }
}

/// utime + stime, fields 14 and 15 of `stat`. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields are counted after the command name, even one with spaces and parentheses.
    #[test]
    fn parses_utime_and_stime() {
        let stat = "42 (nats (x) y) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1 2 3";
        assert_eq!(parse_ticks(stat), Some(300));
    }

    /// This process can sample itself.
    #[test]
    fn samples_self() {
        assert!(CpuSample::take(None).is_some());
    }
}
