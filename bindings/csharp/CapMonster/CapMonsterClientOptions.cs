using System;

namespace CapMonster
{
    /// <summary>
    /// Settings for a <see cref="CapMonsterClient"/>, read once by its constructor. Every
    /// property left at its default keeps the native library's behaviour.
    /// </summary>
    public sealed class CapMonsterClientOptions
    {
        /// <summary>
        /// Creates options with the defaults: the official service, 21 s per request, the
        /// environment's proxy settings, the system's certificate authorities, 64 connections.
        /// </summary>
        public CapMonsterClientOptions()
        {
            UseProxy = true;
        }

        /// <summary>
        /// Another endpoint than https://api.capmonster.cloud: https:// anywhere, http:// only
        /// to a loopback host (127.0.0.0/8, ::1, localhost), e.g. the emulator. Null: the
        /// official service.
        /// </summary>
        public string BaseUrl { get; set; }

        /// <summary>
        /// Bounds each HTTP request (connect, send, answer); null keeps the library's 21 s.
        /// Sent as whole milliseconds, rounded up; <see cref="TimeSpan.Zero"/> is refused by
        /// the library.
        /// </summary>
        public TimeSpan? RequestTimeout { get; set; }

        /// <summary>
        /// The proxy every request goes through: http://, https://, socks5:// or socks5h://,
        /// with optional user:password@ (never shown in messages). Null with
        /// <see cref="UseProxy"/> true: the environment decides (https_proxy, http_proxy,
        /// all_proxy, no_proxy by curl's rules, read when the client is made).
        /// </summary>
        public string Proxy { get; set; }

        /// <summary>
        /// False: no proxy at all, whatever the environment says (then <see cref="Proxy"/> must
        /// stay null). True (the default): <see cref="Proxy"/>, or the environment's.
        /// </summary>
        public bool UseProxy { get; set; }

        /// <summary>
        /// A PEM file of certificate authorities to trust instead of the operating system's
        /// store (a private CA, e.g. corporate TLS inspection); read when the client is made.
        /// Null: the system store.
        /// </summary>
        public string CaFile { get; set; }

        /// <summary>
        /// The most connections the client holds at once (cm_client_set_max_connections); calls
        /// beyond it wait for a connection, within their request timeout. Null: the library's
        /// default (64). The library refuses 0 (<see cref="CapMonsterErrorCode.InvalidArgument"/>);
        /// a negative value is sent as 0.
        /// </summary>
        public int? MaxConnections { get; set; }
    }
}
