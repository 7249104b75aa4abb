//! Which certificate authorities the client trusts, as curl does: the operating system's
//! store by default (Mozilla's bundled roots where the system has none), or the CA file the
//! caller names (a private CA, e.g. corporate TLS inspection), which then replaces it.

use std::fmt;
use std::sync::LazyLock;

use ureq::tls::{Certificate, RootCerts};

use crate::api::error::Error;

/// The largest CA file read.
pub const MAX_CA_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// The most of a path a message quotes.
const MAX_PATH_SHOWN: usize = 256;

/// The system's roots, loaded once per process (reading them takes milliseconds).
static SYSTEM_ROOTS: LazyLock<RootCerts> = LazyLock::new(|| {
    // Unreadable entries are skipped; with no usable root at all, fall back to Mozilla's list.
    let found = rustls_native_certs::load_native_certs();
    let certs: Vec<Certificate<'static>> =
        found.certs.iter().map(|der| Certificate::from_der(der).to_owned()).collect();
    if certs.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::new_with_certs(&certs)
    }
});

/// Where trust comes from.
#[derive(Clone)]
pub(crate) enum Trust {
    System,
    /// Only the certificates of this PEM file (path kept for Debug output).
    CaFile {
        path: String,
        roots: RootCerts,
    },
}

impl fmt::Debug for Trust {
    // Names the source, not hundreds of certificates.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::System => f.write_str("Trust::System"),
            Trust::CaFile { path, .. } => write!(f, "Trust::CaFile({path:?})"),
        }
    }
}

impl Trust {
    /// Reads the PEM file now, so a bad path is reported when it is set, not at the first call.
    pub fn from_ca_file(path: &str) -> Result<Trust, Error> {
        // A message names the file, but never echoes a huge argument whole.
        let shown = crate::api::text::truncate(path, MAX_PATH_SHOWN);
        let cut = if shown.len() < path.len() { "..." } else { "" };
        let bad = |why: String| Error::invalid_argument(format!("ca_file {shown:?}{cut}: {why}"));
        let size = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?.len();
        if size > MAX_CA_FILE_BYTES {
            return Err(bad(format!("larger than {MAX_CA_FILE_BYTES} bytes")));
        }
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(&pem) {
            if let ureq::tls::PemItem::Certificate(cert) = item.map_err(|e| bad(e.to_string()))? {
                certs.push(cert);
            }
        }
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate".to_owned()));
        }
        Ok(Trust::CaFile { path: path.to_owned(), roots: RootCerts::new_with_certs(&certs) })
    }

    pub fn roots(&self) -> RootCerts {
        match self {
            Trust::System => SYSTEM_ROOTS.clone(),
            Trust::CaFile { roots, .. } => roots.clone(),
        }
    }
}

/// One line on a TLS failure, saying plainly when the certificate is what was refused.
pub(crate) fn tls_failure(error: &rustls::Error) -> String {
    use rustls::CertificateError::*;
    match error {
        rustls::Error::InvalidCertificate(why) => match why {
            UnknownIssuer => "the server's TLS certificate is not trusted: its issuer is not a trusted certificate \
                              authority (for a private CA use cm_client_set_ca_file)"
                .to_owned(),
            Expired | ExpiredContext { .. } => "the server's TLS certificate has expired".to_owned(),
            NotValidYet | NotValidYetContext { .. } => "the server's TLS certificate is not valid yet".to_owned(),
            NotValidForName | NotValidForNameContext { .. } => {
                "the server's TLS certificate is not valid for this host name".to_owned()
            }
            other => format!("the server's TLS certificate was refused: {other:?}"),
        },
        // What a plain-HTTP server's answer to a TLS hello looks like.
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            "TLS failed: the server does not speak TLS (a plain-HTTP server, such as the emulator, needs an http:// URL)"
                .to_owned()
        }
        other => format!("TLS failed: {other}"),
    }
}
