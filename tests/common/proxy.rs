//! A TCP proxy between a client and the test server that can go silent on command: it stops forwarding
//! bytes in both directions but keeps both sockets open, as a host that froze or a network that was
//! cut would. Nothing is closed, so neither side sees a FIN or a reset; only HTTP/2 keepalive can
//! notice.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, tcp::OwnedReadHalf, tcp::OwnedWriteHalf},
    sync::watch,
    task::JoinSet,
};

/// A listening proxy to `upstream`. Dropping it stops accepting and ends every pump (closing the
/// sockets), so a test leaves nothing behind.
pub struct SilentProxy {
    pub addr: SocketAddr,
    silent: Arc<watch::Sender<bool>>,
    _tasks: JoinSet<()>,
}

impl SilentProxy {
    /// Listens on `127.0.0.1:0` and forwards every accepted connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy on 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address of the proxy");
        let silent = Arc::new(watch::Sender::new(false));
        let mut tasks = JoinSet::new();
        let gate = Arc::clone(&silent);
        tasks.spawn(async move {
            // Each connection's pumps live as long as this accept loop, which lives as long as the
            // proxy: dropping the JoinSet aborts it and, with it, this inner set.
            let mut pumps = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                pumps.spawn(pump(client_read, server_write, gate.subscribe()));
                pumps.spawn(pump(server_read, client_write, gate.subscribe()));
            }
        });
        Self {
            addr,
            silent,
            _tasks: tasks,
        }
    }

    /// From now on no byte goes through in either direction, including any read but not yet
    /// forwarded. The sockets stay open.
    pub fn go_silent(&self) {
        self.silent.send_replace(true);
    }
}

/// Copies `from` to `to` until either side closes, holding everything while the proxy is silent.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut silent: watch::Receiver<bool>) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        // Not reading while silent leaves the bytes in the kernel's buffers, as a frozen peer would.
        if silent.wait_for(|silent| !silent).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        // A read that completed just as the proxy went silent is held, not forwarded.
        if silent.wait_for(|silent| !silent).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
