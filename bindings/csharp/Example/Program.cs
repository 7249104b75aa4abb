// Solves one image captcha with the C# binding: CreateTask (ImageToTextTask), then WaitResult
// with the official schedule for image tasks, then prints the solution.
//
//   CAPMONSTER_BASE_URL=http://127.0.0.1:PORT mono CapMonster.Example.exe     against the emulator
//   CAPMONSTER_CLIENT_KEY=your-key mono CapMonster.Example.exe [captcha.png]  against the real service
//
// Without an image file it sends a small built-in sample picture. Ctrl+C cancels the wait.
using System;
using System.IO;
using System.Threading;
using CapMonster;

public static class Program
{
    // A small noisy 80x24 PNG, base64-encoded (the same as examples/solve_image.c).
    private const string SampleImageBase64 =
        "iVBORw0KGgoAAAANSUhEUgAAAFAAAAAYCAAAAABIcSVwAAABRklEQVR42oWU2xUEIQhDqST9F3WL" +
        "sITddRwFhLN+jOODCEnUxhgaYnZjIM1ez3A18ld7+HZ7YHHoYb6DB5tqLSKd9gCerTGoW+Cd8+fI" +
        "AVYgutNgAVAFaQGqACPkwg3Aw4Lc8axfW71OTiRGYUV9U4MVjS9m71iAeAFJhIleCo0U9wCiTRch" +
        "aJa7LXITh3bqpyQr2fcZika1qUS2aVSZGMAOuYzudypA/lRG8cRcmYfR4aF2uNXzVDPyf0ol6fWh" +
        "LzBidNz9QpWJ37YzN/+KpUojkhzdueanXyTU8EjQ5CJJUWU1UhyTMu9xmR23KNEvbaPI35vK8ovA" +
        "egZRUqJzdzQRdt/KfzKTa5FbwXy89vWs38HqgVPi35rclWWJd+7guKhJi6l+gW+FFJxId0nNnclV" +
        "SSNIk+8qmZwipSBoRA9qxJdoXacPAyWAG66wIC4AAAAASUVORK5CYII=";

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

        string image = SampleImageBase64;
        if (args.Length > 0)
        {
            try
            {
                image = Convert.ToBase64String(File.ReadAllBytes(args[0]));
            }
            catch (Exception e)
            {
                Console.Error.WriteLine("cannot read {0}: {1}", args[0], e.Message);
                return 2;
            }
        }

        var options = new CapMonsterClientOptions { BaseUrl = string.IsNullOrEmpty(baseUrl) ? null : baseUrl };
        using (var cancel = new CancellationTokenSource())
        {
            Console.CancelKeyPress += (sender, e) =>
            {
                e.Cancel = true; // let the wait end and the program clean up
                cancel.Cancel();
            };
            try
            {
                using (var client = new CapMonsterClient(key, options))
                {
                    long taskId = client.CreateTask("{\"type\":\"ImageToTextTask\",\"body\":\"" + image + "\"}");
                    Console.WriteLine("created task {0}", taskId);

                    // The official schedule for image tasks: first poll after 350 ms, then every 200 ms.
                    TaskResult result = client.WaitResult(taskId, WaitOptions.ForTaskType("ImageToTextTask"), cancel.Token);
                    Console.WriteLine("solution: {0}", result.SolutionJson);
                    Console.WriteLine("text: {0}", result.GetSolutionString("text"));
                    Console.WriteLine("requests: {0}", result.RequestCount);
                }
                return 0;
            }
            catch (CapMonsterException e)
            {
                Console.Error.WriteLine("failed: {0}: {1}", e.CodeName, e.Message);
                if (e.ApiErrorCode != null) Console.Error.WriteLine("  service error code: {0}", e.ApiErrorCode);
                return 1;
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("cancelled");
                return 130;
            }
        }
    }
}
