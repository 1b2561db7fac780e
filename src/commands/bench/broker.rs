//! The broker being measured, either started by the bench (this executable, `serve` on a free
//! loopback port, killed when the run ends) or found at a given URL. The CPU time it and this
//! process spend is sampled by `switchyard_loadgen::cpu`, which the peers use too.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::Failure;

/// Ports tried before giving up: another process may take the free port before the broker binds it.
const SPAWN_ATTEMPTS: usize = 3;
/// How long a started broker has to accept connections.
const READY_LIMIT: Duration = Duration::from_secs(10);
const READY_POLL: Duration = Duration::from_millis(20);

/// The broker a run measures. A broker this command started is killed when this is dropped, so it
/// never outlives the run, even when the run fails or is interrupted.
#[derive(Debug)]
pub struct BrokerUnderTest {
    url: String,
    pid: Option<u32>,
    child: Option<Child>,
}

impl BrokerUnderTest {
    /// A broker someone else runs, with its process id if it is known.
    pub fn given(url: &str, pid: Option<u32>) -> Self {
        Self {
            url: url.to_owned(),
            pid,
            child: None,
        }
    }

    /// Starts `switchyard serve` (this executable) on a free loopback port and waits until it
    /// accepts connections. Its warnings and errors go to this command's stderr.
    pub async fn spawn() -> Result<Self, Failure> {
        let executable = std::env::current_exe()
            .map_err(|error| Failure::new(format!("cannot find this executable: {error}")))?;
        let mut last_error = String::new();
        for _ in 0..SPAWN_ATTEMPTS {
            let addr = free_port()?;
            let mut command = Command::new(&executable);
            command
                .args(["serve", "--listen", &addr.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            if std::env::var_os("RUST_LOG").is_none() {
                command.env("RUST_LOG", "warn");
            }
            let child = command.spawn().map_err(|error| {
                Failure::new(format!("cannot start {}: {error}", executable.display()))
            })?;
            let mut broker = Self {
                url: format!("http://{addr}"),
                pid: Some(child.id()),
                child: Some(child),
            };
            match broker.wait_until_ready(addr).await {
                Ok(()) => return Ok(broker),
                // Dropping `broker` kills what is left of it.
                Err(error) => last_error = error,
            }
        }
        Err(Failure::new(format!("cannot start a broker: {last_error}")))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The process to report CPU for, when known.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    async fn wait_until_ready(&mut self, addr: SocketAddr) -> Result<(), String> {
        let deadline = Instant::now() + READY_LIMIT;
        loop {
            let connected = tokio::net::TcpStream::connect(addr).await.is_ok();
            // Checked after connecting too: if our broker exited, whoever accepted is someone else
            // who took the port in the meantime.
            if let Some(status) = self.exit_status() {
                return Err(format!("it exited with {status}"));
            }
            if connected {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "it did not accept connections on {addr} within {} s",
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
    }
}

/// A loopback port nobody listens on right now (the OS picks it; we let it go for the broker).
fn free_port() -> Result<SocketAddr, Failure> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|error| Failure::new(format!("cannot find a free port: {error}")))
}
