using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;

namespace CapMonster.Tests
{
    /// <summary>
    /// The waiter engine (many waits on one client, no thread per wait), cancellation of waits
    /// and single calls in flight, Dispose with waits pending, and the code table against the
    /// header. Against the emulator, over sockets.
    /// </summary>
    public static class EngineTests
    {
        // Generous bounds: the tests prove the mechanism; bench/csharp measures the figures.
        private const int CancelBoundMs = 500;
        // The binding's dispatcher thread; the library's workers are "capmonster-wait".
        private const string Dispatcher = "cm-dispatcher";
        private const string LibraryWorker = "capmonster-wait";

        public static IEnumerable<Action> All()
        {
            return new Action[]
            {
                CodeTableMatchesTheHeader,
                CodeTableCheckFailsOnDrift,
                TenThousandWaitsOnOneClient,
                CancelStopsAWaitInFlight,
                CancellingSomeWaitsLeavesTheOthers,
                CancelRacingCompletionIsClean,
                CancelStopsEverySingleCallInFlight,
                SingleCallsAsyncSucceed,
                SingleCallsWithACancelledTokenSendNothing,
                DisposeEndsPendingWaitsAsCancelled,
                OneDispatcherPerClientStartedByTheFirstWait,
                ReportsReachTheService,
                ReportsAreCancelledInFlight,
                SoftIdIsSentWithCreateTask,
                EachEngineWaitsAndAWrongOneIsRefused,
                ManySolvesComeOutRight,
                SolveCreateTaskFailureHasTaskIdZero,
                SolvesAreCancelledAndDisposed,
            };
        }

        // ---- helpers ----

        private static CapMonsterClient NewClient(string key, int? maxConnections = null)
        {
            return new CapMonsterClient("cs-engine-" + key, new CapMonsterClientOptions
            {
                BaseUrl = Emulator.Url,
                UseProxy = false,
                MaxConnections = maxConnections,
            });
        }

        private static int Threads()
        {
            foreach (string line in File.ReadAllLines("/proc/self/status"))
            {
                if (line.StartsWith("Threads:", StringComparison.Ordinal)) return int.Parse(line.Substring(8).Trim());
            }
            throw new InvalidOperationException("no Threads in /proc/self/status");
        }

        /// <summary>Threads of this process whose name (comm) starts with <paramref name="prefix"/>.</summary>
        private static int ThreadsNamed(string prefix)
        {
            int n = 0;
            foreach (string dir in Directory.GetDirectories("/proc/self/task"))
            {
                try
                {
                    if (File.ReadAllText(Path.Combine(dir, "comm")).StartsWith(prefix, StringComparison.Ordinal)) n++;
                }
                catch (IOException)
                {
                    // the thread ended meanwhile
                }
            }
            return n;
        }

        /// <summary>
        /// Threads named <paramref name="prefix"/> once there are <paramref name="expected"/> of them, or
        /// after 5 s: Mono names a thread from the thread itself, a moment after Start returns.
        /// </summary>
        private static int ThreadsNamedSoon(string prefix, int expected)
        {
            var clock = Stopwatch.StartNew();
            int n = ThreadsNamed(prefix);
            while (n != expected && clock.ElapsedMilliseconds < 5000)
            {
                Thread.Sleep(10);
                n = ThreadsNamed(prefix);
            }
            return n;
        }

        /// <summary>Blocks until <paramref name="task"/> ends (bounded); returns the milliseconds it took.</summary>
        private static long EndsWithin(Task task, int boundMs, string what)
        {
            return EndsWithin(task, boundMs, what, Stopwatch.StartNew());
        }

        /// <summary>As above, timed by <paramref name="watch"/>, started before the cancel.</summary>
        private static long EndsWithin(Task task, int boundMs, string what, Stopwatch watch)
        {
            try
            {
                task.Wait(boundMs * 10);
            }
            catch (AggregateException)
            {
            }
            long ms = watch.ElapsedMilliseconds;
            Assert.True(task.IsCompleted, what + ": still running after " + ms + " ms");
            return ms;
        }

        private static void AssertCanceledWith(Task task, CancellationToken token, string what)
        {
            Assert.True(task.IsCanceled, what + ": Canceled, status " + task.Status + (task.Exception != null ? " " + task.Exception.InnerException : ""));
            try
            {
                task.GetAwaiter().GetResult();
            }
            catch (OperationCanceledException e)
            {
                Assert.True(e.CancellationToken == token, what + ": the exception carries the token");
                return;
            }
            throw new AssertionException(what + ": awaiting did not throw OperationCanceledException");
        }

        // ---- the code table ----

        private static string HeaderPath()
        {
            string path = Environment.GetEnvironmentVariable("CAPMONSTER_HEADER");
            Assert.True(!string.IsNullOrEmpty(path) && File.Exists(path), "CAPMONSTER_HEADER names include/capmonster.h (run-tests.sh sets it): " + path);
            return path;
        }

        /// <summary>"InvalidArgument" -> "CM_ERR_INVALID_ARGUMENT"; Ok -> "CM_OK".</summary>
        private static string CName(CapMonsterErrorCode code)
        {
            if (code == CapMonsterErrorCode.Ok) return "CM_OK";
            return "CM_ERR_" + Regex.Replace(code.ToString(), "(?<=.)([A-Z])", "_$1").ToUpperInvariant();
        }

        /// <summary>Every difference between the header's CM_ codes and CapMonsterErrorCode (empty: they agree).</summary>
        public static List<string> CodeTableDifferences(string header)
        {
            var problems = new List<string>();
            var inHeader = new Dictionary<string, int>();
            foreach (Match m in Regex.Matches(header, @"^#define\s+(CM_OK|CM_ERR_[A-Z0-9_]+)\s+(-?\d+)\s*$", RegexOptions.Multiline))
            {
                inHeader[m.Groups[1].Value] = int.Parse(m.Groups[2].Value);
            }
            if (inHeader.Count == 0) problems.Add("no #define CM_OK / CM_ERR_* in the header");
            var inEnum = new Dictionary<string, int>();
            foreach (CapMonsterErrorCode code in Enum.GetValues(typeof(CapMonsterErrorCode))) inEnum[CName(code)] = (int)code;
            foreach (KeyValuePair<string, int> c in inHeader)
            {
                int value;
                if (!inEnum.TryGetValue(c.Key, out value)) problems.Add(c.Key + " = " + c.Value + " has no CapMonsterErrorCode member");
                else if (value != c.Value) problems.Add(c.Key + " is " + c.Value + " in the header, " + value + " in CapMonsterErrorCode");
            }
            foreach (KeyValuePair<string, int> c in inEnum)
            {
                if (!inHeader.ContainsKey(c.Key)) problems.Add("CapMonsterErrorCode's " + c.Key + " = " + c.Value + " is not in the header");
            }
            return problems;
        }

        private static void CodeTableMatchesTheHeader()
        {
            List<string> problems = CodeTableDifferences(File.ReadAllText(HeaderPath()));
            Assert.Equal(0, problems.Count, "CapMonsterErrorCode against include/capmonster.h: " + string.Join("; ", problems));
            // And against the library's own names for the numbers.
            foreach (CapMonsterErrorCode code in Enum.GetValues(typeof(CapMonsterErrorCode)))
            {
                Assert.Equal(CName(code), NativeProbe.Text(NativeProbe.cm_code_name((int)code)), "cm_code_name(" + (int)code + ")");
            }
        }

        private static void CodeTableCheckFailsOnDrift()
        {
            // The check above must be able to fail: a renumbered, an added and a removed code.
            string header = File.ReadAllText(HeaderPath());
            Assert.True(Regex.IsMatch(header, @"^#define CM_ERR_INTERNAL 9$", RegexOptions.Multiline), "the header defines CM_ERR_INTERNAL 9");
            string renumbered = Regex.Replace(header, @"^#define CM_ERR_INTERNAL 9$", "#define CM_ERR_INTERNAL 10", RegexOptions.Multiline);
            Assert.Equal(1, CodeTableDifferences(renumbered).Count, "a renumbered code is found");
            Assert.Equal(1, CodeTableDifferences(header + "\n#define CM_ERR_SOMETHING_NEW 99\n").Count, "an added code is found");
            string removed = Regex.Replace(header, @"^#define CM_ERR_API 2$", "", RegexOptions.Multiline);
            Assert.Equal(1, CodeTableDifferences(removed).Count, "a removed code is found");
        }

        // ---- many waits ----

        private static void TenThousandWaitsOnOneClient()
        {
            const int n = 10000;
            int before = Threads();
            int peak = before;
            bool sampling = true;
            var sampler = new Thread(() =>
            {
                while (Volatile.Read(ref sampling))
                {
                    int t = Threads();
                    if (t > peak) peak = t;
                    Thread.Sleep(5);
                }
            });
            sampler.IsBackground = true;
            sampler.Start();

            // Task first+j turns ready 400 + 400·j/n ms from now; each wait polls every 200 ms from
            // a first delay spread the same way, so all are pending at once and each is ready
            // within a few polls.
            long first = Emulator.CreateTasks("ImageToTextTask", n, 400, 400);
            var dispatchThreads = new int[n];
            var tasks = new Task<TaskResult>[n];
            var watch = Stopwatch.StartNew();
            using (var client = NewClient("10k"))
            using (var cts = new CancellationTokenSource())
            {
                for (int j = 0; j < n; j++)
                {
                    var options = new WaitOptions
                    {
                        FirstDelay = TimeSpan.FromMilliseconds(200 + 400L * j / n),
                        Interval = TimeSpan.FromMilliseconds(200),
                        Timeout = TimeSpan.FromSeconds(120),
                        MaxRequests = 120,
                    };
                    int slot = j;
                    // A cancellable token on every wait: the full per-wait cost (a native cancel each).
                    tasks[j] = client.WaitResultAsync(first + j, options, cts.Token);
                    tasks[j].ContinueWith(t => dispatchThreads[slot] = Thread.CurrentThread.Name == Dispatcher ? 1 : 0,
                        TaskContinuationOptions.ExecuteSynchronously);
                }
                long addMs = watch.ElapsedMilliseconds;
                Assert.True(Task.WaitAll(tasks, 120000), "all waits ended within 120 s");
                Volatile.Write(ref sampling, false);
                sampler.Join();
                int wrong = 0, requests = 0;
                string firstWrong = null;
                for (int j = 0; j < n; j++)
                {
                    TaskResult r = tasks[j].Status == TaskStatus.RanToCompletion ? tasks[j].Result : null;
                    if (r == null || r.TaskId != first + j || r.GetSolutionString("text") != "answer")
                    {
                        wrong++;
                        if (firstWrong == null) firstWrong = "wait " + j + ": " + (r == null ? tasks[j].Status + " " + tasks[j].Exception : r.ToString());
                        continue;
                    }
                    requests += r.RequestCount;
                }
                Console.WriteLine("  {0:N0} waits on one client: added in {1} ms, all ended after {2} ms, {3:F2} requests per wait, threads {4} before, {5} at the peak",
                    n, addMs, watch.ElapsedMilliseconds, requests / (double)n, before, peak);
                Assert.Equal(0, wrong, "waits without the right solution (" + firstWrong + ")");
                Assert.Equal(0, dispatchThreads.Sum(), "continuations that ran on the dispatcher");
                Assert.Equal(0L, client.Waits.Pending, "nothing left in the engine's table");
                // The library's threads (three on the event loop, at most the cap on threads) + the
                // dispatcher + the thread pool: far below a thread per wait.
                Assert.Less(peak - before, 120, "threads added at the peak");
            }
        }

        // ---- cancellation in flight ----

        private static void CancelStopsAWaitInFlight()
        {
            long id = Emulator.ScriptedTask("{\"fault\":\"stall\",\"ms\":20000}");
            using (var client = NewClient("cancel-inflight"))
            using (var cts = new CancellationTokenSource())
            {
                var options = new WaitOptions { FirstDelay = TimeSpan.Zero, Interval = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromSeconds(60), MaxRequests = 10 };
                Task<TaskResult> task = client.WaitResultAsync(id, options, cts.Token);
                Emulator.AwaitCount(() => Emulator.Requests(id), 1, "the poll");
                Thread.Sleep(50); // the request is in flight, its answer stalled
                var watch = Stopwatch.StartNew();
                cts.Cancel();
                long ms = EndsWithin(task, CancelBoundMs, "wait in flight", watch);
                Console.WriteLine("  cancel: a wait with its request in flight ended {0} ms after Cancel()", ms);
                AssertCanceledWith(task, cts.Token, "wait in flight");
                Assert.Less(ms, CancelBoundMs, "ms from Cancel() to the task's end (request in flight)");
                // The task ends at once; the native wait must also have stopped and come out of
                // cm_waiter_next (its answer stalls 20 s: only the native cancel ends it sooner).
                var drained = Stopwatch.StartNew();
                while (client.Waits.Pending > 0 && drained.ElapsedMilliseconds < CancelBoundMs * 4) Thread.Sleep(1);
                Console.WriteLine("  cancel: the native wait came out {0} ms later", drained.ElapsedMilliseconds);
                Assert.Equal(0L, client.Waits.Pending, "the native wait came out of cm_waiter_next");
                Assert.Less(drained.ElapsedMilliseconds, CancelBoundMs, "ms until the native wait came out");
                Assert.Equal(1, Emulator.Requests(id), "one request sent");
            }
        }

        private static void CancellingSomeWaitsLeavesTheOthers()
        {
            // 40 tasks ready after 300 ms; the even waits share one token, cancelled at once;
            // the odd ones (another token, never cancelled) must still get their own solutions.
            const int n = 40;
            long first = Emulator.CreateTasks("ImageToTextTask", n, 300, 0);
            using (var client = NewClient("cancel-some"))
            using (var cancelled = new CancellationTokenSource())
            using (var kept = new CancellationTokenSource())
            {
                var options = new WaitOptions { FirstDelay = TimeSpan.FromMilliseconds(100), Interval = TimeSpan.FromMilliseconds(100), Timeout = TimeSpan.FromSeconds(30) };
                var tasks = new Task<TaskResult>[n];
                for (int j = 0; j < n; j++) tasks[j] = client.WaitResultAsync(first + j, options, j % 2 == 0 ? cancelled.Token : kept.Token);
                cancelled.Cancel();
                Assert.True(Task.WaitAll(tasks.Where((t, j) => j % 2 == 1).ToArray(), 30000), "the kept waits ended");
                for (int j = 0; j < n; j++)
                {
                    if (j % 2 == 0)
                    {
                        AssertCanceledWith(tasks[j], cancelled.Token, "wait " + j);
                        continue;
                    }
                    Assert.Equal(TaskStatus.RanToCompletion, tasks[j].Status, "wait " + j);
                    Assert.Equal(first + j, tasks[j].Result.TaskId, "wait " + j + " got its own task");
                }
                for (int j = 0; j < n; j += 2) Assert.Equal(0, Emulator.Requests(first + j), "cancelled wait " + j + " sent nothing");
                var drained = Stopwatch.StartNew();
                while (client.Waits.Pending > 0 && drained.ElapsedMilliseconds < 5000) Thread.Sleep(1);
                Assert.Equal(0L, client.Waits.Pending, "every native wait came out");
            }
        }

        private static void CancelRacingCompletionIsClean()
        {
            // 5 rounds of 1,000 waits turning ready over 100 ms, their shared token cancelled in
            // the middle: token callbacks race the dispatcher's completions. Cancel() must not
            // throw, every task ends either solved (its own task) or Canceled, and every native
            // wait comes out.
            const int n = 1000;
            var random = new Random(7);
            using (var client = NewClient("cancel-race"))
            {
                for (int round = 0; round < 5; round++)
                {
                    long first = Emulator.CreateTasks("ImageToTextTask", n, 100, 100);
                    var options = new WaitOptions { FirstDelay = TimeSpan.FromMilliseconds(100), Interval = TimeSpan.FromMilliseconds(5), Timeout = TimeSpan.FromSeconds(30) };
                    using (var cts = new CancellationTokenSource())
                    {
                        var tasks = new Task<TaskResult>[n];
                        for (int j = 0; j < n; j++) tasks[j] = client.WaitResultAsync(first + j, options, cts.Token);
                        Thread.Sleep(100 + random.Next(100));
                        cts.Cancel(); // throws AggregateException if a callback threw
                        Assert.True(Task.WaitAll(tasks.Select(t => t.ContinueWith(_ => { })).ToArray(), 30000), "round " + round + ": every task ended");
                        int solved = 0, canceled = 0;
                        for (int j = 0; j < n; j++)
                        {
                            if (tasks[j].IsCanceled) canceled++;
                            else if (tasks[j].Status == TaskStatus.RanToCompletion && tasks[j].Result.TaskId == first + j) solved++;
                        }
                        Assert.Equal(n, solved + canceled, "round " + round + ": solved " + solved + " + canceled " + canceled);
                        var drained = Stopwatch.StartNew();
                        while (client.Waits.Pending > 0 && drained.ElapsedMilliseconds < 5000) Thread.Sleep(1);
                        Assert.Equal(0L, client.Waits.Pending, "round " + round + ": every native wait came out");
                        Console.WriteLine("  race round {0}: {1} solved, {2} canceled", round, solved, canceled);
                    }
                }
            }
        }

        private static void CancelStopsEverySingleCallInFlight()
        {
            const string stall = "{\"fault\":\"stall\",\"ms\":20000}";
            using (var client = NewClient("cancel-calls"))
            {
                long id = Emulator.ScriptedTask(stall);
                CancelOne("GetTaskResultAsync", () => Emulator.Requests(id), t => client.GetTaskResultAsync(id, t));
                long id2 = Emulator.ScriptedTask(stall);
                CancelOne("GetTaskResult (sync)", () => Emulator.Requests(id2),
                    t => Task.Factory.StartNew(() => client.GetTaskResult(id2, t), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default));
                try
                {
                    Emulator.ScriptMethod("createTask", stall);
                    CancelOne("CreateTaskAsync", () => Emulator.MethodCount("createTask"),
                        t => client.CreateTaskAsync("{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}", null, t));
                    CancelOne("CreateTask (sync)", () => Emulator.MethodCount("createTask"),
                        t => Task.Factory.StartNew(() => client.CreateTask("{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}", null, t),
                            CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default));
                }
                finally
                {
                    Emulator.ScriptMethod("createTask");
                }
                try
                {
                    Emulator.ScriptMethod("getBalance", stall);
                    CancelOne("GetBalanceAsync", () => Emulator.MethodCount("getBalance"), t => client.GetBalanceAsync(t));
                }
                finally
                {
                    Emulator.ScriptMethod("getBalance");
                }
                // The client is still fine afterwards.
                Assert.Equal(345.678m, client.GetBalance(), "balance after the cancels");
            }
        }

        /// <summary>Starts a call, waits until its request reached the emulator, cancels, checks how it ended.</summary>
        private static void CancelOne(string what, Func<int> seen, Func<CancellationToken, Task> start)
        {
            using (var cts = new CancellationTokenSource())
            {
                int before = seen();
                Task task = start(cts.Token);
                Emulator.AwaitCount(seen, before + 1, what + ": the request");
                Thread.Sleep(50);
                var watch = Stopwatch.StartNew();
                cts.Cancel();
                long ms = EndsWithin(task, CancelBoundMs, what, watch);
                Console.WriteLine("  cancel: {0} in flight ended {1} ms after Cancel()", what, ms);
                if (what.EndsWith("(sync)", StringComparison.Ordinal))
                {
                    // The blocking call threw; the task around it only carries that exception.
                    Exception e = task.Exception == null ? null : task.Exception.InnerException;
                    var oce = e as OperationCanceledException;
                    Assert.True(oce != null, what + ": OperationCanceledException, got " + e);
                    Assert.True(oce.CancellationToken == cts.Token, what + ": carries the token");
                    Assert.True(!string.IsNullOrEmpty(oce.Message), what + ": the library's message");
                }
                else
                {
                    AssertCanceledWith(task, cts.Token, what);
                }
                Assert.Less(ms, CancelBoundMs, what + ": ms from Cancel() to the end");
                Assert.Equal(before + 1, seen(), what + ": one request");
            }
        }

        private static void SingleCallsAsyncSucceed()
        {
            long id = Emulator.ScriptedTask("{\"ready\":{\"text\":\"async call ✓\"}}");
            using (var client = NewClient("async-calls"))
            using (var cts = new CancellationTokenSource())
            {
                Task<TaskResult> result = client.GetTaskResultAsync(id, cts.Token);
                Task<decimal> balance = client.GetBalanceAsync(cts.Token);
                Task<long> created = client.CreateTaskAsync("{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}", null, cts.Token);
                Assert.True(Task.WaitAll(new Task[] { result, balance, created }, 30000), "all ended");
                Assert.Equal("async call ✓", result.Result.GetSolutionString("text"), "GetTaskResultAsync");
                Assert.Equal(345.678m, balance.Result, "GetBalanceAsync");
                Assert.True(created.Result > 0, "CreateTaskAsync: " + created.Result);
                Task<long> refused = client.CreateTaskAsync("[]");
                try
                {
                    refused.Wait(30000);
                }
                catch (AggregateException)
                {
                }
                Assert.True(refused.IsFaulted && refused.Exception.InnerException is CapMonsterException, "a refusal faults the task: " + refused.Status);
                Assert.Equal(CapMonsterErrorCode.InvalidArgument, ((CapMonsterException)refused.Exception.InnerException).Code, "its code");
            }
        }

        private static void SingleCallsWithACancelledTokenSendNothing()
        {
            long id = Emulator.ScriptedTask("\"processing\"");
            var cancelled = new CancellationToken(true);
            using (var client = NewClient("precancelled-calls"))
            {
                int balances = Emulator.MethodCount("getBalance"), creates = Emulator.MethodCount("createTask");
                var tasks = new Task[]
                {
                    client.GetTaskResultAsync(id, cancelled),
                    client.GetBalanceAsync(cancelled),
                    client.CreateTaskAsync("{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}", null, cancelled),
                    client.WaitResultAsync(id, null, cancelled),
                };
                foreach (Task t in tasks)
                {
                    EndsWithin(t, 1000, "pre-cancelled");
                    AssertCanceledWith(t, cancelled, "pre-cancelled");
                }
                Assert.Throws<OperationCanceledException>(() => client.GetTaskResult(id, cancelled), "sync GetTaskResult");
                Assert.Throws<OperationCanceledException>(() => client.GetBalance(cancelled), "sync GetBalance");
                Assert.Equal(0, Emulator.Requests(id), "no getTaskResult sent");
                Assert.Equal(balances, Emulator.MethodCount("getBalance"), "no getBalance sent");
                Assert.Equal(creates, Emulator.MethodCount("createTask"), "no createTask sent");
            }
        }

        // ---- Dispose ----

        private static void DisposeEndsPendingWaitsAsCancelled()
        {
            int workersBefore = ThreadsNamed(LibraryWorker);
            var client = NewClient("dispose-pending");
            var tasks = new List<Task<TaskResult>>();
            // 200 asleep (first poll in 10 minutes) and 5 with their request in flight, stalled.
            var sleeping = new WaitOptions { FirstDelay = TimeSpan.FromMinutes(10), Timeout = TimeSpan.FromMinutes(20) };
            for (int i = 0; i < 200; i++) tasks.Add(client.WaitResultAsync(Emulator.NewTaskId(), sleeping));
            int before = Emulator.MethodCount("getTaskResult");
            for (int i = 0; i < 5; i++)
            {
                long id = Emulator.ScriptedTask("{\"fault\":\"stall\",\"ms\":20000}");
                var inFlight = new WaitOptions { FirstDelay = TimeSpan.Zero, Timeout = TimeSpan.FromMinutes(1) };
                tasks.Add(client.WaitResultAsync(id, inFlight, new CancellationTokenSource().Token));
            }
            Emulator.AwaitCount(() => Emulator.MethodCount("getTaskResult"), before + 5, "the five stalled polls");
            Thread.Sleep(50);
            Assert.Equal(1, ThreadsNamed(Dispatcher), "the dispatcher runs");
            Assert.True(ThreadsNamed(LibraryWorker) > workersBefore, "the library's workers run");
            var watch = Stopwatch.StartNew();
            client.Dispose();
            long ms = watch.ElapsedMilliseconds;
            Console.WriteLine("  Dispose with 205 waits pending returned after {0} ms", ms);
            int notCanceled = tasks.Count(t => !t.IsCanceled);
            Assert.Equal(0, notCanceled, "waits not Canceled when Dispose returned");
            Assert.Less(ms, 2000, "ms in Dispose");
            Assert.Equal(0, ThreadsNamed(Dispatcher), "the dispatcher stopped");
            Assert.Equal(workersBefore, ThreadsNamed(LibraryWorker), "the waiter was freed: the library joined its workers");
            Assert.Throws<ObjectDisposedException>(() => client.WaitResultAsync(5, null), "WaitResultAsync after Dispose");
            client.Dispose(); // idempotent
        }

        private static void OneDispatcherPerClientStartedByTheFirstWait()
        {
            int dispatchersBefore = ThreadsNamed(Dispatcher);
            using (var client = NewClient("one-dispatcher"))
            {
                Assert.Equal(345.678m, client.GetBalance(), "a call");
                Assert.Equal(dispatchersBefore, ThreadsNamed(Dispatcher), "no dispatcher before the first wait");
                long first = Emulator.CreateTasks("ImageToTextTask", 50, 0, 0);
                var fast = new WaitOptions { FirstDelay = TimeSpan.Zero, Interval = TimeSpan.FromMilliseconds(10), Timeout = TimeSpan.FromSeconds(30) };
                var tasks = Enumerable.Range(0, 50).Select(j => client.WaitResultAsync(first + j, fast)).ToArray();
                Assert.Equal(dispatchersBefore + 1, ThreadsNamedSoon(Dispatcher, dispatchersBefore + 1), "one dispatcher for 50 waits");
                Assert.True(Task.WaitAll(tasks, 30000), "all ended");
                Assert.True(tasks.All(t => t.Result.GetSolutionString("text") == "answer"), "all solved");
            }
            Assert.Equal(dispatchersBefore, ThreadsNamedSoon(Dispatcher, dispatchersBefore), "the dispatcher ends with Dispose");
        }
    
        // ---- solves (cm_waiter_add_solve) ----

        private const string QuickImageTask = "{\"type\":\"ImageToTextTask\",\"body\":\"eA==\",\"emulatorSolveAfterMs\":100}";

        private static WaitOptions Fast()
        {
            return new WaitOptions { FirstDelay = TimeSpan.Zero, Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(30) };
        }

        private static void ManySolvesComeOutRight()
        {
            const int n = 300;
            using (var client = NewClient("solves", 8))
            {
                var tasks = Enumerable.Range(0, n).Select(j => client.SolveAsync(QuickImageTask, null, Fast())).ToArray();
                Assert.True(Task.WaitAll(tasks, 60000), "all solves ended");
                Assert.True(tasks.All(t => t.Result.IsReady && t.Result.GetSolutionString("text") == "answer"), "all solved");
                Assert.True(tasks.All(t => t.Result.TaskId > 0), "each with its task id");
                Assert.Equal(n, tasks.Select(t => t.Result.TaskId).Distinct().Count(), "a task of its own each");
                Assert.Equal(0L, client.Waits.Pending, "nothing left in the waiter");
                // null options: ImageToTextTask's schedule (first poll 350 ms after the creation).
                var watch = Stopwatch.StartNew();
                TaskResult result = client.Solve(QuickImageTask);
                Assert.True(result.IsReady && result.RequestCount == 1, "the blocking form, on the type's schedule");
                Assert.True(watch.ElapsedMilliseconds >= 300, "the type's first delay: " + watch.ElapsedMilliseconds + " ms");
            }
        }

        private static void SolveCreateTaskFailureHasTaskIdZero()
        {
            using (var client = NewClient("solve-failures"))
            {
                // The service refuses the type: its error, task id 0.
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Api,
                    () => client.Solve("{\"type\":\"NoSuchTaskType\"}", null, Fast()), "an unsupported type");
                Assert.Equal("ERROR_TASK_NOT_SUPPORTED", e.ApiErrorCode, "ApiErrorCode");
                Assert.Equal(0L, e.TaskId, "TaskId of a failed createTask");
                Assert.Equal(1, e.RequestCount, "RequestCount");
                // The library refuses a task without a type when its createTask is due, in the
                // words CreateTask gets.
                const string untyped = "{\"body\":\"no type\"}";
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.Solve(untyped), "no type");
                CapMonsterException direct = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.CreateTask(untyped), "CreateTask, no type");
                Assert.Equal(direct.Message, e.Message, "the library's message");
                Assert.Equal(0L, e.TaskId, "TaskId");
                Assert.Equal(0, e.RequestCount, "nothing sent");
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument,
                    () => client.Solve(QuickImageTask, "ftp://example.com/callback", Fast()), "the callback URL");
                Assert.Contains("callback_url", e.Message, "the message names the argument");
                // Options are refused at once, naming the field; a null task too.
                var bad = Fast();
                bad.Interval = TimeSpan.Zero;
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.Solve(QuickImageTask, null, bad), "interval 0");
                Assert.Contains("interval_ms", e.Message, "the message names the field");
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.Solve(null, null, Fast()), "a null task");
                Assert.Contains("task_json", e.Message, "the message names the argument");
                Assert.Throws<ArgumentException>(() => client.SolveAsync("{\"type\":\"a\0\"}"), "a NUL character");
                Assert.Equal(0L, client.Waits.Pending, "nothing left in the waiter");
            }
        }

        private static void SolvesAreCancelledAndDisposed()
        {
            string stall = "{\"fault\":\"stall\",\"ms\":20000}";
            Emulator.ScriptMethod("createTask", stall);
            try
            {
                var client = NewClient("solve-cancel", 2);
                using (var cts = new CancellationTokenSource())
                {
                    int before = Emulator.MethodCount("createTask");
                    Task<TaskResult> task = client.SolveAsync(QuickImageTask, null, Fast(), cts.Token);
                    Emulator.AwaitCount(() => Emulator.MethodCount("createTask"), before + 1, "the createTask");
                    Thread.Sleep(50); // in flight, its answer stalled
                    var watch = Stopwatch.StartNew();
                    cts.Cancel();
                    long ms = EndsWithin(task, CancelBoundMs, "solve in flight", watch);
                    AssertCanceledWith(task, cts.Token, "solve in flight");
                    Assert.Less(ms, CancelBoundMs, "ms from Cancel() to the task's end (createTask in flight)");
                    var drained = Stopwatch.StartNew();
                    while (client.Waits.Pending > 0 && drained.ElapsedMilliseconds < CancelBoundMs * 4) Thread.Sleep(1);
                    Assert.Equal(0L, client.Waits.Pending, "the native solve came out of cm_waiter_next");
                }
                // Four solves on two threads: two in flight, two not sent; Dispose ends them all.
                var tasks = Enumerable.Range(0, 4).Select(j => client.SolveAsync(QuickImageTask, null, Fast())).ToArray();
                Thread.Sleep(300);
                var disposing = Stopwatch.StartNew();
                client.Dispose();
                Assert.Less(disposing.ElapsedMilliseconds, 2000, "ms in Dispose");
                Assert.Equal(0, tasks.Count(t => !t.IsCanceled), "solves not Canceled when Dispose returned");
                Assert.Throws<ObjectDisposedException>(() => client.SolveAsync(QuickImageTask), "SolveAsync after Dispose");
            }
            finally
            {
                Emulator.ScriptMethod("createTask");
            }
        }

        // ---- reports and softId ----

        private static void ReportsReachTheService()
        {
            using (var client = NewClient("reports"))
            {
                long image = client.CreateTask("{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}");
                long token = client.CreateTask("{\"type\":\"RecaptchaV2TaskProxyless\",\"websiteURL\":\"https://example.com\",\"websiteKey\":\"k\"}");
                int images = Emulator.MethodCount("reportIncorrectImageCaptcha");
                int tokens = Emulator.MethodCount("reportIncorrectTokenCaptcha");
                client.ReportIncorrectImage(image);
                Assert.True(client.ReportIncorrectImageAsync(image).Wait(30000), "ReportIncorrectImageAsync ended");
                client.ReportIncorrectToken(token);
                Assert.True(client.ReportIncorrectTokenAsync(token).Wait(30000), "ReportIncorrectTokenAsync ended");
                Assert.Equal(images + 2, Emulator.MethodCount("reportIncorrectImageCaptcha"), "image reports the emulator counted");
                Assert.Equal(tokens + 2, Emulator.MethodCount("reportIncorrectTokenCaptcha"), "token reports the emulator counted");

                // The service's refusal, and the library's, as they are.
                CapMonsterException e = Assert.Fails(CapMonsterErrorCode.Api, () => client.ReportIncorrectImage(Emulator.NewTaskId()), "unknown task");
                Assert.Equal("ERROR_NO_SUCH_CAPCHA_ID", e.ApiErrorCode, "ApiErrorCode");
                Assert.Equal(1, e.RequestCount, "one request, never retried");
                e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => client.ReportIncorrectToken(0), "task id 0");
                Assert.Equal(0, e.RequestCount, "nothing sent");
                Assert.Contains("task_id", e.Message, "the library's message names the argument");
                Task refused = client.ReportIncorrectTokenAsync(-1);
                try
                {
                    refused.Wait(30000);
                }
                catch (AggregateException)
                {
                }
                Assert.True(refused.IsFaulted && refused.Exception.InnerException is CapMonsterException, "the async form faults: " + refused.Status);
            }
        }

        private static void ReportsAreCancelledInFlight()
        {
            const string stall = "{\"fault\":\"stall\",\"ms\":20000}";
            using (var client = NewClient("reports-cancel"))
            {
                long image = client.CreateTask("{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}");
                try
                {
                    Emulator.ScriptMethod("reportIncorrectImageCaptcha", stall);
                    CancelOne("ReportIncorrectImageAsync", () => Emulator.MethodCount("reportIncorrectImageCaptcha"), t => client.ReportIncorrectImageAsync(image, t));
                }
                finally
                {
                    Emulator.ScriptMethod("reportIncorrectImageCaptcha");
                }
                try
                {
                    Emulator.ScriptMethod("reportIncorrectTokenCaptcha", stall);
                    CancelOne("ReportIncorrectToken (sync)", () => Emulator.MethodCount("reportIncorrectTokenCaptcha"),
                        t => Task.Factory.StartNew(() => client.ReportIncorrectToken(image, t), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default));
                }
                finally
                {
                    Emulator.ScriptMethod("reportIncorrectTokenCaptcha");
                }
            }
        }

        /// <summary>The emulator's lastSoftId (null: the last createTask sent none).</summary>
        private static string LastSoftId()
        {
            Match m = Regex.Match(Emulator.Get("/_emulator/stats"), "\"lastSoftId\"\\s*:\\s*(null|\\d+)");
            Assert.True(m.Success, "the emulator's stats carry lastSoftId");
            return m.Groups[1].Value;
        }

        private static void EachEngineWaitsAndAWrongOneIsRefused()
        {
            const string task = "{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}";
            var wait = new WaitOptions { FirstDelay = TimeSpan.Zero, Interval = TimeSpan.FromMilliseconds(20), Timeout = TimeSpan.FromSeconds(30), MaxRequests = 120 };
            foreach (var engine in new[] { CapMonsterEngine.EventLoop, CapMonsterEngine.Threads })
            {
                var options = new CapMonsterClientOptions { BaseUrl = Emulator.Url, UseProxy = false, Engine = engine };
                using (var client = new CapMonsterClient("cs-engine-choice", options))
                {
                    long id = client.CreateTask(task);
                    TaskResult r = client.WaitResultAsync(id, wait).Result;
                    Assert.Equal(id, r.TaskId, engine + ": the task waited");
                }
            }
            var wrong = new CapMonsterClientOptions { BaseUrl = Emulator.Url, UseProxy = false, Engine = (CapMonsterEngine)7 };
            var e = Assert.Fails(CapMonsterErrorCode.InvalidArgument, () => new CapMonsterClient("cs-engine-choice", wrong), "engine 7");
            Assert.Equal("engine must be CM_ENGINE_EVENT_LOOP (1) or CM_ENGINE_THREADS (2), got 7", e.Message, "the library's message");
        }

        private static void SoftIdIsSentWithCreateTask()
        {
            const string task = "{\"type\":\"ImageToTextTask\",\"body\":\"eA==\"}";
            var options = new CapMonsterClientOptions { BaseUrl = Emulator.Url, UseProxy = false, SoftId = 4294967295 };
            using (var client = new CapMonsterClient("cs-engine-soft-id", options))
            {
                client.CreateTask(task);
                Assert.Equal("4294967295", LastSoftId(), "SoftId uint.MaxValue sent");
            }
            options.SoftId = 0;
            using (var client = new CapMonsterClient("cs-engine-soft-id", options))
            {
                client.CreateTask(task);
                Assert.Equal("null", LastSoftId(), "SoftId 0 sends none");
            }
            options.SoftId = 77;
            using (var client = new CapMonsterClient("cs-engine-soft-id", options))
            {
                client.CreateTask(task);
                Assert.Equal("77", LastSoftId(), "SoftId 77 sent");
            }
            options.SoftId = null;
            using (var client = new CapMonsterClient("cs-engine-soft-id", options))
            {
                client.CreateTask(task);
                Assert.Equal("null", LastSoftId(), "no SoftId: none sent");
            }
        }
    }
}
