using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

namespace CapMonster.Tests
{
    /// <summary>
    /// The binding against the emulator. Every test uses its own client key and task ids:
    /// the native 120-request budget is process-wide per (key, task).
    /// </summary>
    public static class ClientTests
    {
        private const string Unicode = "héllo ✓ 日本";

        public static IEnumerable<Action> All()
        {
            return new Action[]
            {
                NativeVersionIsReported,
                SetBudgetAfterTheFirstClient,
                WaitOptionsDefaults,
                WaitOptionsForTaskType,
                WaitOptionsForTask,
                CreateTaskWithItsWaitOptions,
                WaitOptionsMapUnrepresentableValues,
                GetBalanceReadsTheBalance,
                GetTaskResultProcessing,
                GetTaskResultReady,
                WaitResultPollsUntilReady,
                LogHandlerSeesEveryLineWithoutTheKeyAndStatsCount,
                CreateTaskThenWaitWithTheOfficialSchedule,
                CreateTaskFailures,
                ApiErrorCarriesCodeDescriptionStatusAndCounts,
                ApiErrorsCoverTheGlossary,
                WrongCaptchaIdIsNoSuchTask,
                GetUserAgent,
                ApiErrorWithHttp402ZeroBalance,
                GuardAnswersAsTheServiceDid,
                NetworkErrorWhenConnectionRefused,
                RequestTimeoutOnStalledAnswer,
                WaitTimeout,
                BadResponse,
                HttpStatus502,
                WaitRetries502UntilMaxRequests,
                BudgetFromMaxRequests,
                ProcessWideBudgetOf120,
                InvalidArgumentsFromTheNativeLibrary,
                ManagedArgumentChecks,
                UnicodeSolutionRoundTrips,
                EscapedSolutionStringsAreUnescaped,
                ExplicitProxyIsUsedAndItsPasswordHidden,
                UseProxyFalseIgnoresTheEnvironment,
                MalformedProxyInTheEnvironmentDoesNotFailCreation,
                BadBaseUrlCarriesTheLibrarysMessage,
                MaxConnectionsIsPassedToTheLibrary,
                CaFileIsReadWhenTheClientIsMade,
                CancelStopsALongWaitWithin100Ms,
                WaitResultAsyncSucceeds,
                WaitResultAsyncCancelStopsTheNativeWait,
                WaitResultAsyncWithCancelledTokenSendsNothing,
                SixteenThreadsShareOneClient,
                DisposeTwiceIsFine,
                UseAfterDisposeThrowsObjectDisposed,
                DisposeEndsAWaitInProgress,
                TenThousandCallsKeepMemoryFlat,
            };
        }

        // ---- helpers ----

        private static CapMonsterClient NewClient(string key)
        {
            return NewClient(key, null);
        }

        private static CapMonsterClient NewClient(string key, TimeSpan? requestTimeout)
        {
            return new CapMonsterClient("cs-" + key, new CapMonsterClientOptions
            {
                BaseUrl = Emulator.Url,
                UseProxy = false,
                RequestTimeout = requestTimeout,
            });
        }

        /// <summary>Polls at once, then every 10 ms.</summary>
        private static WaitOptions Fast()
        {
            var options = new WaitOptions();
            options.FirstDelay = TimeSpan.Zero;
            options.Interval = TimeSpan.FromMilliseconds(10);
            options.Timeout = TimeSpan.FromSeconds(30);
            return options;
        }

        /// <summary>A wait that would sleep a minute between polls.</summary>
        private static WaitOptions Slow()
        {
            var options = new WaitOptions();
            options.FirstDelay = TimeSpan.Zero;
            options.Interval = TimeSpan.FromSeconds(60);
            options.Timeout = TimeSpan.FromSeconds(120);
            return options;
        }

        private static int ClosedPort()
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            return port;
        }

        private static long RssBytes()
        {
            foreach (string line in File.ReadAllLines("/proc/self/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    return long.Parse(Regex.Match(line, "\\d+").Value) * 1024;
                }
            }
            throw new InvalidOperationException("no VmRSS in /proc/self/status");
        }

        private static void FullCollect()
        {
            for (int i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }

        // ---- tests ----

        private static void NativeVersionIsReported()
        {
            Assert.True(Regex.IsMatch(CapMonsterClient.NativeVersion ?? "", "^\\d+\\.\\d+\\.\\d+$"),
                "version looks like MAJOR.MINOR.PATCH: " + CapMonsterClient.NativeVersion);
        }

        /// <summary>After a first client the library refuses a budget choice in its own words,
        /// and checks the value first (the choice before one is tested in C, Rust and Python,
        /// each in a process of its own).</summary>
        private static void SetBudgetAfterTheFirstClient()
        {
            using (NewClient("set-budget"))
            {
                var late = Assert.Throws<CapMonsterException>(() => CapMonsterClient.SetBudget("process"), "after a client");
                Assert.Equal(CapMonsterErrorCode.InvalidArgument, late.Code, "code");
                Assert.True(late.Message.Contains("a client was already created"), late.Message);
                var bad = Assert.Throws<CapMonsterException>(() => CapMonsterClient.SetBudget("nonsense"), "bad value");
                Assert.True(bad.Message.Contains("\"nonsense\""), bad.Message);
            }
        }

        private static void WaitOptionsDefaults()
        {
            WaitOptions d = WaitOptions.Default;
            Assert.Equal(TimeSpan.FromMilliseconds(1000), d.FirstDelay, "FirstDelay");
            Assert.Equal(TimeSpan.FromMilliseconds(2000), d.Interval, "Interval");
            Assert.Equal(TimeSpan.FromMilliseconds(180000), d.Timeout, "Timeout");
            Assert.Equal(120, d.MaxRequests, "MaxRequests");
            d.MaxRequests = 3;
            Assert.Equal(120, WaitOptions.Default.MaxRequests, "Default is a fresh instance each time");
            Assert.Equal(120, new WaitOptions().MaxRequests, "new WaitOptions() has the defaults");
            WaitOptions copy = d.Clone();
            d.MaxRequests = 4;
            Assert.Equal(3, copy.MaxRequests, "Clone is independent");
        }

        private static void WaitOptionsForTaskType()
        {
            WaitOptions image = WaitOptions.ForTaskType("ImageToTextTask");
            Assert.Equal(TimeSpan.FromMilliseconds(350), image.FirstDelay, "image FirstDelay");
            Assert.Equal(TimeSpan.FromMilliseconds(200), image.Interval, "image Interval");
            Assert.Equal(TimeSpan.FromSeconds(10), image.Timeout, "image Timeout");
            WaitOptions v2 = WaitOptions.ForTaskType("RecaptchaV2TaskProxyless");
            Assert.Equal(TimeSpan.FromSeconds(1), v2.FirstDelay, "v2 proxyless FirstDelay");
            Assert.Equal(TimeSpan.FromSeconds(3), v2.Interval, "v2 proxyless Interval");
            Assert.Equal(TimeSpan.FromSeconds(180), v2.Timeout, "v2 proxyless Timeout");
            // As Go's WaitOptionsFor: an unknown name, and one the library cannot read (NULL, not
            // UTF-8, or cut short by a NUL), get the library's defaults.
            string defaults = WaitOptions.Default.ToString();
            Assert.Equal(defaults, WaitOptions.ForTaskType("NoSuchTask ✓").ToString(), "unknown types get the defaults");
            Assert.Equal(defaults, WaitOptions.ForTaskType(null).ToString(), "null");
            Assert.Equal(defaults, WaitOptions.ForTaskType("ImageToTextTask\ud800").ToString(), "a lone surrogate: not UTF-8");
            Assert.Equal(defaults, WaitOptions.ForTaskType("ImageToTextTask\0").ToString(), "a NUL: not what C would read");
            Assert.True(defaults != image.ToString(), "the image schedule differs from the defaults");
        }

        private static void WaitOptionsForTask()
        {
            WaitOptions imperva = WaitOptions.ForTask("{\"type\":\"CustomTask\",\"class\":\"Imperva\",\"websiteURL\":\"https://example.com\"}");
            Assert.Equal(TimeSpan.FromSeconds(1), imperva.FirstDelay, "Imperva FirstDelay");
            Assert.Equal(TimeSpan.FromSeconds(1), imperva.Interval, "Imperva Interval");
            Assert.Equal(TimeSpan.FromSeconds(15), imperva.Timeout, "Imperva Timeout");
            Assert.Equal(120, imperva.MaxRequests, "Imperva MaxRequests");
            WaitOptions nocache = WaitOptions.ForTask("{\"type\":\"HCaptchaTaskProxyless\",\"nocache\":true}");
            Assert.Equal(TimeSpan.FromSeconds(10), nocache.FirstDelay, "nocache FirstDelay");
            Assert.Equal(TimeSpan.FromSeconds(3), nocache.Interval, "nocache Interval");
            Assert.Equal(WaitOptions.Default.ToString(), WaitOptions.ForTask("{\"type\":\"NoSuchTask\",\"class\":\"Imperva\"}").ToString(), "unknown type");
            foreach (string bad in new[] { null, "", "[]", "{\"class\":\"Imperva\"}", "{\"type\":\"\"}" })
            {
                var e = Assert.Throws<CapMonsterException>(() => WaitOptions.ForTask(bad), "refused: " + bad);
                Assert.Equal(CapMonsterErrorCode.InvalidArgument, e.Code, "code: " + bad);
            }
            Assert.Throws<ArgumentException>(() => WaitOptions.ForTask("{\"type\":\"a\0\"}"), "a NUL");
        }

        private static void CreateTaskWithItsWaitOptions()
        {
            using (var client = NewClient("create-schedule"))
            {
                WaitOptions options;
                long id = client.CreateTask("{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", out options);
                Assert.True(id > 0, "task id");
                Assert.Equal(TimeSpan.FromMilliseconds(350), options.FirstDelay, "image FirstDelay");
                Assert.Equal(TimeSpan.FromSeconds(10), options.Timeout, "image Timeout");
                Assert.Equal("answer", client.WaitResult(id, options).GetSolutionString("text"), "text");
            }
        }

        private static void WaitOptionsMapUnrepresentableValues()
        {
            // The binding refuses nothing: the properties keep what was set, the wait sends the
            // documented mapping (negative -> 0, beyond uint32 ms -> the maximum, rounded up) and
            // the library judges it with its own message.
            var o = new WaitOptions();
            o.Interval = TimeSpan.FromMilliseconds(-1);
            o.MaxRequests = -1;
            o.Timeout = Timeout.InfiniteTimeSpan;
            Assert.Equal(TimeSpan.FromMilliseconds(-1), o.Interval, "kept as set");
            Assert.Equal(Timeout.InfiniteTimeSpan, o.Timeout, "infinite timeout kept");
            long id = Emulator.ScriptedTask("\"processing\"", "{\"ready\":{\"text\":\"mapped\"}}");
            using (var client = NewClient("wait-mapping"))
            {
                WaitOptions negative = Fast();
                negative.Interval = TimeSpan.FromMilliseconds(-5);
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.WaitResult(id, negative), "negative interval -> 0");
                Assert.Equal(NativeProbe.WaitMessage(id, 0, 0, 30000, 120), e.Message, "the library's message for interval 0");
                negative = Fast();
                negative.MaxRequests = -3;
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.WaitResult(id, negative), "negative MaxRequests -> 0");
                Assert.Equal(NativeProbe.WaitMessage(id, 0, 10, 30000, 0), e.Message, "the library's message for max_requests 0");
                Assert.Equal(0, Emulator.Requests(id), "nothing sent");

                WaitOptions wide = Fast();
                wide.FirstDelay = TimeSpan.FromTicks(-1);            // -> 0: poll at once
                wide.Interval = TimeSpan.FromTicks(5000);             // 0.5 ms -> 1 ms
                wide.Timeout = TimeSpan.FromDays(60);                 // -> uint.MaxValue ms
                TaskResult r = client.WaitResult(id, wide);
                Assert.Equal("mapped", r.GetSolutionString("text"), "the mapped values are accepted");
                Assert.Equal(2, r.RequestCount, "RequestCount");
            }
        }

        private static void GetBalanceReadsTheBalance()
        {
            using (var client = NewClient("balance"))
            {
                Assert.Equal(345.678m, client.GetBalance(), "balance");
            }
        }

        private static void GetTaskResultProcessing()
        {
            long id = Emulator.ScriptedTask("\"processing\"");
            using (var client = NewClient("processing"))
            {
                TaskResult r = client.GetTaskResult(id);
                Assert.True(!r.IsReady, "not ready");
                Assert.Equal(id, r.TaskId, "TaskId");
                Assert.Null(r.SolutionJson, "SolutionJson");
                Assert.Null(r.GetSolutionString("text"), "GetSolutionString");
                Assert.Equal(1, r.RequestCount, "RequestCount");
                Assert.Equal(200, r.HttpStatus, "HttpStatus");
            }
        }

        private static void GetTaskResultReady()
        {
            long id = Emulator.ScriptedTask("{\"ready\":{\"gRecaptchaResponse\":\"03AGdBq\",\"n\":5,\"o\":{\"x\":\"y\"}}}");
            using (var client = NewClient("ready"))
            {
                TaskResult r = client.GetTaskResult(id);
                Assert.True(r.IsReady, "ready");
                Assert.Equal(id, r.TaskId, "TaskId");
                Assert.Contains("\"gRecaptchaResponse\":\"03AGdBq\"", r.SolutionJson, "SolutionJson");
                Assert.Contains("\"o\":{\"x\":\"y\"}", r.SolutionJson, "SolutionJson keeps nested objects");
                Assert.Equal("03AGdBq", r.GetSolutionString("gRecaptchaResponse"), "string member");
                Assert.Null(r.GetSolutionString("n"), "a number is not a string");
                Assert.Null(r.GetSolutionString("o"), "an object is not a string");
                Assert.Null(r.GetSolutionString("absent"), "absent member");
                Assert.Null(r.GetSolutionString("x"), "nested members are not top-level");
                Assert.Throws<ArgumentNullException>(() => r.GetSolutionString(null), "null name");
                Assert.Equal(1, r.RequestCount, "RequestCount");
            }
            // The result outlives its client: its values and lookups are its own.
            FullCollect();
        }

        private static void WaitResultPollsUntilReady()
        {
            long id = Emulator.ScriptedTask("\"processing\"", "\"processing\"", "{\"ready\":{\"text\":\"ok\"}}");
            using (var client = NewClient("wait-ready"))
            {
                TaskResult r = client.WaitResult(id, Fast());
                Assert.True(r.IsReady, "ready");
                Assert.Equal("ok", r.GetSolutionString("text"), "text");
                Assert.Equal(3, r.RequestCount, "RequestCount");
                Assert.Equal(200, r.HttpStatus, "HttpStatus");
                Assert.Equal(3, Emulator.Requests(id), "requests seen by the emulator");
            }
        }

        private static void LogHandlerSeesEveryLineWithoutTheKeyAndStatsCount()
        {
            var lines = new List<string>();
            CapMonsterLog.SetHandler(LogLevel.Debug, (level, eventName, message) =>
            {
                lock (lines) lines.Add(level + " " + eventName + ": " + message);
            });
            try
            {
                long id = Emulator.ScriptedTask("{\"raw\":\"\",\"status\":503}", "\"processing\"", "{\"ready\":{\"text\":\"ok\"}}");
                using (var client = NewClient("log-secret-key-0123456789"))
                {
                    client.WaitResult(id, Fast());
                    string all;
                    lock (lines) all = string.Join("\n", lines);
                    Assert.True(!all.Contains("log-secret-key-0123456789"), "no line holds the key: " + all);
                    Assert.Contains("Info wait.start: task " + id, all, "wait.start");
                    Assert.Contains("Debug request: getTaskResult task " + id + " attempt 3", all, "request");
                    Assert.Contains("Info wait.end: task " + id + ": ready after 3 requests", all, "wait.end");
                    ClientStats stats = client.Stats;
                    Assert.Equal(3UL, stats.RequestsGetTaskResult, "RequestsGetTaskResult");
                    Assert.Equal((ulong)Emulator.Requests(id), stats.RequestsGetTaskResult, "the emulator's count");
                    Assert.Equal(1UL, stats.AnswersHttpError, "AnswersHttpError");
                    Assert.Equal(1UL, stats.Retries, "Retries");
                    Assert.Equal(1UL, stats.WaitsFinished, "WaitsFinished");
                    Assert.Equal(0UL, stats.WaitsPending, "WaitsPending");
                    Assert.True(stats.ConnectionsOpen >= 1 && stats.ConnectionsOpen <= stats.ConnectionsOpened, "ConnectionsOpen");
                    Assert.Equal(stats.ConnectionsOpen, stats.ConnectionsIdle, "ConnectionsIdle: nothing in flight");
                }
                // A handler that throws loses its line, nothing else.
                CapMonsterLog.SetHandler(LogLevel.Trace, (level, eventName, message) => { throw new InvalidOperationException("boom"); });
                using (var client = NewClient("log-throws"))
                {
                    Assert.True(client.GetBalance() > 0, "balance");
                }
            }
            finally
            {
                CapMonsterLog.SetHandler(LogLevel.Error, null);
            }
        }

        private static void CreateTaskThenWaitWithTheOfficialSchedule()
        {
            using (var client = NewClient("create"))
            {
                long id = client.CreateTask("{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8gd29ybGQ=\",\"emulatorSolveAfterMs\":500}");
                Assert.True(id > 0, "task id " + id);
                TaskResult r = client.WaitResult(id, WaitOptions.ForTaskType("ImageToTextTask"));
                Assert.Equal("answer", r.GetSolutionString("text"), "text");
                Assert.Equal(id, r.TaskId, "TaskId");
                Assert.True(r.RequestCount >= 2, "polled while processing: " + r.RequestCount);

                long second = client.CreateTask("{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}", "https://example.com/callback");
                Assert.Equal(id + 1, second, "ids are sequential");
            }
        }

        private static void CreateTaskFailures()
        {
            using (var client = NewClient("create-fail"))
            {
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.CreateTask("[]"), "not an object");
                Assert.Equal(0, e.RequestCount, "nothing sent");
                Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.CreateTask("{\"type\":\"ImageToTextTask\"}", "ftp://x"), "callback URL");
                e = Assert.Fails(CapMonsterErrorCode.Api, () => client.CreateTask("{\"type\":\"NoSuchTask\"}"), "unsupported type");
                Assert.Equal("ERROR_TASK_NOT_SUPPORTED", e.ApiErrorCode, "ApiErrorCode");
                Assert.Equal(1, e.RequestCount, "RequestCount");
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.CreateTask(null), "null JSON: the library's refusal");
                Assert.Contains("task_json", e.Message, "null JSON");
            }
        }

        private static void ApiErrorCarriesCodeDescriptionStatusAndCounts()
        {
            long id = Emulator.ScriptedTask("{\"error\":\"ERROR_CAPTCHA_UNSOLVABLE\",\"description\":\"Captcha could not be solved ✓\"}");
            using (var client = NewClient("api-error"))
            {
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Api, () => client.WaitResult(id, Fast()), "wait");
                Assert.Equal("ERROR_CAPTCHA_UNSOLVABLE", e.ApiErrorCode, "ApiErrorCode");
                Assert.Equal("Captcha could not be solved ✓", e.ApiErrorDescription, "ApiErrorDescription");
                Assert.Equal(200, e.HttpStatus, "HttpStatus");
                Assert.Equal(1, e.RequestCount, "an API error ends the wait at once");
                Assert.Equal(id, e.TaskId, "TaskId");
                Assert.Equal("CM_ERR_API", e.CodeName, "CodeName");
                Assert.Contains("ERROR_CAPTCHA_UNSOLVABLE", e.Message, "Message");
            }
        }

        private static void ApiErrorsCoverTheGlossary()
        {
            // Every code of the library's glossary is one ApiErrors constant, and each constant one code.
            string[] glossary = NativeProbe.Glossary();
            Assert.Equal(26, glossary.Length, "glossary length");
            var constants = new System.Collections.Generic.List<string>();
            foreach (var field in typeof(ApiErrors).GetFields())
                constants.Add((string)field.GetValue(null));
            Assert.Equal(glossary.Length, constants.Count, "one constant per code");
            foreach (string code in glossary)
            {
                Assert.True(constants.Contains(code), "ApiErrors has " + code);
                Assert.Equal(code, CapMonsterException.KindOf(code), "its own kind: " + code);
            }
            Assert.Equal(ApiErrors.NoSuchTask, CapMonsterException.KindOf("WRONG_CAPTCHA_ID"), "WRONG_CAPTCHA_ID");
            Assert.Equal(null, CapMonsterException.KindOf("ERROR_FROM_THE_FUTURE"), "outside the glossary");
            Assert.Equal(null, CapMonsterException.KindOf(null), "null");
            Assert.Equal(null, CapMonsterException.KindOf("a\0b"), "a NUL");
        }

        private static void WrongCaptchaIdIsNoSuchTask()
        {
            using (var client = NewClient("wrong-captcha-id"))
            {
                foreach (string spelling in new[] { "ERROR_NO_SUCH_CAPCHA_ID", "WRONG_CAPTCHA_ID" })
                {
                    long id = Emulator.ScriptedTask("\"processing\"", "{\"error\":\"" + spelling + "\",\"description\":\"no such task\"}");
                    CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Api, () => client.WaitResult(id, Fast()), spelling);
                    Assert.Equal(spelling, e.ApiErrorCode, "the service's spelling");
                    Assert.Equal(ApiErrors.NoSuchTask, e.ApiErrorKind, "the kind: " + spelling);
                    Assert.Equal(2, e.RequestCount, "final: " + spelling);
                }
                // CAPTCHA_NOT_READY with errorId 1: processing, polled again.
                long ready = Emulator.ScriptedTask("{\"error\":\"CAPTCHA_NOT_READY\",\"description\":\"later\"}", "{\"ready\":{\"text\":\"ok\"}}");
                TaskResult r = client.WaitResult(ready, Fast());
                Assert.Equal("ok", r.GetSolutionString("text"), "ready after CAPTCHA_NOT_READY");
                Assert.Equal(2, r.RequestCount, "requests");
            }
        }

        private static void GetUserAgent()
        {
            using (var client = new CapMonsterClient("cs-user-agent", new CapMonsterClientOptions
            {
                BaseUrl = Emulator.Url,
                UserAgentUrl = Emulator.Url + "/useragent",
                UseProxy = false,
            }))
            {
                string ua = client.GetUserAgent();
                Assert.True(ua.StartsWith("Mozilla/5.0 ", StringComparison.Ordinal), "the User-Agent: " + ua);
                Assert.Equal(ua, client.GetUserAgentAsync().Result, "async");
                try
                {
                    Emulator.ScriptMethod("getUserAgent", "{\"raw\":\"<html><body>blocked</body></html>\",\"content_type\":\"text/html\"}");
                    Assert.Fails(CapMonsterErrorCode.BadResponse, () => client.GetUserAgent(), "an HTML page");
                    Emulator.ScriptMethod("getUserAgent", "{\"raw\":\"\"}");
                    Assert.Fails(CapMonsterErrorCode.BadResponse, () => client.GetUserAgent(), "an empty body");
                    Emulator.ScriptMethod("getUserAgent", "{\"fault\":\"stall\",\"ms\":20000}");
                    using (var cts = new CancellationTokenSource(300))
                    {
                        var watch = System.Diagnostics.Stopwatch.StartNew();
                        Assert.Throws<OperationCanceledException>(() => client.GetUserAgent(cts.Token), "cancelled in flight");
                        Assert.True(watch.ElapsedMilliseconds < 5000, "promptly: " + watch.ElapsedMilliseconds + " ms");
                    }
                }
                finally
                {
                    Emulator.ScriptMethod("getUserAgent");
                }
            }
            var e = Assert.Throws<CapMonsterException>(() => new CapMonsterClient("cs-ua-url", new CapMonsterClientOptions { UserAgentUrl = "http://example.com/ua" }), "a URL the library refuses");
            Assert.Contains("user_agent_url", e.Message, "the message names it");
        }

        private static void ApiErrorWithHttp402ZeroBalance()
        {
            long id = Emulator.ScriptedTask("{\"error\":\"ERROR_ZERO_BALANCE\",\"description\":\"Account has zero balance\",\"status\":402}");
            using (var client = NewClient("zero-balance"))
            {
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Api, () => client.GetTaskResult(id), "402 with an API body");
                Assert.Equal("ERROR_ZERO_BALANCE", e.ApiErrorCode, "ApiErrorCode");
                Assert.Equal("Account has zero balance", e.ApiErrorDescription, "ApiErrorDescription");
                Assert.Equal(402, e.HttpStatus, "HttpStatus");
                Assert.Equal(1, e.RequestCount, "RequestCount");
            }
        }

        // A call the account guard answers carries the service's code and description, with no
        // request and no status; EndStops lets calls out again.
        private static void GuardAnswersAsTheServiceDid()
        {
            long id = Emulator.ScriptedTask("{\"error\":\"ERROR_KEY_DOES_NOT_EXIST\",\"description\":\"no such key\",\"status\":403}");
            using (var client = NewClient("guard"))
            {
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Api, () => client.GetTaskResult(id), "the service's answer");
                Assert.Equal(1, e.RequestCount, "RequestCount");
                e = Assert.Fails(CapMonsterErrorCode.Api, () => client.GetBalance(), "the guard's answer");
                Assert.Equal("ERROR_KEY_DOES_NOT_EXIST", e.ApiErrorCode, "ApiErrorCode");
                Assert.Equal("no such key", e.ApiErrorDescription, "ApiErrorDescription");
                Assert.Equal(0, e.RequestCount, "nothing was sent");
                Assert.Equal(0, e.HttpStatus, "no status");
                Assert.Contains("was not sent", e.Message, "Message");
                client.EndStops();
                Assert.True(client.GetBalance() > 0, "after EndStops the call goes out");
            }
        }

        private static void NetworkErrorWhenConnectionRefused()
        {
            var options = new CapMonsterClientOptions { BaseUrl = "http://127.0.0.1:" + ClosedPort(), UseProxy = false };
            using (var client = new CapMonsterClient("cs-refused", options))
            {
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Network, () => client.GetBalance(), "balance");
                Assert.Equal(0, e.HttpStatus, "no answer, no status");
                Assert.Null(e.ApiErrorCode, "ApiErrorCode");
                e = Assert.Fails(CapMonsterErrorCode.Network, () => client.GetTaskResult(5), "task result");
                Assert.True(e.RequestCount >= 1, "RequestCount " + e.RequestCount);
            }
        }

        private static void RequestTimeoutOnStalledAnswer()
        {
            long id = Emulator.ScriptedTask("{\"fault\":\"stall\",\"ms\":5000}");
            using (var client = NewClient("request-timeout", TimeSpan.FromMilliseconds(300)))
            {
                var watch = Stopwatch.StartNew();
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Timeout, () => client.GetTaskResult(id), "stalled answer");
                Assert.Less(watch.ElapsedMilliseconds, 4000, "gave up after the request timeout (ms)");
                Assert.Equal(0, e.HttpStatus, "HttpStatus");
            }
        }

        private static void WaitTimeout()
        {
            long id = Emulator.ScriptedTask("\"processing\"");
            using (var client = NewClient("wait-timeout"))
            {
                WaitOptions options = Fast();
                options.Interval = TimeSpan.FromMilliseconds(50);
                options.Timeout = TimeSpan.FromMilliseconds(400);
                var watch = Stopwatch.StartNew();
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Timeout, () => client.WaitResult(id, options), "wait");
                Assert.True(watch.ElapsedMilliseconds >= 350, "waited about the timeout: " + watch.ElapsedMilliseconds);
                Assert.Less(watch.ElapsedMilliseconds, 5000, "not much longer (ms)");
                Assert.True(e.RequestCount >= 2, "RequestCount " + e.RequestCount);
            }
        }

        private static void BadResponse()
        {
            long id = Emulator.ScriptedTask("{\"raw\":\"this is not json\"}");
            using (var client = NewClient("bad-response"))
            {
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.BadResponse, () => client.GetTaskResult(id), "not JSON");
                Assert.Equal(200, e.HttpStatus, "HttpStatus");
                Assert.Equal(1, e.RequestCount, "RequestCount");
            }
        }

        private static void HttpStatus502()
        {
            long id = Emulator.ScriptedTask("{\"raw\":\"<html>Bad Gateway</html>\",\"status\":502,\"content_type\":\"text/html\"}");
            using (var client = NewClient("http-502"))
            {
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.HttpStatus, () => client.GetTaskResult(id), "502");
                Assert.Equal(502, e.HttpStatus, "HttpStatus");
                Assert.Null(e.ApiErrorCode, "ApiErrorCode");
                Assert.Equal(1, e.RequestCount, "RequestCount");
            }
        }

        private static void WaitRetries502UntilMaxRequests()
        {
            long id = Emulator.ScriptedTask("{\"raw\":\"<html>Bad Gateway</html>\",\"status\":502,\"content_type\":\"text/html\"}");
            using (var client = NewClient("wait-502"))
            {
                WaitOptions options = Fast();
                options.MaxRequests = 3;
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.BudgetExhausted, () => client.WaitResult(id, options), "5xx retried");
                Assert.Equal(3, e.RequestCount, "RequestCount");
                Assert.Equal(502, e.HttpStatus, "last HttpStatus");
            }
        }

        private static void BudgetFromMaxRequests()
        {
            long id = Emulator.ScriptedTask("\"processing\"");
            using (var client = NewClient("max-requests"))
            {
                WaitOptions options = Fast();
                options.Interval = TimeSpan.FromMilliseconds(1);
                options.MaxRequests = 3;
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.BudgetExhausted, () => client.WaitResult(id, options), "wait");
                Assert.Equal(3, e.RequestCount, "RequestCount");
                Assert.Equal(3, Emulator.Requests(id), "requests seen by the emulator");
            }
        }

        private static void ProcessWideBudgetOf120()
        {
            long id = Emulator.ScriptedTask("\"processing\"");
            using (var first = NewClient("budget-120"))
            using (var second = NewClient("budget-120"))
            using (var otherKey = NewClient("budget-120-other"))
            {
                for (int i = 0; i < 120; i++)
                {
                    CapMonsterClient c = i % 2 == 0 ? first : second;
                    Assert.True(!c.GetTaskResult(id).IsReady, "processing");
                }
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.BudgetExhausted, () => second.GetTaskResult(id), "121st");
                Assert.Equal(0, e.RequestCount, "the 121st is never sent");
                e = Assert.Fails(CapMonsterErrorCode.BudgetExhausted, () => second.WaitResult(id, Fast()), "a wait too");
                Assert.Equal(0, e.RequestCount, "the wait sent nothing");
                Assert.Equal(120, Emulator.Requests(id), "requests seen by the emulator");
                Assert.True(!otherKey.GetTaskResult(id).IsReady, "another key has its own budget");
            }
        }

        private static void InvalidArgumentsFromTheNativeLibrary()
        {
            // Each refusal carries the library's message, which names the argument.
            CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => new CapMonsterClient(""), "empty key");
            Assert.Equal("client_key is empty", e.Message, "empty key");
            e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { BaseUrl = "http://example.com" }), "http:// to a non-loopback host");
            Assert.Contains("base_url", e.Message, "http:// to a non-loopback host");
            Assert.Contains("loopback", e.Message, "http:// to a non-loopback host");
            e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { BaseUrl = "not a url" }), "malformed base URL");
            Assert.Contains("base_url", e.Message, "malformed base URL");
            e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { RequestTimeout = TimeSpan.Zero }), "zero request timeout");
            Assert.Contains("timeout_ms", e.Message, "zero request timeout");
            e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { Proxy = "ftp://user:s3cr3t-pw@127.0.0.1:21" }), "proxy scheme");
            Assert.Contains("proxy_url", e.Message, "proxy scheme");
            Assert.True(e.Message.IndexOf("s3cr3t-pw", StringComparison.Ordinal) < 0, "the password is not in the message: " + e.Message);
            using (var client = NewClient("invalid"))
            {
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.GetTaskResult(0), "task id 0");
                Assert.Equal(0, e.RequestCount, "nothing sent");
                Assert.Equal("CM_ERR_INVALID_ARGUMENT", e.CodeName, "CodeName");
                long id = Emulator.ScriptedTask("\"processing\"");
                WaitOptions options = Fast();
                options.MaxRequests = 0;
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.WaitResult(id, options), "MaxRequests 0");
                Assert.Contains("max_requests", e.Message, "the library's message names the field");
                options = Fast();
                options.Interval = TimeSpan.Zero;
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.WaitResult(id, options), "Interval 0");
                Assert.Contains("interval_ms", e.Message, "the library's message names the field");
                Task<TaskResult> refused = client.WaitResultAsync(-7, Fast());
                Assert.True(refused.IsFaulted, "a refused wait is a faulted task, status " + refused.Status);
                e = (CapMonsterException)refused.Exception.InnerException;
                Assert.Equal(NativeProbe.WaitMessage(-7, 0, 10, 30000, 120), e.Message, "task id -7: the library's message");
                Assert.Equal(0, Emulator.Requests(id), "nothing sent");
            }
        }

        private static void ManagedArgumentChecks()
        {
            // What C cannot carry is the binding's to refuse: a NUL inside a string, and options
            // that contradict each other. Everything else goes to the library as it is.
            Assert.Throws<ArgumentException>(() => new CapMonsterClient("key\0more"), "NUL in the key");
            Assert.Throws<ArgumentException>(
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { UseProxy = false, Proxy = "http://127.0.0.1:1" }), "Proxy with UseProxy false");
            CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => new CapMonsterClient(null), "null key: NULL to the library");
            Assert.Equal(NativeProbe.ClientNewMessage(null), e.Message, "null key: the library's message");
            byte[] surrogate = { 0x62, 0x61, 0x64, 0x20, 0xED, 0xA0, 0x80, 0x20, 0x6B, 0x65, 0x79, 0 }; // "bad \ud800 key" as generalized UTF-8
            e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => new CapMonsterClient("bad \ud800 key"), "lone surrogate: not UTF-8 to the library");
            Assert.Equal(NativeProbe.ClientNewMessage(surrogate), e.Message, "lone surrogate: the library's message");
            e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { RequestTimeout = TimeSpan.FromSeconds(-1) }), "negative timeout -> 0");
            Assert.Equal(NativeProbe.RequestTimeoutMessage(0), e.Message, "negative timeout: the library's message for 0");
            using (var client = NewClient("managed-args"))
            {
                Assert.Throws<ArgumentException>(() => client.CreateTask("{\"type\":\"ImageToTextTask\"}\0"), "NUL in the JSON");
            }
        }

        private static void UnicodeSolutionRoundTrips()
        {
            long id = Emulator.ScriptedTask("{\"ready\":{\"text\":" + Emulator.Str(Unicode) + ",\"ключ\":\"значение 😀\"}}");
            using (var client = NewClient("unicode ✓"))
            {
                TaskResult r = client.WaitResult(id, Fast());
                Assert.Equal(Unicode, r.GetSolutionString("text"), "GetSolutionString");
                Assert.Contains("\"text\":\"" + Unicode + "\"", r.SolutionJson, "SolutionJson");
                Assert.Equal("значение 😀", r.GetSolutionString("ключ"), "a non-ASCII member name");
            }
        }

        private static void EscapedSolutionStringsAreUnescaped()
        {
            // Escapes as the service may send them: \u00e9, a surrogate pair, quotes, newline.
            string body = "{\"errorId\":0,\"status\":\"ready\",\"solution\":{\"text\":\"h\\u00e9llo \\ud83d\\ude00 \\\"q\\\"\\n\"}}";
            long id = Emulator.ScriptedTask("{\"raw\":" + Emulator.Str(body) + ",\"content_type\":\"application/json\"}");
            using (var client = NewClient("escapes"))
            {
                TaskResult r = client.GetTaskResult(id);
                Assert.Equal("héllo 😀 \"q\"\n", r.GetSolutionString("text"), "unescaped");
                Assert.Contains("\\u00e9", r.SolutionJson, "SolutionJson is the JSON as sent");
            }
        }

        private static void ExplicitProxyIsUsedAndItsPasswordHidden()
        {
            var options = new CapMonsterClientOptions
            {
                BaseUrl = Emulator.Url,
                Proxy = "http://user:s3cr3t-pw@127.0.0.1:" + ClosedPort(),
            };
            using (var client = new CapMonsterClient("cs-proxy", options))
            {
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Network, () => client.GetBalance(), "a dead proxy");
                Assert.True(e.Message.IndexOf("s3cr3t-pw", StringComparison.Ordinal) < 0, "the password is not in the message: " + e.Message);
            }
        }

        private static void UseProxyFalseIgnoresTheEnvironment()
        {
            // run-tests.sh points http_proxy at a dead port and sets this marker.
            bool deadProxyInEnvironment = Environment.GetEnvironmentVariable("CAPMONSTER_TEST_DEAD_HTTP_PROXY") == "1";
            if (deadProxyInEnvironment)
            {
                using (var client = new CapMonsterClient("cs-env-proxy", new CapMonsterClientOptions { BaseUrl = Emulator.Url }))
                {
                    Assert.Fails(CapMonsterErrorCode.Network, () => client.GetBalance(), "by default the environment's proxy is used");
                }
            }
            using (var client = new CapMonsterClient("cs-no-proxy", new CapMonsterClientOptions { BaseUrl = Emulator.Url, UseProxy = false }))
            {
                Assert.Equal(345.678m, client.GetBalance(), "UseProxy false goes direct");
            }
        }

        /// <summary>
        /// Sets environment variables in the process's C environment (where the native library
        /// reads them; .NET Core keeps a managed copy that it never writes there) for the length
        /// of <paramref name="body"/>, then puts back what was there. Tests run one at a time.
        /// </summary>
        private static void WithNativeEnvironment(IDictionary<string, string> values, Action body)
        {
            var saved = new Dictionary<string, string>();
            foreach (string name in values.Keys)
            {
                IntPtr old = Runner.NativeGetenv(name);
                saved[name] = old == IntPtr.Zero ? null : Marshal.PtrToStringAnsi(old);
            }
            try
            {
                foreach (KeyValuePair<string, string> pair in values)
                {
                    int rc = pair.Value == null ? Runner.NativeUnsetenv(pair.Key) : Runner.NativeSetenv(pair.Key, pair.Value, 1);
                    Assert.Equal(0, rc, "setting " + pair.Key);
                }
                body();
            }
            finally
            {
                foreach (KeyValuePair<string, string> pair in saved)
                {
                    if (pair.Value == null) Runner.NativeUnsetenv(pair.Key);
                    else Runner.NativeSetenv(pair.Key, pair.Value, 1);
                }
            }
        }

        private static void MalformedProxyInTheEnvironmentDoesNotFailCreation()
        {
            var environment = new Dictionary<string, string>
            {
                { "http_proxy", "http://[bad" },
                { "https_proxy", "http://[bad" },
                { "HTTPS_PROXY", null },
                { "all_proxy", null },
                { "ALL_PROXY", null },
                { "no_proxy", null },
                { "NO_PROXY", null },
            };
            IntPtr before = Runner.NativeGetenv("http_proxy");
            string httpProxyBefore = before == IntPtr.Zero ? null : Marshal.PtrToStringAnsi(before);
            WithNativeEnvironment(environment, () =>
            {
                // Creation succeeds; the calls that would use the proxy fail, naming the variable,
                // and send nothing.
                using (var client = new CapMonsterClient("cs-bad-env-proxy", new CapMonsterClientOptions { BaseUrl = Emulator.Url }))
                {
                    CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.GetBalance(), "balance");
                    Assert.Contains("http_proxy", e.Message, "the message names the variable");
                    Assert.Equal(0, e.RequestCount, "nothing sent");
                }
                using (var client = new CapMonsterClient("cs-bad-env-proxy", new CapMonsterClientOptions { RequestTimeout = TimeSpan.FromSeconds(2) }))
                {
                    CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.GetBalance(), "official service");
                    Assert.Contains("https_proxy", e.Message, "the message names the variable");
                }
                using (var client = new CapMonsterClient("cs-bad-env-proxy", new CapMonsterClientOptions { BaseUrl = Emulator.Url, UseProxy = false }))
                {
                    Assert.Equal(345.678m, client.GetBalance(), "UseProxy false ignores the environment");
                }
            });
            IntPtr after = Runner.NativeGetenv("http_proxy");
            Assert.Equal(httpProxyBefore, after == IntPtr.Zero ? null : Marshal.PtrToStringAnsi(after), "http_proxy is put back");
        }

        private static void BadBaseUrlCarriesTheLibrarysMessage()
        {
            CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { BaseUrl = "ftp://127.0.0.1/" }), "ftp base URL");
            // Word for word: the binding adds nothing and rewords nothing.
            Assert.Equal(NativeProbe.BaseUrlMessage("ftp://127.0.0.1/"), e.Message, "Message");
            Assert.Contains("base_url", e.Message, "names the argument");
            Assert.Equal("CM_ERR_INVALID_ARGUMENT", e.CodeName, "CodeName");
            Assert.Equal(0, e.RequestCount, "RequestCount");
            Assert.Equal(0L, e.TaskId, "TaskId");
        }

        private static void MaxConnectionsIsPassedToTheLibrary()
        {
            // The library's code and message, word for word (asked of the C API directly).
            CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { BaseUrl = Emulator.Url, MaxConnections = 0 }), "MaxConnections 0");
            Assert.Equal(NativeProbe.MaxConnectionsMessage(0), e.Message, "MaxConnections 0");
            Assert.Contains("max_connections", e.Message, "MaxConnections 0 names the argument");
            e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-k", new CapMonsterClientOptions { BaseUrl = Emulator.Url, MaxConnections = -1 }), "MaxConnections -1 -> 0");
            Assert.Equal(NativeProbe.MaxConnectionsMessage(0), e.Message, "MaxConnections -1");

            // One connection for eight threads: the calls take turns and all succeed.
            var options = new CapMonsterClientOptions { BaseUrl = Emulator.Url, UseProxy = false, MaxConnections = 1 };
            using (var client = new CapMonsterClient("cs-max-connections", options))
            {
                var errors = new List<Exception>();
                var threads = new List<Thread>();
                for (int i = 0; i < 8; i++)
                {
                    var thread = new Thread(() =>
                    {
                        try
                        {
                            for (int j = 0; j < 10; j++) Assert.Equal(345.678m, client.GetBalance(), "balance");
                        }
                        catch (Exception ex)
                        {
                            lock (errors) errors.Add(ex);
                        }
                    });
                    thread.Start();
                    threads.Add(thread);
                }
                foreach (Thread thread in threads) thread.Join();
                Assert.Equal(0, errors.Count, "failures: " + (errors.Count > 0 ? errors[0].Message : ""));
            }
        }

        private static void CaFileIsReadWhenTheClientIsMade()
        {
            string missing = Path.Combine(Path.GetTempPath(), "capmonster-no-such-ca-" + Guid.NewGuid() + ".pem");
            CapMonsterException e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                () => new CapMonsterClient("cs-ca", new CapMonsterClientOptions { BaseUrl = Emulator.Url, CaFile = missing }), "missing CA file");
            Assert.Contains("ca_file", e.Message, "missing CA file");
            string empty = Path.GetTempFileName();
            try
            {
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                    () => new CapMonsterClient("cs-ca", new CapMonsterClientOptions { BaseUrl = Emulator.Url, CaFile = empty }), "empty CA file");
                Assert.Contains("ca_file", e.Message, "empty CA file");
            }
            finally
            {
                File.Delete(empty);
            }
            const string systemBundle = "/etc/ssl/certs/ca-certificates.crt";
            if (File.Exists(systemBundle))
            {
                var options = new CapMonsterClientOptions { BaseUrl = Emulator.Url, UseProxy = false, CaFile = systemBundle };
                using (var client = new CapMonsterClient("cs-ca", options))
                {
                    Assert.Equal(345.678m, client.GetBalance(), "a client with a CA file works");
                }
            }
        }

        private static void CancelStopsALongWaitWithin100Ms()
        {
            long id = Emulator.ScriptedTask("\"processing\"");
            using (var client = NewClient("cancel"))
            using (var cts = new CancellationTokenSource())
            {
                var cancelled = Stopwatch.StartNew();
                Exception caught = null;
                long stoppedAfterMs = -1;
                var waiter = new Thread(() =>
                {
                    try
                    {
                        client.WaitResult(id, Slow(), cts.Token);
                    }
                    catch (Exception e)
                    {
                        stoppedAfterMs = cancelled.ElapsedMilliseconds;
                        caught = e;
                    }
                });
                waiter.Start();
                // Let the first poll finish: the wait then sleeps for a minute.
                var deadline = Stopwatch.StartNew();
                while (Emulator.Requests(id) < 1 && deadline.ElapsedMilliseconds < 10000) Thread.Sleep(10);
                Thread.Sleep(100);
                cancelled.Restart();
                cts.Cancel();
                Assert.True(waiter.Join(5000), "the wait ended");
                var oce = caught as OperationCanceledException;
                Assert.True(oce != null, "OperationCanceledException, got " + caught);
                Assert.True(oce.CancellationToken == cts.Token, "carries the token");
                Console.WriteLine("  cancel: WaitResult threw {0} ms after Cancel()", stoppedAfterMs);
                Assert.Less(stoppedAfterMs, 100, "ms from Cancel() to the exception");
                Assert.Equal(1, Emulator.Requests(id), "one poll sent");
            }
        }

        private static void WaitResultAsyncSucceeds()
        {
            long id = Emulator.ScriptedTask("\"processing\"", "{\"ready\":{\"token\":\"async ✓\"}}");
            using (var client = NewClient("async"))
            {
                int callerThread = Thread.CurrentThread.ManagedThreadId;
                WaitOptions options = Fast();
                Task<TaskResult> task = client.WaitResultAsync(id, options);
                options.MaxRequests = 1; // copied at the call: no effect
                Assert.True(task.Wait(30000), "finished");
                Assert.Equal("async ✓", task.Result.GetSolutionString("token"), "token");
                Assert.Equal(2, task.Result.RequestCount, "RequestCount");
                Assert.True(callerThread != 0, "ran");
            }
        }

        private static void WaitResultAsyncCancelStopsTheNativeWait()
        {
            long id = Emulator.ScriptedTask("\"processing\"");
            using (var client = NewClient("async-cancel"))
            using (var cts = new CancellationTokenSource())
            {
                Task<TaskResult> task = client.WaitResultAsync(id, Slow(), cts.Token);
                var deadline = Stopwatch.StartNew();
                while (Emulator.Requests(id) < 1 && deadline.ElapsedMilliseconds < 10000) Thread.Sleep(10);
                Thread.Sleep(100);
                var watch = Stopwatch.StartNew();
                cts.Cancel();
                try
                {
                    task.Wait(5000);
                }
                catch (AggregateException)
                {
                }
                long ms = watch.ElapsedMilliseconds;
                Assert.True(task.IsCanceled, "the task is canceled, status " + task.Status);
                Console.WriteLine("  cancel: WaitResultAsync's task ended {0} ms after Cancel()", ms);
                Assert.Less(ms, 100, "ms from Cancel() to the task's end");
                var e = Assert.Throws<AggregateException>(() => task.Wait(), "Wait throws");
                Assert.True(e.InnerException is OperationCanceledException, "an OperationCanceledException inside");
                Assert.Equal(1, Emulator.Requests(id), "one poll sent");
            }
        }

        private static void WaitResultAsyncWithCancelledTokenSendsNothing()
        {
            long id = Emulator.ScriptedTask("{\"ready\":{\"text\":\"x\"}}");
            using (var client = NewClient("async-precancelled"))
            {
                Task<TaskResult> task = client.WaitResultAsync(id, Fast(), new CancellationToken(true));
                try
                {
                    task.Wait(5000);
                }
                catch (AggregateException)
                {
                }
                Assert.True(task.IsCanceled, "canceled, status " + task.Status);
                Assert.Throws<OperationCanceledException>(() => client.WaitResult(id, Fast(), new CancellationToken(true)), "sync too");
                Assert.Equal(0, Emulator.Requests(id), "nothing sent");
            }
        }

        private static void SixteenThreadsShareOneClient()
        {
            const int threads = 16;
            var processing = new long[threads];
            var ready = new long[threads];
            for (int t = 0; t < threads; t++)
            {
                processing[t] = Emulator.ScriptedTask("\"processing\"");
                ready[t] = Emulator.ScriptedTask("\"processing\"", "{\"ready\":{\"text\":\"thread " + t + " ✓\"}}");
            }
            var errors = new List<string>();
            using (var client = NewClient("threads"))
            using (var start = new Barrier(threads))
            {
                var workers = new List<Thread>();
                for (int t = 0; t < threads; t++)
                {
                    int n = t;
                    var worker = new Thread(() =>
                    {
                        try
                        {
                            start.SignalAndWait();
                            for (int i = 0; i < 25; i++)
                            {
                                TaskResult p = client.GetTaskResult(processing[n]);
                                if (p.IsReady || p.TaskId != processing[n]) throw new Exception("wrong processing result " + p);
                                if (client.GetBalance() != 345.678m) throw new Exception("wrong balance");
                            }
                            TaskResult r = client.WaitResult(ready[n], Fast());
                            if (r.GetSolutionString("text") != "thread " + n + " ✓") throw new Exception("wrong solution " + r.SolutionJson);
                            try
                            {
                                client.GetTaskResult(-n - 1);
                                throw new Exception("no exception for a bad id");
                            }
                            catch (CapMonsterException e)
                            {
                                if (e.Code != CapMonsterErrorCode.InvalidArgument) throw;
                            }
                        }
                        catch (Exception e)
                        {
                            lock (errors) errors.Add("thread " + n + ": " + e.Message);
                        }
                    });
                    worker.Start();
                    workers.Add(worker);
                }
                foreach (Thread worker in workers) Assert.True(worker.Join(120000), "a thread finished");
            }
            Assert.Equal(0, errors.Count, "errors: " + string.Join("; ", errors));
            for (int t = 0; t < threads; t++)
            {
                Assert.Equal(25, Emulator.Requests(processing[t]), "requests for thread " + t);
            }
        }

        private static void DisposeTwiceIsFine()
        {
            var client = NewClient("dispose-twice");
            Assert.Equal(345.678m, client.GetBalance(), "works before");
            client.Dispose();
            client.Dispose();
            ((IDisposable)client).Dispose();
        }

        private static void UseAfterDisposeThrowsObjectDisposed()
        {
            long id = Emulator.ScriptedTask("{\"ready\":{\"text\":\"x\"}}");
            var client = NewClient("after-dispose");
            TaskResult kept = client.GetTaskResult(id);
            client.Dispose();
            Assert.Throws<ObjectDisposedException>(() => client.GetBalance(), "GetBalance");
            Assert.Throws<ObjectDisposedException>(() => client.GetTaskResult(id), "GetTaskResult");
            Assert.Throws<ObjectDisposedException>(() => client.WaitResult(id, Fast()), "WaitResult");
            Assert.Throws<ObjectDisposedException>(() => client.WaitResultAsync(id, Fast()), "WaitResultAsync");
            Assert.Throws<ObjectDisposedException>(() => client.CreateTask("{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}"), "CreateTask");
            Assert.Equal("x", kept.GetSolutionString("text"), "a result outlives its client");
            Assert.Equal(1, Emulator.Requests(id), "nothing sent after Dispose");
        }

        private static void DisposeEndsAWaitInProgress()
        {
            long id = Emulator.ScriptedTask("\"processing\"");
            var client = NewClient("dispose-during-wait");
            Task<TaskResult> task = client.WaitResultAsync(id, Slow());
            var deadline = Stopwatch.StartNew();
            while (Emulator.Requests(id) < 1 && deadline.ElapsedMilliseconds < 10000) Thread.Sleep(10);
            Thread.Sleep(100);
            var watch = Stopwatch.StartNew();
            client.Dispose();
            try
            {
                task.Wait(5000);
            }
            catch (AggregateException)
            {
            }
            Assert.True(task.IsCanceled, "cancelled, status " + task.Status);
            Assert.Less(watch.ElapsedMilliseconds, 1000, "ms from Dispose to the end of the wait");
        }

        private static void TenThousandCallsKeepMemoryFlat()
        {
            // 10,000 getTaskResult calls, at most 100 per task id (the budget is 120): 8,000
            // processing, 1,000 ready (their native results are kept by TaskResult and freed by
            // the finalizer) and 1,000 API errors (freed while the exception is thrown), plus
            // 2,000 calls refused before sending. Ready and error answers carry 4 KiB of text,
            // so leaking either kind would grow RSS by about 8 MiB.
            string padding = new string('x', 4096);
            var processing = new long[100];
            var ready = new long[10];
            var failing = new long[10];
            for (int i = 0; i < processing.Length; i++) processing[i] = Emulator.ScriptedTask("\"processing\"");
            for (int i = 0; i < ready.Length; i++) ready[i] = Emulator.ScriptedTask("{\"ready\":{\"text\":\"" + Unicode + " " + i + "\",\"pad\":\"" + padding + "\"}}");
            // An error that ends nothing for good (a task the service disowned, as after
            // ERROR_CAPTCHA_UNSOLVABLE, is answered by the library from then on, with a short text).
            for (int i = 0; i < failing.Length; i++) failing[i] = Emulator.ScriptedTask("{\"error\":\"ERROR_NO_SLOT_AVAILABLE\",\"description\":\"" + padding + "\"}");

            long rssAfter1000 = 0;
            int p = 0;
            using (var client = NewClient("memory"))
            {
                for (int i = 0; i < 10000; i++)
                {
                    int slot = i / 10 % 10;
                    if (i % 10 == 9)
                    {
                        TaskResult r = client.GetTaskResult(ready[slot]);
                        if (r.GetSolutionString("text") != Unicode + " " + slot) throw new Exception("wrong solution " + r.SolutionJson);
                    }
                    else if (i % 10 == 4)
                    {
                        try
                        {
                            client.GetTaskResult(failing[slot]);
                            throw new Exception("no exception");
                        }
                        catch (CapMonsterException e)
                        {
                            if (e.ApiErrorDescription != padding) throw new Exception("wrong description");
                        }
                    }
                    else
                    {
                        TaskResult r = client.GetTaskResult(processing[p++ % processing.Length]);
                        if (r.IsReady) throw new Exception("ready?");
                    }
                    if (i % 5 == 0)
                    {
                        try
                        {
                            client.GetTaskResult(-1);
                        }
                        catch (CapMonsterException)
                        {
                        }
                    }
                    if (i == 999)
                    {
                        FullCollect();
                        rssAfter1000 = RssBytes();
                    }
                }
                FullCollect();
                long rssAfter10000 = RssBytes();
                double growthMiB = (rssAfter10000 - rssAfter1000) / (1024.0 * 1024.0);
                Console.WriteLine("  memory: RSS {0:F1} MiB after 1,000 calls, {1:F1} MiB after 10,000 (growth {2:F2} MiB)",
                    rssAfter1000 / 1048576.0, rssAfter10000 / 1048576.0, growthMiB);
                Assert.Less(growthMiB, 5, "RSS growth in MiB from 1,000 to 10,000 calls");
            }
            for (int i = 0; i < processing.Length; i++) Assert.Equal(80, Emulator.Requests(processing[i]), "requests per processing task");
            for (int i = 0; i < ready.Length; i++) Assert.Equal(100, Emulator.Requests(ready[i]), "requests per ready task");
        }
    }
}
