//! The broker being measured, either started by the bench (this executable, `serve` on a loopback
//! port the kernel picks, killed when the run ends) or found at a given URL. The CPU time it and this
//! process spend is sampled by `switchyard_loadgen::cpu`, which the peers use too.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use switchyard::ready::Ready;

use super::Failure;

/// How long a started broker has to say it serves.
const READY_LIMIT: Duration = Duration::from_secs(10);
const READY_POLL: Duration = Duration::from_millis(20);

/// The broker a run measures. A broker this command started is killed when this is dropped, so it
/// never outlives the run, even when the run fails or is interrupted.
#[derive(Debug)]
pub struct BrokerUnderTest {
    url: String,
    pid: Option<u32>,
    child: Option<Child>,
    /// The started broker's ready file: it cannot remove it itself once killed.
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
    /// which names the port it got: no free-port race. Its warnings and errors go to this command's
    /// stderr.
    pub async fn spawn() -> Result<Self, Failure> {
        let executable = std::env::current_exe()
            .map_err(|error| Failure::new(format!("cannot find this executable: {error}")))?;
        let ready_file = ready_file_path();
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
        // The broker measured runs with the defaults: a variable meant for this client command (or
        // a config file named by SWITCHYARD_CONFIG) must not change what is compared.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SWITCHYARD_") {
                command.env_remove(name);
            }
        }
        let child = command.spawn().map_err(|error| {
            Failure::new(format!("cannot start {}: {error}", executable.display()))
        })?;
        let mut broker = Self {
            url: String::new(),
            pid: Some(child.id()),
            child: Some(child),
            ready_file: Some(ready_file.clone()),
        };
        // Dropping `broker` on an error kills what is left of it.
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

    /// Polls for the ready file until the broker writes it, exits, or [`READY_LIMIT`] passes.
    async fn wait_until_ready(&mut self, ready_file: &Path) -> Result<Ready, String> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            if let Some(status) = self.exit_status() {
                return Err(format!("it exited with {status}"));
            }
            // The broker writes the file whole (then renames it), so one that parses is complete.
            if let Ok(text) = std::fs::read_to_string(ready_file) {
                let ready: Ready = serde_json::from_str(&text)
                    .map_err(|error| format!("its ready file does not parse: {error}"))?;
                // The file is this run's own, but a pid that is not our child's means it is not.
                return match Some(ready.pid) == self.pid {
                    true => Ok(ready),
                    false => Err(format!(
                        "its ready file names another process, {}",
                        ready.pid
                    )),
                };
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "it did not write {} within {} s",
                    ready_file.display(),
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
            // Absent if the broker never got to write it.
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A ready file of this process's own in the temporary directory; the broker removes it at shutdown.
fn ready_file_path() -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    std::env::temp_dir().join(format!(
        "switchyard-bench-{}-{nanos}.ready.json",
        std::process::id()
    ))
}
