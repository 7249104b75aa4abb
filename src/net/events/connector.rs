//! How the event loop reaches the service: TLS (the same rustls and trusted roots as the
//! blocking path, HTTP/2 offered by ALPN) over the counted TCP sockets of `socket.rs`.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::api::error::{Code, Error};
use crate::net::events::socket::Counted;
use crate::net::gate::Gate;
use crate::net::trust::Trust;
use crate::net::wire::Wire;

/// The connector hyper's client opens its connections with.
pub(crate) type Connector = HttpsConnector<Counted>;

/// `None` when the trust has no roots to give rustls here (Mozilla's bundled list, which only
/// ureq carries): the engine then keeps its threads.
pub(crate) fn build(
    trust: &Trust,
    request_timeout: Duration,
    wire: &Arc<Wire>,
    gate: &Arc<Gate>,
) -> Option<Result<Connector, Error>> {
    let ureq::tls::RootCerts::Specific(certs) = trust.roots() else { return None };
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs.iter() {
        // An unusable root is skipped, as ureq skips it.
        let _ = roots.add(rustls::pki_types::CertificateDer::from(cert.der().to_vec()));
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
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(counted);
    Some(Ok(connector))
}
