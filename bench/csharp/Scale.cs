// The C# binding at scale, against the emulator (bench/csharp/run.sh starts it with
// --answer-delay-ms and --stamp-ready). Two modes, each in a process of its own:
//
//   mono Scale.exe waits  URL N FIRST_MS INTERVAL_MS DELAY_MS
//   mono Scale.exe cancel URL
//
// waits: N ImageToTextTasks made at once (POST /_emulator/tasks) at T0; task j turns ready at
// T0 + FIRST + 1.5 INTERVAL + INTERVAL·j/N. Wait j (WaitResultAsync on one client, every wait
// with the same cancellable token, as an application's shutdown token) has first delay
// FIRST + INTERVAL·j/N and polls every INTERVAL, so it is ready on its third poll with half an
// interval of margin either side. All are awaited with Task.WhenAll. Prints one line
//   SCALE n=.. ok=.. threads_before=.. threads_peak=.. rss_before_kib=.. hwm_kib=.. ...
// with the process's threads (/proc/self/status Threads, sampled every 5 ms), peak RSS (VmHWM),
// wall time, requests per wait (TaskResult.RequestCount, cross-checked with the emulator's
// count) and the lateness of each ready answer (the emulator's stamp -> the continuation of the
// task, wall clock).
//
// cancel: every getTaskResult answer stalls (a method script). Tokens are cancelled one at a
// time, 2 ms apart (0.5 ms for sleeping waits); latency = Cancel() -> a continuation of the task
// runs (Stopwatch); for waits also native_drain: the last Cancel() of a round -> every native
// wait out of cm_waiter_next (the task ends before that; this is when the library has stopped). Cases: WaitResultAsync with its request in flight (3 rounds of 64, the
// connection cap), WaitResultAsync asleep (1,000, first poll 10 minutes away), GetTaskResultAsync
// in flight (3 rounds of 32), and Dispose with 64 in flight + 1,000 asleep (Dispose -> the last
// task Canceled). Prints CANCEL case=.. n=.. ok=.. p50_ms=.. p99_ms=.. max_ms=..
//
// Exit status: 0 when every wait / call ended as expected, 1 otherwise, 2 on a bad setup.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using CapMonster;

public static class Scale
{
    private static string _url;

    public static int Main(string[] args)
    {
        try
        {
            if (args.Length == 6 && args[0] == "waits")
            {
                _url = args[1];
                return Waits(int.Parse(args[2]), int.Parse(args[3]), int.Parse(args[4]), int.Parse(args[5]));
            }
            if (args.Length == 2 && args[0] == "cancel")
            {
                _url = args[1];
                return Cancels();
            }
        }
        catch (SetupException e)
        {
            Console.Error.WriteLine("scale: " + e.Message);
            return 2;
        }
        Console.Error.WriteLine("usage: Scale.exe waits URL N FIRST_MS INTERVAL_MS DELAY_MS | Scale.exe cancel URL");
        return 2;
    }

    private sealed class SetupException : Exception
    {
        public SetupException(string message) : base(message) { }
    }

    // ---- the emulator and the process ------------------------------------------------------

    private static string Emulator(string method, string path, string body)
    {
        var request = (HttpWebRequest)WebRequest.Create(_url + path);
        request.Method = method;
        request.Proxy = null;
        request.KeepAlive = false;
        request.Timeout = 60000;
        if (body != null)
        {
            byte[] bytes = Encoding.UTF8.GetBytes(body);
            request.ContentType = "application/json";
            request.ContentLength = bytes.Length;
            using (Stream s = request.GetRequestStream()) s.Write(bytes, 0, bytes.Length);
        }
        try
        {
            using (var response = (HttpWebResponse)request.GetResponse())
            using (var reader = new StreamReader(response.GetResponseStream(), Encoding.UTF8))
            {
                return reader.ReadToEnd();
            }
        }
        catch (WebException e)
        {
            throw new SetupException(method + " " + path + ": " + e.Message);
        }
    }

    private static long JsonInt(string json, string key)
    {
        Match m = Regex.Match(json, "\"" + Regex.Escape(key) + "\"\\s*:\\s*(\\d+)");
        return m.Success ? long.Parse(m.Groups[1].Value) : -1;
    }

    private static long Polls()
    {
        return JsonInt(Emulator("GET", "/_emulator/stats", null), "getTaskResult");
    }

    private static void AwaitPolls(long target)
    {
        var watch = Stopwatch.StartNew();
        while (Polls() < target)
        {
            if (watch.ElapsedMilliseconds > 10000) throw new SetupException("the emulator saw " + Polls() + " of " + target + " polls after 10 s");
            Thread.Sleep(5);
        }
    }

    private static long Status(string field)
    {
        foreach (string line in File.ReadAllLines("/proc/self/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal)) return long.Parse(Regex.Match(line, "\\d+").Value);
        }
        return -1;
    }

    private static CapMonsterClient NewClient()
    {
        return new CapMonsterClient("bench-key", new CapMonsterClientOptions { BaseUrl = _url, UseProxy = false });
    }

    private static double Ms(long ticks)
    {
        return ticks * 1000.0 / Stopwatch.Frequency;
    }

    /// <summary>Nearest-rank percentile of sorted values.</summary>
    private static double Percentile(double[] sorted, int p)
    {
        if (sorted.Length == 0) return -1;
        int i = (sorted.Length * p + 99) / 100 - 1;
        return sorted[Math.Max(i, 0)];
    }

    // ---- waits ------------------------------------------------------------------------------

    private static int Waits(int n, int firstMs, int intervalMs, int delayMs)
    {
        // Threads, sampled from the start: the peak includes everything the binding starts.
        int peakThreads = 0;
        bool sampling = true;
        var sampler = new Thread(() =>
        {
            while (Volatile.Read(ref sampling))
            {
                int t = (int)Status("Threads:");
                if (t > peakThreads) peakThreads = t;
                Thread.Sleep(5);
            }
        });
        sampler.IsBackground = true;
        sampler.Start();

        using (var client = NewClient())
        using (var shutdown = new CancellationTokenSource())
        {
            // Warm-up: one wait on an unknown task (one request, ERROR_NO_SUCH_CAPCHA_ID) starts the
            // dispatcher, a library worker and a connection, and compiles the paths measured below.
            Emulator("POST", "/_emulator/reset", "");
            try
            {
                client.WaitResult(1, new WaitOptions { FirstDelay = TimeSpan.Zero }, shutdown.Token);
            }
            catch (CapMonsterException)
            {
            }
            var tasks = new Task<TaskResult>[n];
            var returnedWallUs = new long[n];
            var options = new WaitOptions[n];
            for (int j = 0; j < n; j++)
            {
                options[j] = new WaitOptions
                {
                    FirstDelay = TimeSpan.FromMilliseconds(firstMs + (long)intervalMs * j / n),
                    Interval = TimeSpan.FromMilliseconds(intervalMs),
                    Timeout = TimeSpan.FromMinutes(10),
                    MaxRequests = 120,
                };
            }

            long readyAfter = firstMs + intervalMs + intervalMs / 2;
            string made = Emulator("POST", "/_emulator/tasks",
                "{\"type\":\"ImageToTextTask\",\"count\":" + n + ",\"solveAfterMs\":" + readyAfter + ",\"spreadMs\":" + intervalMs + "}");
            long firstTask = JsonInt(made, "firstTaskId");
            if (firstTask <= 0) throw new SetupException("POST /_emulator/tasks: " + made);
            Thread.Sleep(20);
            int threadsBefore = (int)Status("Threads:");
            long rssBefore = Status("VmRSS:");

            var watch = Stopwatch.StartNew();
            for (int j = 0; j < n; j++)
            {
                int slot = j;
                tasks[j] = client.WaitResultAsync(firstTask + j, options[j], shutdown.Token);
                // Where `await` would resume: a thread-pool thread, after the dispatcher handed it on.
                tasks[j].ContinueWith(t => returnedWallUs[slot] = DateTime.UtcNow.Ticks / 10, TaskContinuationOptions.ExecuteSynchronously);
            }
            double addMs = watch.Elapsed.TotalMilliseconds;
            long rssPending = Status("VmRSS:");
            int threadsPending = (int)Status("Threads:");

            long limitMs = firstMs + 4L * intervalMs + 60000 + n / 10;
            bool done;
            try
            {
                done = Task.WhenAll(tasks).Wait(TimeSpan.FromMilliseconds(limitMs));
            }
            catch (AggregateException)
            {
                done = true; // some failed: counted below
            }
            double runS = watch.Elapsed.TotalSeconds;
            Thread.Sleep(50); // the last continuations record their time
            Volatile.Write(ref sampling, false);
            sampler.Join();
            long hwm = Status("VmHWM:");

            int ok = 0;
            long requests = 0;
            int notThree = 0;
            string firstFailure = null;
            var late = new List<double>(n);
            for (int j = 0; j < n; j++)
            {
                Task<TaskResult> t = tasks[j];
                TaskResult r = t.Status == TaskStatus.RanToCompletion ? t.Result : null;
                if (r == null || r.TaskId != firstTask + j || r.GetSolutionString("text") != "answer")
                {
                    if (firstFailure == null)
                    {
                        firstFailure = "wait " + j + ": " + t.Status + " " + (t.Exception != null ? t.Exception.InnerException.Message : r == null ? "" : r.ToString());
                    }
                    continue;
                }
                ok++;
                requests += r.RequestCount;
                if (r.RequestCount != 3) notThree++;
                string stamp = r.GetSolutionString("emulatorSentAtUs");
                if (stamp != null && returnedWallUs[j] > 0) late.Add((returnedWallUs[j] - (long.Parse(stamp) + 62135596800L * 1000000)) / 1000.0);
            }
            if (firstFailure != null) Console.Error.WriteLine("scale: " + firstFailure);
            long emulatorPolls = Polls() - 1; // minus the warm-up
            double[] lateSorted = late.OrderBy(x => x).ToArray();
            Console.WriteLine(
                "SCALE n={0} ok={1} done={2} first_ms={3} interval_ms={4} delay_ms={5} add_ms={6:F0} run_s={7:F1} " +
                "threads_before={8} threads_pending={9} threads_peak={10} rss_before_kib={11} rss_pending_kib={12} hwm_kib={13} " +
                "rss_per_wait_b={14:F0} req_per_wait={15:F3} waits_not_3_requests={16} emulator_polls={17} library_requests={18} " +
                "late_p50_ms={19:F1} late_p99_ms={20:F1} late_max_ms={21:F1} runtime={22} gc0={23} gc1={24}",
                n, ok, done ? 1 : 0, firstMs, intervalMs, delayMs, addMs, runS,
                threadsBefore, threadsPending, peakThreads, rssBefore, rssPending, hwm,
                (rssPending - rssBefore) * 1024.0 / n, requests / (double)Math.Max(ok, 1), notThree, emulatorPolls, requests,
                Percentile(lateSorted, 50), Percentile(lateSorted, 99), lateSorted.Length > 0 ? lateSorted[lateSorted.Length - 1] : -1,
                Type.GetType("Mono.Runtime") != null ? "mono" : ".net", GC.CollectionCount(0), GC.CollectionCount(1));
            return ok == n && done && emulatorPolls == requests ? 0 : 1;
        }
    }

    // ---- cancels ----------------------------------------------------------------------------

    private const string StallScript = "{\"method\":\"getTaskResult\",\"steps\":[{\"fault\":\"stall\",\"ms\":120000}]}";
    private static long _nextTask = 5000000;
    private static int _failures;

    /// <summary>Cancels each started call's token one at a time; returns the latencies (ms) of those that ended Canceled.</summary>
    private static void CancelCase(string name, int rounds, int perRound, double gapMs, bool waitForPolls,
        Func<long, CancellationToken, Task> start, Func<long> nativePending = null)
    {
        var latencies = new List<double>();
        var drains = new List<double>();
        int total = 0, ok = 0;
        Emulator("POST", "/_emulator/reset", "");
        Emulator("POST", "/_emulator/script", StallScript);
        long polls = 0;
        for (int round = 0; round < rounds; round++)
        {
            var sources = new CancellationTokenSource[perRound];
            var tasks = new Task[perRound];
            var ended = new long[perRound];
            for (int i = 0; i < perRound; i++)
            {
                sources[i] = new CancellationTokenSource();
                tasks[i] = start(Interlocked.Increment(ref _nextTask), sources[i].Token);
                int slot = i;
                tasks[i].ContinueWith(t => ended[slot] = Stopwatch.GetTimestamp(), TaskContinuationOptions.ExecuteSynchronously);
            }
            if (waitForPolls) AwaitPolls(polls += perRound);
            Thread.Sleep(50); // every request in flight, every wait asleep
            var cancelledAt = new long[perRound];
            for (int i = 0; i < perRound; i++)
            {
                cancelledAt[i] = Stopwatch.GetTimestamp();
                sources[i].Cancel();
                var gap = Stopwatch.StartNew();
                while (gap.Elapsed.TotalMilliseconds < gapMs) Thread.SpinWait(20);
            }
            if (nativePending != null)
            {
                // A cancelled wait's task ends at once; its native wait comes out of
                // cm_waiter_next when the library has stopped it: the last one, timed.
                var drain = Stopwatch.StartNew();
                while (nativePending() > 0 && drain.ElapsedMilliseconds < 30000) Thread.SpinWait(20);
                drains.Add(Ms(Stopwatch.GetTimestamp() - cancelledAt[perRound - 1]));
                if (nativePending() > 0)
                {
                    Console.Error.WriteLine("scale: {0}: native waits still pending 30 s after their cancel", name);
                    _failures++;
                }
            }
            if (!Task.WaitAll(tasks.Select(t => t.ContinueWith(_ => { })).ToArray(), 30000))
            {
                Console.Error.WriteLine("scale: {0}: not every task ended within 30 s of its cancel", name);
                _failures++;
            }
            Thread.Sleep(20);
            for (int i = 0; i < perRound; i++)
            {
                total++;
                if (tasks[i].IsCanceled && ended[i] != 0)
                {
                    ok++;
                    latencies.Add(Ms(ended[i] - cancelledAt[i]));
                }
                sources[i].Dispose();
            }
        }
        if (ok != total) _failures++;
        double[] sorted = latencies.OrderBy(x => x).ToArray();
        Console.WriteLine("CANCEL case={0} n={1} ok={2} p50_ms={3:F3} p99_ms={4:F3} max_ms={5:F3} native_drain_max_ms={6:F3}",
            name, total, ok, Percentile(sorted, 50), Percentile(sorted, 99), sorted.Length > 0 ? sorted[sorted.Length - 1] : -1,
            drains.Count > 0 ? drains.Max() : -1);
    }

    private static int Cancels()
    {
        // GetTaskResultAsync blocks a pool thread per call in flight: let the pool have them at
        // once instead of injecting one every half second.
        int workers, io;
        ThreadPool.GetMinThreads(out workers, out io);
        ThreadPool.SetMinThreads(Math.Max(workers, 48), io);

        var inFlight = new WaitOptions { FirstDelay = TimeSpan.Zero, Interval = TimeSpan.FromSeconds(1), Timeout = TimeSpan.FromMinutes(15) };
        var asleep = new WaitOptions { FirstDelay = TimeSpan.FromMinutes(10), Timeout = TimeSpan.FromMinutes(15) };
        using (var client = NewClient())
        {
            // Warm-up (JIT, dispatcher, connections), not measured.
            Func<long> nativePending = () => client.Waits.Pending;
            CancelCase("warmup", 1, 16, 1, true, (id, token) => client.WaitResultAsync(id, inFlight, token), nativePending);
            CancelCase("warmup", 1, 16, 1, true, (id, token) => client.GetTaskResultAsync(id, token));
            CancelCase("wait_result_async_inflight", 3, 64, 2, true, (id, token) => client.WaitResultAsync(id, inFlight, token), nativePending);
            CancelCase("wait_result_async_sleeping", 1, 1000, 0.5, false, (id, token) => client.WaitResultAsync(id, asleep, token), nativePending);
            CancelCase("get_task_result_async_inflight", 3, 32, 2, true, (id, token) => client.GetTaskResultAsync(id, token));
        }

        // Dispose with 64 waits in flight and 1,000 asleep: Dispose() -> the last task Canceled.
        Emulator("POST", "/_emulator/reset", "");
        Emulator("POST", "/_emulator/script", StallScript);
        var disposed = NewClient();
        var pending = new List<Task<TaskResult>>();
        for (int i = 0; i < 64; i++) pending.Add(disposed.WaitResultAsync(Interlocked.Increment(ref _nextTask), inFlight));
        AwaitPolls(64);
        for (int i = 0; i < 1000; i++) pending.Add(disposed.WaitResultAsync(Interlocked.Increment(ref _nextTask), asleep));
        Thread.Sleep(50);
        var watch = Stopwatch.StartNew();
        disposed.Dispose();
        double disposeMs = watch.Elapsed.TotalMilliseconds;
        Task.WaitAll(pending.Select(t => t.ContinueWith(_ => { })).ToArray(), 30000);
        double allMs = watch.Elapsed.TotalMilliseconds;
        int cancelled = pending.Count(t => t.IsCanceled);
        Console.WriteLine("CANCEL case=dispose n={0} ok={1} dispose_ms={2:F3} all_canceled_ms={3:F3}", pending.Count, cancelled, disposeMs, allMs);
        if (cancelled != pending.Count) _failures++;
        Emulator("POST", "/_emulator/reset", "");
        return _failures == 0 ? 0 : 1;
    }
}
