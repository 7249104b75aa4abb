// One process of the cross-language budget test (scripts/test-budget-processes.sh): polls one
// task POLLS times through the C# binding and prints how many requests were sent and how many
// the shared budget refused.   Usage: CAPMONSTER_BUDGET_FILE=/tmp/x/budget mono Poller.exe BASE_URL TASK_ID POLLS
// (the file the processes share: the script's own, never the user's, so it is required).
using System;
using CapMonster;

static class Poller
{
    static int Main(string[] args)
    {
        if (args.Length != 3 || string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CAPMONSTER_BUDGET_FILE")))
        {
            Console.Error.WriteLine("usage: CAPMONSTER_BUDGET_FILE=/absolute/path mono Poller.exe BASE_URL TASK_ID POLLS");
            return 2;
        }
        long taskId = long.Parse(args[1]);
        int polls = int.Parse(args[2]);
        var options = new CapMonsterClientOptions();
        options.BaseUrl = args[0];
        int sent = 0, exhausted = 0;
        using (var client = new CapMonsterClient("budget-processes-key", options))
        {
            for (int i = 0; i < polls; i++)
            {
                try
                {
                    client.GetTaskResult(taskId);
                    sent++;
                }
                catch (CapMonsterException e) when (e.Code == CapMonsterErrorCode.BudgetExhausted)
                {
                    exhausted++;
                }
                catch (CapMonsterException e) when (e.Code == CapMonsterErrorCode.Api)
                {
                    sent++; // the emulator refuses beyond 120 too
                }
            }
        }
        Console.WriteLine("csharp sent={0} exhausted={1}", sent, exhausted);
        return 0;
    }
}
