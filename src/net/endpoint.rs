//! Checking the URLs a caller hands in (service base URL, proxy, callback) and choosing a
//! proxy from the environment by curl's rules.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ureq::http::Uri;

use crate::api::error::Error;

/// The official service.
pub const DEFAULT_BASE_URL: &str = "https://api.capmonster.cloud";
/// Where the service serves its getUserAgent answer (another host than the API's).
pub const DEFAULT_USER_AGENT_URL: &str = "https://capmonster.cloud/api/useragent/actual";

/// A checked service base URL: https anywhere, plain http only to a loopback host (the
/// client key must never cross a network in clear text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    /// Without a trailing slash; method names are appended as `/<method>`.
    text: String,
    host: String,
    https: bool,
}

impl BaseUrl {
    pub fn parse(text: &str) -> Result<BaseUrl, Error> {
        let mut url = BaseUrl::parse_named(text, "base_url")?;
        url.text = text.trim_end_matches('/').to_owned();
        Ok(url)
    }

    /// A whole URL by the base URL's rules (`name` in the messages), kept as given: the
    /// getUserAgent page's.
    pub fn parse_page(text: &str, name: &'static str) -> Result<BaseUrl, Error> {
        BaseUrl::parse_named(text, name)
    }

    fn parse_named(text: &str, name: &'static str) -> Result<BaseUrl, Error> {
        let uri = parse_uri(text, name)?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(Error::invalid_argument(format!(
                    "{name} must start with https:// (or http:// to a loopback host)"
                )))
            }
        };
        let host = bare_host(&uri);
        if host.is_empty() {
            return Err(Error::invalid_argument(format!("{name} has no host")));
        }
        if !https && !is_loopback(host) {
            return Err(Error::invalid_argument(format!(
                "{name} uses http:// to a host that is not loopback (127.0.0.0/8, ::1, localhost); use https://"
            )));
        }
        if uri.query().is_some() || text.contains('#') {
            return Err(Error::invalid_argument(format!("{name} must not have a query or fragment")));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(Error::invalid_argument(format!("{name} must not carry credentials")));
        }
        Ok(BaseUrl { text: text.to_owned(), host: host.to_ascii_lowercase(), https })
    }

    pub fn official() -> BaseUrl {
        BaseUrl::parse(DEFAULT_BASE_URL).expect("the official base URL is valid")
    }

    /// The official getUserAgent page.
    pub fn official_user_agent() -> BaseUrl {
        BaseUrl::parse_page(DEFAULT_USER_AGENT_URL, "user_agent_url").expect("the official getUserAgent URL is valid")
    }

    pub fn method_url(&self, method: &str) -> String {
        format!("{}/{}", self.text, method)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// A checked proxy URL. Its Display hides credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    text: String,
    /// `user:password` when the URL carries credentials, to scrub from messages.
    userinfo: Option<String>,
}

impl ProxyUrl {
    /// `what` names the argument or environment variable in messages.
    pub fn parse(text: &str, what: &str) -> Result<ProxyUrl, Error> {
        let uri = parse_uri(text, what)?;
        match uri.scheme_str() {
            Some("http" | "https" | "socks5" | "socks5h" | "socks4" | "socks4a") => {}
            _ => {
                return Err(Error::invalid_argument(format!(
                    "{what} must start with http://, https://, socks5://, socks5h://, socks4:// or socks4a://"
                )))
            }
        }
        if bare_host(&uri).is_empty() {
            return Err(Error::invalid_argument(format!("{what} has no host")));
        }
        let userinfo = uri
            .authority()
            .and_then(|a| a.as_str().rsplit_once('@'))
            .map(|(userinfo, _)| userinfo.to_owned())
            .filter(|userinfo| !userinfo.is_empty());
        Ok(ProxyUrl { text: text.to_owned(), userinfo })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The credentials part, if any: never to be shown.
    pub fn userinfo(&self) -> Option<&str> {
        self.userinfo.as_deref()
    }

    /// The URL with its credentials replaced by `***`, fit for messages.
    pub fn redacted(&self) -> String {
        match &self.userinfo {
            Some(userinfo) => self.text.replacen(&format!("{userinfo}@"), "***@", 1),
            None => self.text.clone(),
        }
    }
}

impl fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyUrl({:?})", self.redacted())
    }
}

/// Checks a createTask `callbackUrl`: any http(s) URL (it is the caller's own server and
/// never receives the key).
pub fn check_callback_url(text: &str) -> Result<(), Error> {
    let uri = parse_uri(text, "callback_url")?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(Error::invalid_argument("callback_url must start with http:// or https://"));
    }
    if bare_host(&uri).is_empty() {
        return Err(Error::invalid_argument("callback_url has no host"));
    }
    Ok(())
}

fn parse_uri(text: &str, what: &str) -> Result<Uri, Error> {
    if text.is_empty() {
        return Err(Error::invalid_argument(format!("{what} is empty")));
    }
    if text.len() > MAX_URL_LEN {
        return Err(Error::invalid_argument(format!("{what} is longer than {MAX_URL_LEN} bytes")));
    }
    let uri: Uri = text.parse().map_err(|e| Error::invalid_argument(format!("{what} is not a valid URL: {e}")))?;
    if uri.scheme().is_none() || uri.authority().is_none() {
        return Err(Error::invalid_argument(format!("{what} is not an absolute URL (scheme://host)")));
    }
    // http::Uri takes any digits as a port but reports one that does not fit 16 bits as no
    // port at all, which would silently become the scheme's default port downstream.
    if let Some(port) = uri.authority().and_then(|authority| explicit_port(authority.as_str())) {
        if !matches!(port.parse::<u16>(), Ok(1..)) {
            return Err(Error::invalid_argument(format!("{what} has a port outside 1..=65535")));
        }
    }
    Ok(uri)
}

/// The port as written in an authority (`user@host:port`, `[v6]:port`), if any.
fn explicit_port(authority: &str) -> Option<&str> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, rest)| rest);
    let after_host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split_once(']').map_or("", |(_, rest)| rest),
        None => host_port.find(':').map_or("", |colon| &host_port[colon..]),
    };
    after_host.strip_prefix(':')
}

/// The longest URL accepted (base, proxy or callback).
pub const MAX_URL_LEN: usize = 8192;

/// The host without IPv6 brackets.
fn bare_host(uri: &Uri) -> &str {
    let host = uri.host().unwrap_or("");
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// 127.0.0.0/8, ::1 and `localhost`.
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4: Ipv4Addr| v4.is_loopback()),
        Err(_) => false,
    }
}

/// The proxy the environment asks for, by curl's rules rather than ureq's: for an https base
/// URL `https_proxy` then `HTTPS_PROXY`; for http only lower-case `http_proxy` (upper case is
/// ignored against "httpoxy"); then `all_proxy`, `ALL_PROXY`. A host matched by `no_proxy` /
/// `NO_PROXY` goes direct. Empty variables count as unset. Returns the variable's name too.
pub fn proxy_from_env(
    base: &BaseUrl,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<(&'static str, ProxyUrl)>, Error> {
    let set = |name: &str| var(name).filter(|value| !value.trim().is_empty());
    let candidates: &[&'static str] = if base.https {
        &["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
    } else {
        &["http_proxy", "all_proxy", "ALL_PROXY"]
    };
    let Some((name, value)) = candidates.iter().find_map(|&name| set(name).map(|value| (name, value))) else {
        return Ok(None);
    };
    let no_proxy = set("no_proxy").or_else(|| set("NO_PROXY")).unwrap_or_default();
    if no_proxy_matches(&no_proxy, &base.host) {
        return Ok(None);
    }
    // curl takes a proxy without a scheme as http://.
    let value = value.trim();
    let url = if value.contains("://") { value.to_owned() } else { format!("http://{value}") };
    Ok(Some((name, ProxyUrl::parse(&url, &format!("the environment variable {name}"))?)))
}

/// curl's `no_proxy` matching: `*` matches every host; otherwise each comma-separated entry
/// (a leading dot and a `:port` are dropped) matches that host and its subdomains. No CIDR.
fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    no_proxy.split(',').map(str::trim).filter(|entry| !entry.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry.trim_start_matches('.');
        let entry = entry.strip_prefix('[').and_then(|e| e.split_once(']')).map_or_else(
            || if entry.matches(':').count() == 1 { entry.split(':').next().unwrap_or(entry) } else { entry },
            |(inside, _)| inside,
        );
        let entry = entry.to_ascii_lowercase();
        host == entry || host.strip_suffix(entry.as_str()).is_some_and(|rest| rest.ends_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::Code;

    fn invalid(text: &str) -> String {
        let error = BaseUrl::parse(text).expect_err(text);
        assert_eq!(error.code, Code::InvalidArgument);
        error.message
    }

    #[test]
    fn base_urls() {
        assert_eq!(BaseUrl::parse("https://api.capmonster.cloud/").unwrap().as_str(), "https://api.capmonster.cloud");
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.9.9.9",
            "http://localhost:1/x",
            "http://[::1]:80",
            "https://example.com/api",
        ] {
            assert!(BaseUrl::parse(ok).is_ok(), "{ok}");
        }
        assert!(invalid("http://example.com").contains("loopback"));
        assert!(invalid("http://10.0.0.1").contains("loopback"));
        assert!(invalid("ftp://127.0.0.1").contains("https://"));
        assert!(invalid("").contains("empty"));
        assert!(invalid("not a url").contains("base_url"));
        assert!(invalid("/relative").contains("absolute"));
        assert!(invalid("https://x/?q=1").contains("query"));
        assert!(invalid("https://user:pw@x").contains("credentials"));
        assert!(invalid("http://127.0.0.1:99999").contains("port"));
        assert!(invalid("http://127.0.0.1:0").contains("port"));
        assert!(invalid("https://x:65536").contains("port"));
        assert!(BaseUrl::parse("https://x:65535").is_ok());
        assert!(BaseUrl::parse("http://[::1]:8080").is_ok());
        assert!(invalid("http://[::1]:123456").contains("port"));
    }

    #[test]
    fn proxy_urls_hide_credentials() {
        let proxy = ProxyUrl::parse("http://user:s3cret@127.0.0.1:3128", "proxy_url").unwrap();
        assert_eq!(proxy.userinfo(), Some("user:s3cret"));
        assert!(!format!("{proxy:?}").contains("s3cret"));
        assert_eq!(proxy.redacted(), "http://***@127.0.0.1:3128");
        assert!(ProxyUrl::parse("socks5://127.0.0.1:1080", "proxy_url").is_ok());
        assert!(ProxyUrl::parse("ftp://127.0.0.1", "proxy_url").unwrap_err().message.contains("proxy_url"));
        assert!(ProxyUrl::parse("http://127.0.0.1:70000", "proxy_url").unwrap_err().message.contains("port"));
    }

    #[test]
    fn callback_urls() {
        assert!(check_callback_url("http://example.com/hook").is_ok());
        assert!(check_callback_url("https://example.com").is_ok());
        assert!(check_callback_url("mailto:x@y").is_err());
        assert!(check_callback_url("").is_err());
    }

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn proxy_environment_follows_curl() {
        let https = BaseUrl::parse("https://api.capmonster.cloud").unwrap();
        let http = BaseUrl::parse("http://127.0.0.1:9").unwrap();
        let chosen =
            |base, pairs| proxy_from_env(base, env(pairs)).unwrap().map(|(name, url)| (name, url.as_str().to_owned()));
        assert_eq!(chosen(&https, &[("HTTPS_PROXY", "http://p:1")]), Some(("HTTPS_PROXY", "http://p:1".into())));
        assert_eq!(
            chosen(&https, &[("https_proxy", "p:2"), ("HTTPS_PROXY", "http://p:1")]),
            Some(("https_proxy", "http://p:2".into()))
        );
        assert_eq!(chosen(&http, &[("HTTP_PROXY", "http://p:1")]), None, "upper-case HTTP_PROXY is ignored");
        assert_eq!(chosen(&http, &[("http_proxy", "http://p:1")]), Some(("http_proxy", "http://p:1".into())));
        assert_eq!(chosen(&http, &[("HTTPS_PROXY", "http://p:1")]), None);
        assert_eq!(chosen(&https, &[("ALL_PROXY", "socks5://p:1")]), Some(("ALL_PROXY", "socks5://p:1".into())));
        assert_eq!(chosen(&https, &[("https_proxy", "")]), None);
        assert_eq!(chosen(&https, &[("https_proxy", "http://p:1"), ("no_proxy", "*")]), None);
        assert_eq!(chosen(&https, &[("https_proxy", "http://p:1"), ("NO_PROXY", "x.org, .capmonster.cloud")]), None);
        assert_eq!(chosen(&https, &[("https_proxy", "http://p:1"), ("no_proxy", "capmonster.cloud:443")]), None);
        assert!(chosen(&https, &[("https_proxy", "http://p:1"), ("no_proxy", "monster.cloud")]).is_some());
        assert_eq!(chosen(&http, &[("http_proxy", "http://p:1"), ("no_proxy", "127.0.0.1")]), None);
        let error = proxy_from_env(&https, env(&[("https_proxy", "ftp://p")])).unwrap_err();
        assert!(error.message.contains("https_proxy"), "{}", error.message);
    }
}
