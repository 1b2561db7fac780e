//! Caps the client connections served at once (`max_connections`). Each accepted connection holds a
//! slot until its socket is dropped; one accepted past the cap is closed at once, so the client fails
//! fast with UNAVAILABLE instead of waiting in the listen backlog, and the broker's memory and file
//! descriptors stay bounded whatever the clients do.

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use futures_core::Stream;
use futures_util::StreamExt;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::activity::{Activity, Registered};

/// An accepted connection, its slot, and its place among the connections listed for monitoring.
#[derive(Debug)]
pub struct Limited {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _registered: Registered,
}

/// The connections of `incoming`, at most `max` at a time; the others are closed when accepted.
/// Each is counted in `activity` while open.
pub fn limit(
    incoming: impl Stream<Item = io::Result<TcpStream>>,
    max: usize,
    activity: Arc<Activity>,
) -> impl Stream<Item = io::Result<Limited>> {
    let slots = Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS)));
    incoming.filter_map(move |accepted| {
        let outcome = match accepted {
            Ok(stream) => match Arc::clone(&slots).try_acquire_owned() {
                Ok(slot) => Some(Ok(Limited {
                    _registered: activity.connected(stream.peer_addr().ok()),
                    stream,
                    _slot: slot,
                })),
                Err(_) => {
                    activity.refused();
                    let peer = stream.peer_addr().ok();
                    tracing::warn!(?peer, max, "connection refused: max_connections reached");
                    None
                }
            },
            Err(error) => Some(Err(error)),
        };
        std::future::ready(outcome)
    })
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
