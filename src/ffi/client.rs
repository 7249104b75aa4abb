//! `cm_client`: one account key and one connection pool.
//!
//! Ownership: a `Box<Client>` made by `cm_client_new`, freed by `cm_client_free`. Every
//! function may be called from many threads at once on the same client, the setters too
//! (a setting applies to the calls that start after it). Free it only when no call is running.

use std::ffi::c_char;
use std::time::Duration;

use crate::client::Client;
use crate::error::Error;
use crate::ffi::boundary::{catch, handle, optional_str_arg, out_arg, str_arg, with_code};
use crate::ffi::library::cm_code;

/// A client of the CapMonster Cloud API. Opaque.
pub struct cm_client {
    _private: [u8; 0],
}

/// Creates a client for `client_key` (your account key), talking to
/// <https://api.capmonster.cloud> with the environment's proxy settings (curl's rules).
/// On CM_OK `*out_client` is a new client to free with `cm_client_free`.
///
/// # Safety
/// `client_key` is NULL or a NUL-terminated string; `out_client` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn cm_client_new(client_key: *const c_char, out_client: *mut *mut cm_client) -> cm_code {
    with_code(|| {
        out_arg(out_client, "out_client")?;
        // SAFETY: the caller's contract.
        let client = Client::new(unsafe { str_arg(client_key, "client_key") }?)?;
        // SAFETY: checked not NULL above; writable by contract.
        unsafe { out_client.write(Box::into_raw(Box::new(client)) as *mut cm_client) };
        Ok(())
    })
}

/// Sends requests to `base_url` instead of <https://api.capmonster.cloud>: https:// anywhere,
/// http:// only to a loopback host (127.0.0.0/8, ::1, localhost), e.g. the emulator.
///
/// # Safety
/// `client` is NULL or a live client; `base_url` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cm_client_set_base_url(client: *mut cm_client, base_url: *const c_char) -> cm_code {
    with_code(|| {
        // SAFETY: the caller's contract.
        let (client, base_url) = unsafe { (client_arg(client)?, str_arg(base_url, "base_url")?) };
        client.set_base_url(base_url)
    })
}

/// Bounds each HTTP request (connect, send, answer); default 21000 ms; 0 is invalid.
///
/// # Safety
/// `client` is NULL or a live client.
#[no_mangle]
pub unsafe extern "C" fn cm_client_set_request_timeout_ms(client: *mut cm_client, timeout_ms: u32) -> cm_code {
    with_code(|| {
        // SAFETY: the caller's contract.
        let client = unsafe { client_arg(client) }?;
        client.set_request_timeout(Duration::from_millis(u64::from(timeout_ms)))
    })
}

/// Sends every request through `proxy_url` (http://, https://, socks5://, socks5h://, with
/// optional user:password@, which never appears in messages); NULL turns proxying off,
/// whatever the environment says. Until this is called, the environment decides.
///
/// # Safety
/// `client` is NULL or a live client; `proxy_url` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cm_client_set_proxy(client: *mut cm_client, proxy_url: *const c_char) -> cm_code {
    with_code(|| {
        // SAFETY: the caller's contract.
        let (client, proxy_url) = unsafe { (client_arg(client)?, optional_str_arg(proxy_url, "proxy_url")?) };
        client.set_proxy(proxy_url)
    })
}

/// Trusts only the certificate authorities in the PEM file at `path` (a private CA, e.g.
/// corporate TLS inspection), instead of the operating system's store; NULL goes back to the
/// system store (the default). The file is read now: a missing or empty one is
/// CM_ERR_INVALID_ARGUMENT.
///
/// # Safety
/// `client` is NULL or a live client; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn cm_client_set_ca_file(client: *mut cm_client, path: *const c_char) -> cm_code {
    with_code(|| {
        // SAFETY: the caller's contract.
        let (client, path) = unsafe { (client_arg(client)?, optional_str_arg(path, "path")?) };
        client.set_ca_file(path)
    })
}

/// Frees a client and its connections. NULL is fine.
///
/// # Safety
/// `client` is NULL or a live client that no call is using, not used again afterwards.
#[no_mangle]
pub unsafe extern "C" fn cm_client_free(client: *mut cm_client) {
    if !client.is_null() {
        // SAFETY: made by Box::into_raw in cm_client_new; the caller gives it up.
        catch((), || drop(unsafe { Box::from_raw(client as *mut Client) }));
    }
}

/// # Safety
/// `client` is NULL or a live client.
pub(crate) unsafe fn client_arg<'a>(client: *const cm_client) -> Result<&'a Client, Error> {
    // SAFETY: forwarded contract.
    unsafe { handle(client, "client") }
}
