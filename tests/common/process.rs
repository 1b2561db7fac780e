//! `switchyard serve` as a real child process, for what only a process shows: signals, exit status,
//! resident memory.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use tonic::transport::Channel;

use super::{WAIT, faults};

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");

/// A broker process on an ephemeral loopback port; killed if the test ends before it exits.
pub struct BrokerProcess {
    pub child: Child,
    /// `host:port` it announced.
    pub address: String,
}

impl BrokerProcess {
    /// Starts `switchyard serve --listen 127.0.0.1:0 EXTRA_ARGS` and waits for its address.
    pub fn start(extra_args: &[&str]) -> Self {
        let mut child = Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start switchyard serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (address, announced) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut address = Some(address);
            // Read to the end, so the broker never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Some(found) = line
                    .split("listen=Some(")
                    .nth(1)
                    .and_then(|rest| rest.split(')').next())
                    && let Some(address) = address.take()
                {
                    let _ = address.send(found.to_owned());
                }
            }
        });
        let address = announced
            .recv_timeout(WAIT)
            .expect("the broker announces its address");
        Self { child, address }
    }

    /// A new HTTP/2 connection to the broker, bounded by `WAIT` like every other test connection.
    pub async fn channel(&self) -> Channel {
        let addr = self
            .address
            .parse()
            .expect("the broker announces a socket address");
        faults::connect(addr).await
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Resident memory, in bytes (VmRSS of /proc/PID/status).
    pub fn rss_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let kb: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kb * 1024
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
