// Solves many image captchas at once with the C# binding: at most PARALLEL CreateTaskAsync
// calls at a time, then one WaitResultAsync per task (no thread each: all run on the client's
// native waiter), everything awaited with Task.WhenAll. Every outcome is collected; failures
// are counted by the library's code (and the service's error code, when it sent one).
//
//   CAPMONSTER_BASE_URL=http://127.0.0.1:PORT mono CapMonster.Batch.exe [COUNT [PARALLEL]]   the emulator
//   CAPMONSTER_CLIENT_KEY=your-key mono CapMonster.Batch.exe [COUNT [PARALLEL]]              the real service (paid!)
//
// COUNT defaults to 100, PARALLEL to 16. Ctrl+C cancels every call and wait in progress.
// Exit status: 0 when every captcha was solved, 1 when some failed, 2 on bad arguments.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CapMonster;

public static class Program
{
    // The same small PNG as Example/Program.cs and examples/solve_image.c.
    private const string SampleImageBase64 =
        "iVBORw0KGgoAAAANSUhEUgAAAFAAAAAYCAAAAABIcSVwAAABRklEQVR42oWU2xUEIQhDqST9F3WL" +
        "sITddRwFhLN+jOODCEnUxhgaYnZjIM1ez3A18ld7+HZ7YHHoYb6DB5tqLSKd9gCerTGoW+Cd8+fI" +
        "AVYgutNgAVAFaQGqACPkwg3Aw4Lc8axfW71OTiRGYUV9U4MVjS9m71iAeAFJhIleCo0U9wCiTRch" +
        "aJa7LXITh3bqpyQr2fcZika1qUS2aVSZGMAOuYzudypA/lRG8cRcmYfR4aF2uNXzVDPyf0ol6fWh" +
        "LzBidNz9QpWJ37YzN/+KpUojkhzdueanXyTU8EjQ5CJJUWU1UhyTMu9xmR23KNEvbaPI35vK8ovA" +
        "egZRUqJzdzQRdt/KfzKTa5FbwXy89vWs38HqgVPi35rclWWJd+7guKhJi6l+gW+FFJxId0nNnclV" +
        "SSNIk+8qmZwipSBoRA9qxJdoXacPAyWAG66wIC4AAAAASUVORK5CYII=";

    /// <summary>What became of one captcha: its text, or why not.</summary>
    private sealed class Outcome
    {
        public string Text;
        public string Failure; // e.g. "CM_ERR_API ERROR_CAPTCHA_UNSOLVABLE", "cancelled"
    }

    public static int Main(string[] args)
    {
        string key = Environment.GetEnvironmentVariable("CAPMONSTER_CLIENT_KEY");
        string baseUrl = Environment.GetEnvironmentVariable("CAPMONSTER_BASE_URL");
        if (string.IsNullOrEmpty(key) && string.IsNullOrEmpty(baseUrl))
        {
            Console.Error.WriteLine("set CAPMONSTER_CLIENT_KEY (real service) or CAPMONSTER_BASE_URL (emulator)");
            return 2;
        }
        if (string.IsNullOrEmpty(key)) key = "emulator-demo-key";
        int count = 100, parallel = 16;
        if ((args.Length > 0 && (!int.TryParse(args[0], out count) || count < 1 || count > 1000000)) ||
            (args.Length > 1 && (!int.TryParse(args[1], out parallel) || parallel < 1 || parallel > 1000)))
        {
            Console.Error.WriteLine("usage: CapMonster.Batch.exe [COUNT (1..1000000) [PARALLEL (1..1000)]]");
            return 2;
        }

        var options = new CapMonsterClientOptions { BaseUrl = string.IsNullOrEmpty(baseUrl) ? null : baseUrl };
        using (var cancel = new CancellationTokenSource())
        using (var client = new CapMonsterClient(key, options))
        using (var creating = new SemaphoreSlim(parallel))
        {
            Console.CancelKeyPress += (sender, e) =>
            {
                e.Cancel = true; // let every task end as cancelled and the program report
                cancel.Cancel();
            };
            string taskJson = "{\"type\":\"ImageToTextTask\",\"body\":\"" + SampleImageBase64 + "\"}";
            WaitOptions schedule = WaitOptions.ForTaskType("ImageToTextTask");
            var watch = Stopwatch.StartNew();

            Outcome[] outcomes = Task.WhenAll(
                Enumerable.Range(0, count).Select(i => SolveOne(client, creating, taskJson, schedule, cancel.Token))).Result;

            int solved = outcomes.Count(o => o.Failure == null);
            Console.WriteLine("solved {0} of {1} in {2:F1} s", solved, count, watch.Elapsed.TotalSeconds);
            var texts = outcomes.Where(o => o.Failure == null).GroupBy(o => o.Text).OrderByDescending(g => g.Count());
            foreach (IGrouping<string, Outcome> text in texts) Console.WriteLine("text {0}: {1}", text.Key, text.Count());
            var failures = outcomes.Where(o => o.Failure != null).GroupBy(o => o.Failure).OrderBy(g => g.Key, StringComparer.Ordinal);
            foreach (IGrouping<string, Outcome> failure in failures) Console.WriteLine("failed {0}: {1}", failure.Key, failure.Count());
            return solved == count ? 0 : 1;
        }
    }

    /// <summary>Creates one task (at most PARALLEL at a time), then waits for it. Never throws: every end is an Outcome.</summary>
    private static async Task<Outcome> SolveOne(CapMonsterClient client, SemaphoreSlim creating, string taskJson,
        WaitOptions schedule, CancellationToken token)
    {
        try
        {
            long taskId;
            await creating.WaitAsync(token).ConfigureAwait(false);
            try
            {
                taskId = await client.CreateTaskAsync(taskJson, null, token).ConfigureAwait(false);
            }
            finally
            {
                creating.Release();
            }
            TaskResult result = await client.WaitResultAsync(taskId, schedule, token).ConfigureAwait(false);
            return new Outcome { Text = result.GetSolutionString("text") };
        }
        catch (CapMonsterException e)
        {
            return new Outcome { Failure = e.ApiErrorCode == null ? e.CodeName : e.CodeName + " " + e.ApiErrorCode };
        }
        catch (OperationCanceledException)
        {
            return new Outcome { Failure = "cancelled" };
        }
    }
}
