//! CPU time of a process, read from `/proc/PID/stat`, as a percentage of one core over a window
//! (two busy cores read 200): the one sampler of `switchyard bench` and the peers, so their
//! `cpu_percent` figures are counted alike.
//!
//! `utime` and `stime` are in clock ticks, whose rate this asks the C library once
//! (`sysconf(_SC_CLK_TCK)`, what `getconf CLK_TCK` prints) rather than assuming 100. `libc` rather
//! than `procfs`: `libc` is already built for tokio in both workspaces, and two fields of one file
//! do not need `procfs`'s crates (its own, `rustix` with more features, `bitflags`, `hex`) in every
//! build. Outside Linux there is no `/proc/PID/stat`, and every sample is `None`.

use std::{sync::OnceLock, time::Instant};

/// A process's user + system CPU time at one moment.
#[derive(Debug, Clone, Copy)]
pub struct CpuTime {
    ticks: u64,
    at: Instant,
}

impl CpuTime {
    /// This process's CPU time now; `None` where `/proc` cannot tell.
    pub fn of_this_process() -> Option<Self> {
        Self::read("self")
    }

    /// Process `pid`'s CPU time now; `None` when it or its stat file is gone.
    pub fn of(pid: u32) -> Option<Self> {
        Self::read(&pid.to_string())
    }

    /// The CPU time of every process of `pids` together (the servers of a cluster); `None` when
    /// there are none, or one of them cannot tell.
    pub fn of_all(pids: &[u32]) -> Option<Self> {
        let mut times = pids.iter().map(|pid| Self::of(*pid));
        let first = times.next()??;
        times.try_fold(first, |sum, time| {
            let time = time?;
            Some(Self {
                ticks: sum.ticks.saturating_add(time.ticks),
                at: sum.at.max(time.at),
            })
        })
    }

    fn read(process: &str) -> Option<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
        Some(Self {
            ticks: parse_ticks(&stat)?,
            at: Instant::now(),
        })
    }

    /// Percent of one core used from `earlier` to `self`; `None` for an empty window, a count that
    /// went backwards (another process with the same id), or an unknown tick rate.
    pub fn percent_since(&self, earlier: &Self) -> Option<f64> {
        let seconds = self.at.checked_duration_since(earlier.at)?.as_secs_f64();
        let ticks = self.ticks.checked_sub(earlier.ticks)?;
        if seconds <= 0.0 {
            return None;
        }
        Some(100.0 * ticks as f64 / ticks_per_second()? / seconds)
    }
}

/// The CPU time of the broker being measured (when its process is known) and of this load
/// generator, sampled together at each end of a window.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    broker: Option<CpuTime>,
    client: Option<CpuTime>,
}

/// Percent of one core used over a window (200 is two cores busy); `None` when `/proc` could not
/// tell.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuUsage {
    pub broker: Option<f64>,
    pub client: Option<f64>,
}

impl CpuSample {
    /// The broker's (its processes `broker_pids` together) and this process's CPU time now.
    pub fn take(broker_pids: &[u32]) -> Self {
        Self {
            broker: CpuTime::of_all(broker_pids),
            client: CpuTime::of_this_process(),
        }
    }

    /// The usage between `before` and this sample.
    pub fn since(&self, before: &Self) -> CpuUsage {
        let percent =
            |after: Option<CpuTime>, before: Option<CpuTime>| after?.percent_since(&before?);
        CpuUsage {
            broker: percent(self.broker, before.broker),
            client: percent(self.client, before.client),
        }
    }
}

/// `utime + stime`, fields 14 and 15 of `/proc/PID/stat`. Field 2, the command name, is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted from its last `)`,
/// after which field 3 comes first.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

/// Clock ticks per second (USER_HZ), asked once.
fn ticks_per_second() -> Option<f64> {
    static TICKS: OnceLock<Option<f64>> = OnceLock::new();
    *TICKS.get_or_init(ask_ticks_per_second)
}

#[cfg(target_os = "linux")]
fn ask_ticks_per_second() -> Option<f64> {
    // SAFETY: sysconf has no preconditions; it returns -1 for a name it does not know.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then_some(ticks as f64)
}

#[cfg(not(target_os = "linux"))]
fn ask_ticks_per_second() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Fields are counted after the command name, even one with spaces and parentheses.
    #[test]
    fn ticks_are_counted_after_the_command_name() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194304 917 0 0 0 250 75 0 0 20 0 9 0 \
                    1234 5678 90 18446744073709551615";
        assert_eq!(parse_ticks(stat), Some(325));
        assert_eq!(parse_ticks("4242 (cut) S 1 2"), None);
    }

    /// The rate is the system's, and one tick is one tick's share of a second.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_percentage_counts_ticks_at_the_system_rate() {
        let hz = ticks_per_second().expect("sysconf knows _SC_CLK_TCK on Linux");
        assert!(hz >= 1.0, "{hz}");
        let start = Instant::now();
        let earlier = CpuTime {
            ticks: 10,
            at: start,
        };
        let later = CpuTime {
            ticks: 10 + hz as u64,
            at: start + Duration::from_secs(2),
        };
        let percent = later.percent_since(&earlier).unwrap();
        assert!((percent - 50.0).abs() < 1e-9, "{percent}");
        assert_eq!(earlier.percent_since(&later), None, "backwards");
        assert_eq!(earlier.percent_since(&earlier), None, "an empty window");
    }

    /// This process can sample itself, and a process that is not there has no sample.
    #[cfg(target_os = "linux")]
    #[test]
    fn samples_this_process() {
        assert!(CpuTime::of_this_process().is_some());
        let before = CpuSample::take(&[]);
        let usage = CpuSample::take(&[]).since(&before);
        assert_eq!(usage.broker, None);
        assert!(CpuTime::of(u32::MAX).is_none());
    }

    /// Several processes' times are summed; one that is not there spoils the sum.
    #[cfg(target_os = "linux")]
    #[test]
    fn sums_several_processes() {
        let me = std::process::id();
        let one = CpuTime::of_all(&[me]).expect("this process");
        let twice = CpuTime::of_all(&[me, me]).expect("this process twice");
        assert!(twice.ticks >= 2 * one.ticks, "{twice:?} {one:?}");
        assert!(CpuTime::of_all(&[me, u32::MAX]).is_none());
        assert!(CpuTime::of_all(&[]).is_none());
    }
}
