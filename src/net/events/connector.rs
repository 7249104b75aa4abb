//! How the event loop reaches the service: TLS (the same rustls and trusted roots as the
//! blocking path, HTTP/2 offered by ALPN) over the counted TCP sockets of `socket.rs`, directly
//! or through the client's proxy: an HTTP CONNECT tunnel (inside TLS to an `https://` proxy),
//! or SOCKS5/SOCKS4 (hyper-util's handshakes). The proxy URL is read by ureq's rules, as the
//! blocking path reads it, and its failures are worded as the blocking path words them
//! (`transport.rs`).

use std::fmt;
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use hyper::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use hyper_util::client::legacy::connect::proxy::{SocksV4, SocksV5};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower_service::Service;

use crate::api::error::{Code, Error};
use crate::net::endpoint::ProxyUrl;
use crate::net::events::socket::{Counted, Metered};
use crate::net::gate::Gate;
use crate::net::transport::USER_AGENT;
use crate::net::trust::{self, Trust};
use crate::net::wire::Wire;

/// The connector hyper's client opens its connections with.
pub(crate) type Connector = HttpsConnector<Route>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `None` when the trust is one the event loop has no roots for (none that `Trust` makes
/// today): the engine then keeps its threads.
pub(crate) fn build(
    trust: &Trust,
    request_timeout: Duration,
    wire: &Arc<Wire>,
    proxy: Option<&ProxyUrl>,
    gate: &Arc<Gate>,
) -> Option<Result<Connector, Error>> {
    let mut roots = rustls::RootCertStore::empty();
    match trust.roots() {
        ureq::tls::RootCerts::Specific(certs) => {
            for cert in certs.iter() {
                // An unusable root is skipped, as ureq skips it.
                let _ = roots.add(rustls::pki_types::CertificateDer::from(cert.der().to_vec()));
            }
        }
        // Mozilla's list, where the system has no roots: the same list ureq gives rustls.
        ureq::tls::RootCerts::WebPki => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        // Not made by `Trust` (ureq's platform verifier is not built in).
        _ => return None,
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = match rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions() {
        Ok(builder) => builder.with_root_certificates(roots).with_no_client_auth(),
        Err(error) => return Some(Err(Error::new(Code::Internal, format!("TLS setup failed: {error}")))),
    };
    let mut http = HttpConnector::new();
    // The base URL's rules (https, or http to loopback) were checked when it was set.
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(request_timeout));
    let counted = Counted::new(http, wire, gate, request_timeout);
    // TLS to an https:// proxy: the same roots (as ureq's one TLS configuration), no ALPN
    // (CONNECT is HTTP/1.1).
    let to_proxy = || {
        hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config.clone())
            .https_only()
            .enable_http1()
            .wrap_connector(counted.clone())
    };
    let via = match proxy.map(|proxy| Via::of(proxy, to_proxy)) {
        None => Via::Direct,
        Some(Ok(via)) => via,
        Some(Err(error)) => return Some(Err(error)),
    };
    let route = Route { counted, via };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(route);
    Some(Ok(connector))
}

/// The counted sockets, to the service or to the proxy; TLS to the service goes over either.
#[derive(Clone)]
pub(crate) struct Route {
    counted: Counted,
    via: Via,
}

/// Where a connection goes first. Holds the proxy's credentials: no Debug, never shown.
#[derive(Clone)]
enum Via {
    Direct,
    /// An HTTP proxy, asked with CONNECT for a tunnel to the service.
    Connect {
        proxy: Uri,
        /// `Basic ...`, when the proxy URL has credentials.
        authorization: Option<String>,
        /// TLS to the proxy itself (`https://`), on the counted sockets.
        tls: Option<HttpsConnector<Counted>>,
    },
    /// A SOCKS5 proxy (`socks5://`: the service's host is resolved here, as ureq does;
    /// `socks5h://`: by the proxy), with a username and password when the URL has them.
    Socks5 {
        proxy: Uri,
        credentials: Option<(String, String)>,
        resolve_here: bool,
    },
    /// A SOCKS4 proxy (`socks4://`: resolved here; `socks4a://`: by the proxy). No credentials
    /// (SOCKS4 has none; ureq ignores them too).
    Socks4 {
        proxy: Uri,
        resolve_here: bool,
    },
}

impl Via {
    /// The proxy as ureq reads it for the blocking path (scheme, default port, decoded
    /// credentials, where names are resolved). `to_proxy`: the TLS connector for an https://
    /// proxy.
    fn of(url: &ProxyUrl, to_proxy: impl FnOnce() -> HttpsConnector<Counted>) -> Result<Via, Error> {
        use ureq::ProxyProtocol;
        let unusable = || Error::invalid_argument("the proxy URL is not one this library can use");
        let parsed = ureq::Proxy::new(url.as_str()).map_err(|_| unusable())?;
        let https = parsed.protocol() == ProxyProtocol::Https;
        let scheme = if https { "https" } else { "http" };
        let proxy = format!("{scheme}://{}:{}", parsed.host(), parsed.port()).parse::<Uri>().map_err(|_| unusable())?;
        let resolve_here = parsed.resolve_target();
        Ok(match parsed.protocol() {
            ProxyProtocol::Http | ProxyProtocol::Https => {
                let authorization = (parsed.username().is_some() || parsed.password().is_some()).then(|| {
                    let pair = format!("{}:{}", parsed.username().unwrap_or(""), parsed.password().unwrap_or(""));
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
                });
                Via::Connect { proxy, authorization, tls: https.then(to_proxy) }
            }
            ProxyProtocol::Socks5 | ProxyProtocol::Socks5h => {
                let credentials =
                    parsed.username().map(|user| (user.to_owned(), parsed.password().unwrap_or("").to_owned()));
                Via::Socks5 { proxy, credentials, resolve_here }
            }
            ProxyProtocol::Socks4 | ProxyProtocol::Socks4A => Via::Socks4 { proxy, resolve_here },
            // ureq's protocols are all above; a new one is refused as ureq's parser refuses.
            _ => return Err(unusable()),
        })
    }
}

/// A connection's first hop: a counted socket (to the service, or to a plain proxy that tunnels
/// to it), or TLS to an https:// proxy over one. TLS to the service runs over either.
pub(crate) enum Hop {
    Tcp(TokioIo<Metered>),
    Tls(Box<MaybeHttpsStream<TokioIo<Metered>>>),
}

impl Connection for Hop {
    fn connected(&self) -> Connected {
        match self {
            Hop::Tcp(stream) => stream.connected(),
            Hop::Tls(stream) => stream.connected(),
        }
    }
}

impl hyper::rt::Read for Hop {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Hop::Tcp(stream) => Pin::new(stream).poll_read(cx, buf),
            Hop::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Hop {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Hop::Tcp(stream) => Pin::new(stream).poll_write(cx, bytes),
            Hop::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, bytes),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Hop::Tcp(stream) => Pin::new(stream).poll_write_vectored(cx, buffers),
            Hop::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, buffers),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Hop::Tcp(stream) => stream.is_write_vectored(),
            Hop::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Hop::Tcp(stream) => Pin::new(stream).poll_flush(cx),
            Hop::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Hop::Tcp(stream) => Pin::new(stream).poll_shutdown(cx),
            Hop::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A proxy's failure, in the blocking path's words (the method's name is put before it).
#[derive(Debug)]
pub(crate) struct ProxyFailure(String);

impl fmt::Display for ProxyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProxyFailure {}

type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl Service<Uri> for Route {
    type Response = Hop;
    type Error = BoxError;
    type Future = Connecting<Hop>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.counted.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let mut counted = self.counted.clone();
        match self.via.clone() {
            Via::Direct => {
                let connecting = counted.call(dst);
                Box::pin(async move { Ok(Hop::Tcp(connecting.await?)) })
            }
            Via::Connect { proxy, authorization, tls: None } => {
                let connecting = counted.call(proxy);
                Box::pin(async move {
                    let stream = connecting.await.map_err(|error| ProxyFailure(unreachable_proxy(error.as_ref())))?;
                    let mut hop = TokioIo::new(Hop::Tcp(stream));
                    tunnel(&mut hop, &dst, authorization.as_deref()).await.map_err(ProxyFailure)?;
                    Ok(hop.into_inner())
                })
            }
            Via::Connect { proxy, authorization, tls: Some(mut tls) } => {
                let connecting = tls.call(proxy);
                Box::pin(async move {
                    let stream = connecting.await.map_err(|error| ProxyFailure(unreachable_proxy(error.as_ref())))?;
                    let mut hop = TokioIo::new(Hop::Tls(Box::new(stream)));
                    tunnel(&mut hop, &dst, authorization.as_deref()).await.map_err(ProxyFailure)?;
                    Ok(hop.into_inner())
                })
            }
            Via::Socks5 { proxy, credentials, resolve_here } => Box::pin(async move {
                let target = socks_target(&dst, resolve_here).await.map_err(ProxyFailure)?;
                let (to_proxy, unreachable) = ToProxy::new(counted);
                let mut socks = SocksV5::new(proxy, to_proxy);
                if let Some((user, password)) = credentials {
                    socks = socks.with_auth(user, password);
                }
                let shaken = match poll_fn(|cx| socks.poll_ready(cx)).await {
                    Ok(()) => socks.call(target).await.map_err(|error| error.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                shaken.map(Hop::Tcp).map_err(|shown| ProxyFailure(socks_failure(&shown, &unreachable)).into())
            }),
            Via::Socks4 { proxy, resolve_here } => Box::pin(async move {
                let target = socks_target(&dst, resolve_here).await.map_err(ProxyFailure)?;
                let (to_proxy, unreachable) = ToProxy::new(counted);
                let mut socks = SocksV4::new(proxy, to_proxy);
                let shaken = match poll_fn(|cx| socks.poll_ready(cx)).await {
                    Ok(()) => socks.call(target).await.map_err(|error| error.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                shaken.map(Hop::Tcp).map_err(|shown| ProxyFailure(socks_failure(&shown, &unreachable)).into())
            }),
        }
    }
}

/// The counted connector to a SOCKS proxy, keeping why the proxy could not be reached:
/// hyper-util's SOCKS error says only that it could not (and has no source to ask).
#[derive(Clone)]
struct ToProxy {
    counted: Counted,
    unreachable: Arc<Mutex<Option<String>>>,
}

impl ToProxy {
    fn new(counted: Counted) -> (ToProxy, Arc<Mutex<Option<String>>>) {
        let unreachable = Arc::new(Mutex::new(None));
        (ToProxy { counted, unreachable: Arc::clone(&unreachable) }, unreachable)
    }
}

impl Service<Uri> for ToProxy {
    type Response = TokioIo<Metered>;
    type Error = BoxError;
    type Future = Connecting<TokioIo<Metered>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.counted.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, proxy: Uri) -> Self::Future {
        let connecting = self.counted.call(proxy);
        let unreachable = Arc::clone(&self.unreachable);
        Box::pin(async move {
            connecting.await.map_err(|error| {
                let why = unreachable_proxy(error.as_ref());
                *unreachable.lock().unwrap_or_else(PoisonError::into_inner) = Some(why.clone());
                ProxyFailure(why).into()
            })
        })
    }
}

/// Why the proxy could not be reached, as the blocking path says it ("network error: Connection
/// refused (os error 111)", or the refused certificate of an https:// proxy).
fn unreachable_proxy(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    // Bounded by the error's chain of causes (a handful of links).
    while let Some(cause) = source {
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return trust::tls_failure(tls);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            // An I/O error's `source` skips what it wraps (hyper-rustls wraps tokio-rustls' I/O
            // error, which holds rustls').
            match io.get_ref() {
                Some(inner) if inner.is::<std::io::Error>() || inner.is::<rustls::Error>() => {
                    source = Some(inner);
                    continue;
                }
                _ => return format!("network error: {io}"),
            }
        }
        source = cause.source();
    }
    format!("network error: {error}")
}

/// The service's address for the SOCKS request, with its port always written (hyper-util
/// takes a missing one as 443): resolved here to its first address (as ureq takes it) when the
/// scheme says so, else the host name for the proxy to resolve.
async fn socks_target(dst: &Uri, resolve_here: bool) -> Result<Uri, String> {
    let host = dst.host().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = dst.port_u16().unwrap_or(if dst.scheme_str() == Some("http") { 80 } else { 443 });
    let host = if resolve_here && bare.parse::<IpAddr>().is_err() {
        let name = Name::from_str(bare).map_err(|_| "host not found".to_owned())?;
        // getaddrinfo on tokio's blocking pool (one thread at most, see `wait/events.rs`).
        let mut found = GaiResolver::new().call(name).await.map_err(|_| "host not found".to_owned())?;
        match found.next().map(|address| address.ip()) {
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(IpAddr::V4(ip)) => ip.to_string(),
            None => return Err("host not found".to_owned()),
        }
    } else {
        host.to_owned()
    };
    format!("http://{host}:{port}").parse::<Uri>().map_err(|_| "host not found".to_owned())
}

/// A SOCKS handshake's failure in the blocking path's words. hyper-util names its errors only
/// by their Display (its error types are not exported): each of its reasons is mapped to
/// ureq's for the same reply.
fn socks_failure(shown: &str, unreachable: &Mutex<Option<String>>) -> String {
    if let Some(why) = unreachable.lock().unwrap_or_else(PoisonError::into_inner).take() {
        return why;
    }
    let reason = shown.strip_prefix("SOCKS error: ").unwrap_or(shown);
    let words = match reason {
        // hyper-util's I/O failure inside the handshake is mostly the proxy closing on us.
        "io error during SOCKS handshake" => return "the server closed the connection without answering".to_owned(),
        "credentials not accepted" => "password authentication failed",
        // The proxy accepted none of the offered methods (no credentials, or not those).
        "server does not support user/pass authentication" => "no acceptable auth methods",
        "server implements authentication incorrectly" => "unknown auth method",
        "general server failure" => "general SOCKS server failure",
        "connection not allowed" => "connection not allowed by ruleset",
        "ttl expired" => "TTL expired",
        "address type not supported" => "address kind not supported",
        "server failed to execute command" => "request rejected or failed",
        "IPV6 is not supported" => "SOCKS4 does not support IPv6",
        other => other,
    };
    format!("network error: {words}")
}

/// The longest CONNECT answer head read (ureq's CONNECT reads into its 8 KiB input buffer).
const MAX_CONNECT_ANSWER: usize = 8 * 1024;

/// Asks the HTTP proxy on `stream` for a tunnel to `dst`, with ureq's request (host name, not a
/// resolved address; its User-Agent; Basic credentials). hyper-util's `Tunnel` is not used: it
/// keeps no status but 407, and the blocking path's message names the proxy's status (401 for
/// wrong credentials, 407 for none, 403 or 5xx for a service it would not reach).
async fn tunnel<S>(stream: &mut S, dst: &Uri, authorization: Option<&str>) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let host = dst.host().unwrap_or("");
    let port = dst.port_u16().unwrap_or(if dst.scheme_str() == Some("http") { 80 } else { 443 });
    let mut request = format!(
        "CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: {USER_AGENT}\r\nProxy-Connection: Keep-Alive\r\n"
    );
    if let Some(authorization) = authorization {
        request.push_str(&format!("Proxy-Authorization: {authorization}\r\n"));
    }
    request.push_str("\r\n");
    write_all(stream, request.as_bytes()).await.map_err(|error| io_failure(&error))?;

    let mut answer = vec![0; MAX_CONNECT_ANSWER];
    let mut filled = 0;
    // Bounded by MAX_CONNECT_ANSWER: each turn reads at least one byte or ends.
    loop {
        let read = read_some(stream, &mut answer[filled..]).await.map_err(|error| io_failure(&error))?;
        if read == 0 {
            return Err("the proxy refused: proxy server did not respond".to_owned());
        }
        filled += read;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut head = httparse::Response::new(&mut headers);
        match head.parse(&answer[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                let status = head.code.unwrap_or(0);
                return match status {
                    200 => Ok(()),
                    _ => Err(format!("the proxy refused: proxy server responded {status}/{status}")),
                };
            }
            Ok(httparse::Status::Partial) if filled < answer.len() => {}
            Ok(httparse::Status::Partial) => {
                return Err("the proxy refused: the proxy's answer head is too large".to_owned())
            }
            Err(why) => return Err(format!("the proxy refused: its answer is not valid HTTP: {why}")),
        }
    }
}

/// An I/O failure in the blocking path's words (`transport.rs`).
fn io_failure(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::UnexpectedEof => "the server closed the connection without answering".to_owned(),
        _ => format!("network error: {error}"),
    }
}

async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, mut bytes: &[u8]) -> std::io::Result<()> {
    // Bounded by the bytes: each turn writes at least one or fails.
    while !bytes.is_empty() {
        let written = poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, bytes)).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        bytes = &bytes[written..];
    }
    Ok(())
}

async fn read_some<S: AsyncRead + Unpin>(stream: &mut S, into: &mut [u8]) -> std::io::Result<usize> {
    let mut buffer = ReadBuf::new(into);
    poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut buffer)).await?;
    Ok(buffer.filled().len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks_reasons_read_as_ureqs() {
        let none = Mutex::new(None);
        assert_eq!(
            socks_failure("SOCKS error: credentials not accepted", &none),
            "network error: password authentication failed"
        );
        assert_eq!(socks_failure("SOCKS error: connection refused", &none), "network error: connection refused");
        let refused = Mutex::new(Some("network error: Connection refused (os error 111)".to_owned()));
        assert_eq!(
            socks_failure("SOCKS error: failed to create underlying connection", &refused),
            "network error: Connection refused (os error 111)"
        );
    }

    #[test]
    fn socks_targets_carry_their_port_and_resolve_where_the_scheme_says() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let target = |url: &str, resolve_here: bool| {
            runtime.block_on(socks_target(&url.parse::<Uri>().unwrap(), resolve_here)).unwrap().to_string()
        };
        // socks5h: the proxy resolves the name; the port is always written (80 for http).
        assert_eq!(target("https://localhost:8443/x", false), "http://localhost:8443/");
        assert_eq!(target("http://127.0.0.1/", true), "http://127.0.0.1:80/");
        assert_eq!(target("https://[::1]/", true), "http://[::1]:443/");
        // socks5: resolved here, to an address.
        let resolved = target("https://localhost:8443/", true);
        assert!(
            ["http://127.0.0.1:8443/", "http://[::1]:8443/"].contains(&resolved.as_str()),
            "localhost resolved to {resolved}"
        );
    }

    #[test]
    fn proxies_are_read_as_ureq_reads_them() {
        let wire = Arc::new(Wire::default());
        let to_proxy = || {
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(config)
                .https_only()
                .enable_http1()
                .wrap_connector(Counted::new(
                    HttpConnector::new(),
                    &wire,
                    &crate::net::gate::Gate::new(1),
                    Duration::from_secs(1),
                ))
        };
        let https = ProxyUrl::parse("https://u:p@127.0.0.1", "proxy_url").unwrap();
        match Via::of(&https, to_proxy) {
            Ok(Via::Connect { proxy, authorization, tls }) => {
                assert_eq!(proxy, "https://127.0.0.1:443/");
                assert_eq!(authorization.as_deref(), Some("Basic dTpw"));
                assert!(tls.is_some());
            }
            _ => panic!("an https proxy is CONNECT inside TLS"),
        }
        let socks = ProxyUrl::parse("socks5h://u:p%40ss@127.0.0.1", "proxy_url").unwrap();
        match Via::of(&socks, to_proxy) {
            Ok(Via::Socks5 { proxy, credentials, resolve_here }) => {
                assert_eq!(proxy, "http://127.0.0.1:1080/");
                assert_eq!(credentials, Some(("u".to_owned(), "p@ss".to_owned())));
                assert!(!resolve_here);
            }
            _ => panic!("socks5h is a SOCKS5 proxy that resolves names itself"),
        }
    }
}
