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
        /// Creates options that keep every default of the native library (the official service,
        /// its request timeout and connection cap, the environment's proxy settings, the
        /// system's certificate authorities).
        /// </summary>
        public CapMonsterClientOptions()
        {
            UseProxy = true;
        }

        /// <summary>
        /// Another endpoint than the official service, e.g. the emulator
        /// (<c>cm_client_set_base_url</c>: the library says which URLs it accepts). Null: the
        /// official service.
        /// </summary>
        public string BaseUrl { get; set; }

        /// <summary>
        /// Another page for <see cref="CapMonsterClient.GetUserAgent"/> than the official one, e.g.
        /// the emulator's "/useragent" (<c>cm_client_set_user_agent_url</c>: the base URL's rules).
        /// Null: https://capmonster.cloud/api/useragent/actual.
        /// </summary>
        public string UserAgentUrl { get; set; }

        /// <summary>
        /// Bounds each HTTP request (<c>cm_client_set_request_timeout_ms</c>); null keeps the
        /// library's default. Sent as whole milliseconds, rounded up; a negative span is sent as
        /// 0, one beyond <see cref="uint.MaxValue"/> ms (or <see cref="System.Threading.Timeout.InfiniteTimeSpan"/>)
        /// as <see cref="uint.MaxValue"/>; the library judges the value.
        /// </summary>
        public TimeSpan? RequestTimeout { get; set; }

        /// <summary>
        /// The proxy every request goes through (<c>cm_client_set_proxy</c>: the library says
        /// which schemes it takes and keeps credentials out of its messages). Null with
        /// <see cref="UseProxy"/> true: the environment decides, by the library's rules.
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
        /// The most connections the client holds at once, calls and waits together
        /// (<c>cm_client_set_max_connections</c>); it also caps the library's threads for
        /// <see cref="CapMonsterClient.WaitResultAsync"/>. Null: the library's default. A negative
        /// value is sent as 0; the library judges the value.
        /// </summary>
        public int? MaxConnections { get; set; }

        /// <summary>
        /// The id of the software developer the service pays a commission to, sent with every
        /// createTask (<c>cm_client_set_soft_id</c>). Null: the library's default (none);
        /// 0 also sends none.
        /// </summary>
        public uint? SoftId { get; set; }

        /// <summary>
        /// How the client's waits send their requests (<c>cm_client_set_engine</c>). Null: the
        /// environment's <c>CAPMONSTER_ENGINE</c>, else the library's default. The library judges
        /// the value.
        /// </summary>
        public CapMonsterEngine? Engine { get; set; }
    }

    /// <summary>How a client's waits send their requests (the header's CM_ENGINE_*); the rules of a wait are the same on both.</summary>
    public enum CapMonsterEngine
    {
        /// <summary>Requests in flight are futures on one event loop: at most three library threads per client, whatever the number of waits.</summary>
        EventLoop = 1,
        /// <summary>Each request in flight is sent by a worker thread that blocks until its answer, at most MaxConnections of them.</summary>
        Threads = 2,
    }
}
