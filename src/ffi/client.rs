//! `cm_client`: one account key, one connection pool, one cap on connections.
//!
//! Creation and the setters store a `cm_result` in `*out_result` on every return when
//! `out_result` is not NULL: its message says why a value was refused, naming the argument.

use std::ffi::c_char;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, Engine};
use crate::ffi::arguments::{handle, optional_text, out, text};
use crate::ffi::boundary;
use crate::ffi::handle::{free_arc, into_arc, opaque};
use crate::ffi::library::cm_code;
use crate::ffi::result::{cm_result, CallResult};

opaque! {
    /// A client of the CapMonster Cloud API: the account key, the settings, the connection
    /// pool. Made by `cm_client_new`, freed by `cm_client_free`. A setting applies to the calls
    /// that start after it. A waiter keeps its client alive, so the client may be freed once
    /// `cm_waiter_new` has returned, before its waiters.
    pub struct cm_client(Arc<Client>);
}

/// Creates a client for `client_key` (your account key), talking to
/// <https://api.capmonster.cloud> with the environment's proxy settings (curl's rules; a
/// malformed proxy variable is reported by the first call that would use it). On CM_OK
/// `*out_client` is a new client to free with `cm_client_free`; on failure it is not written.
/// `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_new(
    client_key: *const c_char,
    out_client: *mut *mut cm_client,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            let mut out_client = out(out_client, "out_client")?;
            let client = Client::new(text(client_key, "client_key")?)?;
            out_client.write(into_arc(Arc::new(client)));
            Ok(CallResult::ok("client created"))
        })
    }
}

/// Sends requests to `base_url` instead of <https://api.capmonster.cloud>: https:// anywhere,
/// http:// only to a loopback host (127.0.0.0/8, ::1, localhost), e.g. the emulator.
/// `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_set_base_url(
    client: *mut cm_client,
    base_url: *const c_char,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            let (client, base_url) = (handle(client, "client")?, text(base_url, "base_url")?);
            client.set_base_url(base_url)?;
            Ok(CallResult::ok("base_url set"))
        })
    }
}

/// Fetches `cm_get_user_agent`'s answer from `user_agent_url` instead of
/// <https://capmonster.cloud/api/useragent/actual>, e.g. the emulator's `/useragent`; the
/// rules of `cm_client_set_base_url` apply (and no query). `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_set_user_agent_url(
    client: *mut cm_client,
    user_agent_url: *const c_char,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            let (client, url) = (handle(client, "client")?, text(user_agent_url, "user_agent_url")?);
            client.set_user_agent_url(url)?;
            Ok(CallResult::ok("user_agent_url set"))
        })
    }
}

/// Bounds each HTTP request (connect, send, answer); default 21000 ms; 0 is invalid.
/// `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_set_request_timeout_ms(
    client: *mut cm_client,
    timeout_ms: u32,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            handle(client, "client")?.set_request_timeout(Duration::from_millis(u64::from(timeout_ms)))?;
            Ok(CallResult::ok("timeout_ms set"))
        })
    }
}

/// Sends every request through `proxy_url` (http://, https://, socks4://, socks4a://,
/// socks5://, socks5h://, with optional user:password@, which never appears in messages);
/// NULL turns proxying off, whatever the environment says. Until this is called, the
/// environment decides. `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_set_proxy(
    client: *mut cm_client,
    proxy_url: *const c_char,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            let (client, proxy_url) = (handle(client, "client")?, optional_text(proxy_url, "proxy_url")?);
            client.set_proxy(proxy_url)?;
            Ok(CallResult::ok(if proxy_url.is_some() { "proxy_url set" } else { "proxying turned off" }))
        })
    }
}

/// Trusts only the certificate authorities in the PEM file at `path` (a private CA, e.g.
/// corporate TLS inspection), instead of the operating system's store; NULL goes back to the
/// system store (the default). The file is read now: a missing or empty one is
/// CM_ERR_INVALID_ARGUMENT. `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_set_ca_file(
    client: *mut cm_client,
    path: *const c_char,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            let (client, path) = (handle(client, "client")?, optional_text(path, "path")?);
            client.set_ca_file(path)?;
            Ok(CallResult::ok(if path.is_some() {
                "path set: only its CAs are trusted"
            } else {
                "the system's CAs are trusted"
            }))
        })
    }
}

/// Caps the connections the client holds at once, and its HTTP/1.1 requests in flight,
/// blocking calls and waiters together (at least 1). Without a cap of the program's, the
/// engine's (cm_client_set_engine): 64 on CM_ENGINE_THREADS (a waiter runs at most this many
/// threads); on CM_ENGINE_EVENT_LOOP a quarter of the process's open-files limit, from 64 to
/// 4,096 (64 on Windows, until the event loop is measured there), of which HTTP/1.1 opens only
/// as many as the server's round trip needs (docs/engine.md). A call beyond the cap waits
/// for a connection within its deadline, and its cancel stops that wait. `out_result` may be
/// NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_set_max_connections(
    client: *mut cm_client,
    max_connections: u32,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            handle(client, "client")?.set_max_connections(max_connections)?;
            Ok(CallResult::ok("max_connections set"))
        })
    }
}

/// Sends `soft_id`, the id of the software developer the service pays a commission to, with
/// every createTask from now on; 0 (the default) sends none. Every value is accepted.
/// `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_set_soft_id(
    client: *mut cm_client,
    soft_id: u32,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            handle(client, "client")?.set_soft_id(soft_id);
            Ok(CallResult::ok(if soft_id == 0 { "no soft_id is sent" } else { "soft_id set" }))
        })
    }
}

/// How a client's waiters send their requests: one of the CM_ENGINE_* values.
pub type cm_engine = u32;
/// Requests in flight are futures on one event loop (at most three library threads per client
/// with waiters, whatever the number of waits; HTTP/2 when the server offers it).
pub const CM_ENGINE_EVENT_LOOP: cm_engine = 1;
/// Each request in flight is sent by a worker thread that blocks until its answer, at most
/// max_connections of them.
pub const CM_ENGINE_THREADS: cm_engine = 2;

/// Chooses how the client's waiters send their requests: `CM_ENGINE_EVENT_LOOP` or
/// `CM_ENGINE_THREADS` (a new client's is the environment's `CAPMONSTER_ENGINE`, `events` or
/// `threads`, else the library's default: the event loop, the threads on Windows). A cap of
/// connections the program did not set follows the engine's default (cm_client_set_max_connections). The rules of a wait are the same on
/// both; single blocking calls always send on the calling thread. Takes effect at the next poll
/// of each wait. Any other value is refused (CM_ERR_INVALID_ARGUMENT). `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_set_engine(
    client: *mut cm_client,
    engine: cm_engine,
    out_result: *mut *mut cm_result,
) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            let client = handle(client, "client")?;
            let engine = Engine::from_number(engine)?;
            client.set_engine(engine);
            Ok(CallResult::ok(match engine {
                Engine::EventLoop => "the waiters send on an event loop",
                Engine::Threads => "the waiters send on worker threads",
            }))
        })
    }
}

/// Ends the account guard's stops of this client's key and endpoint, in every process of the
/// user: call it once the user has fixed what the service refused (the key, the address
/// whitelist, the balance), so that calls go out at once rather than after the cool-down.
/// Stops of banned proxies stay: their ban is the target's, not the user's to lift.
/// While a stop is in force, a call it holds returns CM_ERR_API with the service's own error
/// code and description, a request count of 0 and an HTTP status of 0 (a call the service
/// answered has a request count of at least 1). `out_result` may be NULL.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_end_stops(client: *mut cm_client, out_result: *mut *mut cm_result) -> cm_code {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::optional_result(out_result, 0, || {
            handle(client, "client")?.end_stops();
            Ok(CallResult::ok("the account guard's stops of this key ended"))
        })
    }
}

/// Frees the caller's reference to a client; its connections close when no waiter still uses
/// it. NULL is fine.
///
/// # Safety
/// The rules at the top of include/capmonster.h, which every caller keeps.
#[no_mangle]
pub unsafe extern "system" fn cm_client_free(client: *mut cm_client) {
    // SAFETY: the caller keeps the header's rules for every pointer here.
    unsafe {
        boundary::value((), || {
            free_arc(client);
            Ok(())
        })
    }
}
