//! The event loop's sockets: hyper's TCP connector wrapped so that every connection it opens,
//! the bytes it carries and its close are counted in the client's [`Wire`], as the blocking
//! path's sockets are (`net/tcp.rs`), and so that at most [`MAX_CONNECTING`] are being set up
//! at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::net::wire::Wire;

/// The most connections being set up at once. A burst of thousands of connects overflows a
/// server's listen queue (128 by default for many servers), and each dropped SYN costs a
/// retransmit 1 s, then 3 s later; requests beyond this wait for a connect or for a pooled
/// connection, whichever comes first.
pub const MAX_CONNECTING: usize = 128;

/// hyper's TCP connector, counting the connections it opens and what they carry in the
/// client's [`Wire`] (through [`Metered`]), and setting up at most [`MAX_CONNECTING`] at once.
#[derive(Clone)]
pub(crate) struct Counted {
    inner: HttpConnector,
    wire: Arc<Wire>,
    connecting: Arc<Semaphore>,
}

impl Counted {
    pub fn new(inner: HttpConnector, wire: &Arc<Wire>) -> Counted {
        Counted { inner, wire: Arc::clone(wire), connecting: Arc::new(Semaphore::new(MAX_CONNECTING)) }
    }
}

type Connecting = Pin<
    Box<dyn Future<Output = Result<TokioIo<Metered>, <HttpConnector as tower_service::Service<Uri>>::Error>> + Send>,
>;

impl tower_service::Service<Uri> for Counted {
    type Response = TokioIo<Metered>;
    type Error = <HttpConnector as tower_service::Service<Uri>>::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let wire = Arc::clone(&self.wire);
        let permits = Arc::clone(&self.connecting);
        let mut inner = self.inner.clone();
        Box::pin(async move {
            // Never closed: the semaphore lives as long as this connector.
            let _permit = permits.acquire_owned().await.ok();
            let stream = inner.call(uri).await?.into_inner();
            wire.count_opened();
            Ok(TokioIo::new(Metered { stream, wire }))
        })
    }
}

/// An event-loop connection's socket, counting the bytes it carries and its close (its drop,
/// when hyper's pool lets the connection go) in the client's [`Wire`], as the blocking path's
/// sockets do.
pub(crate) struct Metered {
    stream: TcpStream,
    wire: Arc<Wire>,
}

impl Drop for Metered {
    fn drop(&mut self) {
        self.wire.count_closed();
    }
}

impl Connection for Metered {
    fn connected(&self) -> Connected {
        self.stream.connected()
    }
}

impl AsyncRead for Metered {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.wire.count_received(buf.filled().len().saturating_sub(before));
        }
        polled
    }
}

impl AsyncWrite for Metered {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, bytes);
        if let Poll::Ready(Ok(written)) = polled {
            self.wire.count_sent(written);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, buffers);
        if let Poll::Ready(Ok(written)) = polled {
            self.wire.count_sent(written);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
