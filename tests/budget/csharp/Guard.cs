// One process of the cross-language account guard test (scripts/test-budget-processes.sh):
// waits until START_MS (Unix milliseconds, so that the processes of a storm start together),
// then runs ACTION COUNT times through the C# binding and prints what it saw, one line:
//
//   csharp ACTION: local=L service=S ok=O other=X requests=R
//
// local: the api code EXPECT with no request (the guard's answer); service: the same code with
// requests (the service's); ok: no exception; other: anything else (printed to stderr);
// requests: the sum of the calls' request counts. ACTION is wait (COUNT waits at once, one
// request each at most, no first delay), getTaskResult (of TASK_ID), createTask or getBalance
// (COUNT calls from CallThreads threads at once), or endStops (EndStops once). The client holds
// MaxConnections connections, so that the guard's bound (at most max_connections + 1 requests
// a process before the stop) is small.
//
// Usage: CAPMONSTER_BUDGET_FILE=/abs/path mono Guard.exe BASE_URL KEY START_MS ACTION COUNT TASK_ID EXPECT
// (the file the processes share: the script's own, never the user's, so it is required).
using System;
using System.Threading;
using System.Threading.Tasks;
using CapMonster;

static class Guard
{
    const int MaxConnections = 4;
    const int CallThreads = 4;
    const string ImageTask = "{\"type\":\"ImageToTextTask\",\"body\":\"aGVsbG8=\"}";

    static string action, expect;
    static readonly object tallyLock = new object();
    static int local, service, ok, other, requests;

    // Files one outcome: sent is what a successful call sent (an exception carries its own).
    static void Count(int sent, Exception error)
    {
        var aggregate = error as AggregateException;
        if (aggregate != null && aggregate.InnerExceptions.Count == 1) error = aggregate.InnerException;
        var e = error as CapMonsterException;
        lock (tallyLock)
        {
            requests += e != null ? e.RequestCount : sent;
            bool expected = e != null && e.Code == CapMonsterErrorCode.Api && e.ApiErrorCode == expect;
            if (expected && e.RequestCount > 0) service++;
            else if (expected && e.HttpStatus == 0 && e.Message.Contains("was not sent")) local++;
            else if (error == null) ok++;
            else if (++other <= 3) Console.Error.WriteLine("csharp {0}: {1}", action, error);
        }
    }

    // One call of the action; returns the requests a successful call sent (a task result says,
    // createTask and getBalance send one: they are never retried).
    static int Call(CapMonsterClient client, long taskId)
    {
        switch (action)
        {
            case "getTaskResult": return client.GetTaskResult(taskId).RequestCount;
            case "createTask": client.CreateTask(ImageTask); return 1;
            default: client.GetBalance(); return 1;
        }
    }

    static int Main(string[] args)
    {
        if (args.Length != 7 || string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CAPMONSTER_BUDGET_FILE")))
        {
            Console.Error.WriteLine("usage: CAPMONSTER_BUDGET_FILE=/absolute/path mono Guard.exe BASE_URL KEY START_MS ACTION COUNT TASK_ID EXPECT");
            return 2;
        }
        long startMs = long.Parse(args[2]);
        action = args[3];
        int n = int.Parse(args[4]);
        long taskId = long.Parse(args[5]);
        expect = args[6];
        var options = new CapMonsterClientOptions();
        options.BaseUrl = args[0];
        options.UseProxy = false;
        options.MaxConnections = MaxConnections;
        using (var client = new CapMonsterClient(args[1], options))
        {
            long left = startMs - DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            if (left > 0) Thread.Sleep(TimeSpan.FromMilliseconds(left));
            switch (action)
            {
                case "wait":
                    var wait = new WaitOptions();
                    wait.FirstDelay = TimeSpan.Zero;
                    wait.MaxRequests = 1;
                    wait.Timeout = TimeSpan.FromMinutes(1);
                    var waits = new Task<TaskResult>[n];
                    for (int i = 0; i < n; i++) waits[i] = client.WaitResultAsync(i + 1, wait);
                    foreach (var w in waits)
                    {
                        try { Count(w.GetAwaiter().GetResult().RequestCount, null); }
                        catch (Exception e) { Count(0, e); }
                    }
                    break;
                case "getTaskResult":
                case "createTask":
                case "getBalance":
                    var threads = new Thread[CallThreads];
                    for (int t = 0; t < CallThreads; t++)
                    {
                        int share = n / CallThreads + (t < n % CallThreads ? 1 : 0);
                        threads[t] = new Thread(() =>
                        {
                            for (int i = 0; i < share; i++)
                            {
                                try { Count(Call(client, taskId), null); }
                                catch (Exception e) { Count(0, e); }
                            }
                        });
                        threads[t].Start();
                    }
                    foreach (var thread in threads) thread.Join();
                    break;
                case "endStops":
                    try { client.EndStops(); Count(0, null); }
                    catch (Exception e) { Count(0, e); }
                    break;
                default:
                    Console.Error.WriteLine("csharp: unknown action " + action);
                    return 2;
            }
        }
        Console.WriteLine("csharp {0}: local={1} service={2} ok={3} other={4} requests={5}", action, local, service, ok, other, requests);
        return 0;
    }
}
