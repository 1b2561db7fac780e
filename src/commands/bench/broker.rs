//! The broker being measured, either started by the bench (this executable, `serve` on a loopback
//! port the kernel picks, which its ready file names; killed when the run ends) or found at a given
//! URL; and the CPU time it and this
//! process spend, read from `/proc`.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::Failure;
use switchyard::ready::Ready;

/// How long a started broker has to write its ready file.
const READY_LIMIT: Duration = Duration::from_secs(10);
const READY_POLL: Duration = Duration::from_millis(20);
/// Units of `utime` and `stime` in `/proc/PID/stat`: USER_HZ, which Linux fixes at 100 per second
/// for every process on every architecture in common use (what `getconf CLK_TCK` prints).
const TICKS_PER_SECOND: f64 = 100.0;

/// The broker a run measures. A broker this command started is killed when this is dropped, so it
/// never outlives the run, even when the run fails or is interrupted.
#[derive(Debug)]
pub struct BrokerUnderTest {
    url: String,
    pid: Option<u32>,
    child: Option<Child>,
    /// The ready file of a broker this command started: a killed broker cannot remove it.
    ready_file: Option<PathBuf>,
}

impl BrokerUnderTest {
    /// A broker someone else runs, with its process id if it is known.
    pub fn given(url: &str, pid: Option<u32>) -> Self {
        Self {
            url: url.to_owned(),
            pid,
            child: None,
            ready_file: None,
        }
    }

    /// Starts `switchyard serve` (this executable) on `127.0.0.1:0` and waits for its ready file,
    /// which names the port: the broker binds the port itself and keeps it, so no other process can
    /// take it in between. Its warnings and errors go to this command's stderr.
    pub async fn spawn() -> Result<Self, Failure> {
        let executable = std::env::current_exe()
            .map_err(|error| Failure::new(format!("cannot find this executable: {error}")))?;
        let ready_file = std::env::temp_dir().join(format!(
            "switchyard-bench-{}.ready.json",
            uuid::Uuid::new_v4().simple()
        ));
        let mut command = Command::new(&executable);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--ready-file"])
            .arg(&ready_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        let child = command.spawn().map_err(|error| {
            Failure::new(format!("cannot start {}: {error}", executable.display()))
        })?;
        // From here on, dropping `broker` kills the child and removes the file.
        let mut broker = Self {
            url: String::new(),
            pid: Some(child.id()),
            child: Some(child),
            ready_file: Some(ready_file.clone()),
        };
        let ready = broker
            .wait_until_ready(&ready_file)
            .await
            .map_err(|error| Failure::new(format!("cannot start a broker: {error}")))?;
        broker.url = format!("http://{}", ready.listen);
        Ok(broker)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process to report CPU for, when known.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    async fn wait_until_ready(&mut self, path: &Path) -> Result<Ready, String> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(format!("it exited with {status}"));
            }
            // Written beside its path and renamed: once it exists, it is whole.
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    return serde_json::from_str(&text).map_err(|error| {
                        format!("its ready file {} is not one: {error}", path.display())
                    });
                }
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => {
                    return Err(format!(
                        "cannot read its ready file {}: {error}",
                        path.display()
                    ));
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "it wrote no ready file {} within {} s",
                    path.display(),
                    READY_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }
}

impl Drop for BrokerUnderTest {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Fails only if it has exited already; then `wait` reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(path) = self.ready_file.take() {
            // Gone already when the broker shut down by itself.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// CPU time used so far by the broker (when its process is known) and by this process.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    broker: Option<u64>,
    client: Option<u64>,
}

/// Percent of one core used over a window (200 is two cores busy); `None` when `/proc` could not
/// tell.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUsage {
    pub broker: Option<f64>,
    pub client: Option<f64>,
}

impl CpuSample {
    pub fn take(broker_pid: Option<u32>) -> Self {
        Self {
            at: Instant::now(),
            broker: broker_pid.and_then(|pid| cpu_ticks(&pid.to_string())),
            client: cpu_ticks("self"),
        }
    }

    /// The usage between `before` and this sample.
    pub fn since(&self, before: &Self) -> CpuUsage {
        let seconds = self.at.duration_since(before.at).as_secs_f64();
        let percent = |after: Option<u64>, before: Option<u64>| {
            let ticks = after?.checked_sub(before?)?;
            (seconds > 0.0).then(|| ticks as f64 / TICKS_PER_SECOND / seconds * 100.0)
        };
        CpuUsage {
            broker: percent(self.broker, before.broker),
            client: percent(self.client, before.client),
        }
    }
}

/// `utime + stime` of a process (`self` or a pid), in clock ticks.
fn cpu_ticks(process: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).ok()?;
    parse_ticks(&stat)
}

/// `utime` and `stime` are fields 14 and 15 of `/proc/PID/stat`. Field 2, the command name, is in
/// parentheses and may itself hold spaces and parentheses, so fields are counted from its last `)`,
/// after which field 3 comes first.
fn parse_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_counted_after_the_command_name() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194304 917 0 0 0 250 75 0 0 20 0 9 0 \
                    1234 5678 90 18446744073709551615";
        assert_eq!(parse_ticks(stat), Some(325));
        assert_eq!(parse_ticks("4242 (cut) S 1 2"), None);
    }

    #[test]
    fn this_process_has_a_cpu_time() {
        assert!(cpu_ticks("self").is_some());
    }
}
