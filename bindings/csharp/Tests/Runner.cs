using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Runtime.InteropServices;
using System.Threading;

namespace CapMonster.Tests
{
    /// <summary>
    /// A console test runner: every test is a method run on its own thread, with a time
    /// bound; it prints "PASS name" or "FAIL name: reason", and last "N passed, M failed".
    /// The exit code is 0 only when nothing failed. The tests count their requests in a
    /// request budget of their own (see UseOwnBudget), never in the user's budget file.
    /// Usage: mono CapMonster.Tests.exe [emulator-url] [test-name-substring...]
    /// (the URL can also come from EMULATOR_URL).
    /// </summary>
    public static class Runner
    {
        private static readonly TimeSpan TestTimeLimit = TimeSpan.FromSeconds(180);

        public static int Main(string[] args)
        {
            string url = args.Length > 0 ? args[0] : Environment.GetEnvironmentVariable("EMULATOR_URL");
            if (string.IsNullOrEmpty(url))
            {
                Console.Error.WriteLine("usage: CapMonster.Tests.exe <emulator-url> [name-filter...] (or set EMULATOR_URL)");
                return 2;
            }
            var filters = new List<string>();
            for (int i = 1; i < args.Length; i++) filters.Add(args[i]);

            string budgetDirectory = UseOwnBudget();
            Emulator.Init(url.TrimEnd('/'));
            int passed = 0, failed = 0;
            var total = Stopwatch.StartNew();
            var tests = new List<Action> { RequestBudgetIsTheTestsOwn };
            tests.AddRange(ClientTests.All());
            tests.AddRange(EngineTests.All());
            foreach (Action test in tests)
            {
                string name = test.Method.Name;
                if (filters.Count > 0 && !filters.Exists(f => name.IndexOf(f, StringComparison.OrdinalIgnoreCase) >= 0)) continue;
                var watch = Stopwatch.StartNew();
                string failure = RunOne(test);
                watch.Stop();
                if (failure == null)
                {
                    passed++;
                    Console.WriteLine("PASS {0} ({1} ms)", name, watch.ElapsedMilliseconds);
                }
                else
                {
                    failed++;
                    Console.WriteLine("FAIL {0}: {1}", name, failure);
                }
            }
            Console.WriteLine("tests took {0:F1} s", total.Elapsed.TotalSeconds);
            Console.WriteLine("{0} passed, {1} failed", passed, failed);
            Console.Out.Flush();
            // Unix removes a file that is still mapped (Environment.Exit skips finally blocks).
            try
            {
                if (budgetDirectory != null) Directory.Delete(budgetDirectory, true);
            }
            catch (IOException e)
            {
                Console.Error.WriteLine("the tests' budget directory stays: " + e.Message);
            }
            // A test stuck past its time limit leaves a background thread: exit anyway.
            Environment.Exit(failed == 0 ? 0 : 1);
            return failed == 0 ? 0 : 1;
        }

        // The C environment, where the native library reads its variables (also ClientTests').
        [DllImport("libc", EntryPoint = "getenv")]
        internal static extern IntPtr NativeGetenv(string name);

        [DllImport("libc", EntryPoint = "setenv")]
        internal static extern int NativeSetenv(string name, string value, int overwrite);

        [DllImport("libc", EntryPoint = "unsetenv")]
        internal static extern int NativeUnsetenv(string name);

        /// <summary>This test process's request budget file (null on Windows).</summary>
        private static string ownBudgetFile;

        /// <summary>
        /// Gives the test process a request budget of its own, so that no test reads or writes the
        /// user's budget file whoever runs it; returns the directory to remove at the end (null
        /// on Windows). Unix: a fresh file in a temporary directory, set in the C environment
        /// (where the native library reads it; .NET Core never writes its managed copy there)
        /// before any test thread or client exists, as the library reads it once, at the first
        /// client. Windows, where a mapped file cannot be removed while its process lives: the
        /// budget of this process alone.
        /// </summary>
        private static string UseOwnBudget()
        {
            if (Environment.OSVersion.Platform == PlatformID.Win32NT)
            {
                Environment.SetEnvironmentVariable("CAPMONSTER_BUDGET_FILE", null);
                Environment.SetEnvironmentVariable("CAPMONSTER_BUDGET", "process");
                return null;
            }
            string directory = Path.Combine(Path.GetTempPath(), "capmonster-cs-test-budget-" + Process.GetCurrentProcess().Id);
            if (Directory.Exists(directory)) Directory.Delete(directory, true); // a dead process's: ids are reused
            Directory.CreateDirectory(directory);
            ownBudgetFile = Path.Combine(directory, "budget");
            if (NativeSetenv("CAPMONSTER_BUDGET_FILE", ownBudgetFile, 1) != 0 || NativeUnsetenv("CAPMONSTER_BUDGET") != 0)
            {
                throw new InvalidOperationException("cannot set the budget's variables");
            }
            return directory;
        }

        /// <summary>The clients count in the budget Main chose: the file it made, not the user's.</summary>
        private static void RequestBudgetIsTheTestsOwn()
        {
            if (ownBudgetFile == null)
            {
                Assert.Equal("process", Environment.GetEnvironmentVariable("CAPMONSTER_BUDGET"), "CAPMONSTER_BUDGET");
                return;
            }
            IntPtr file = NativeGetenv("CAPMONSTER_BUDGET_FILE");
            Assert.Equal(ownBudgetFile, file == IntPtr.Zero ? null : Marshal.PtrToStringAnsi(file), "CAPMONSTER_BUDGET_FILE");
            // The first client opens the budget file (if no test made one before).
            using (new CapMonsterClient("cs-own-budget", new CapMonsterClientOptions { BaseUrl = Emulator.Url, UseProxy = false }))
            {
            }
            Assert.True(File.Exists(ownBudgetFile), "the budget file is where the tests put it: " + ownBudgetFile);
        }

        private static string RunOne(Action test)
        {
            Exception error = null;
            var thread = new Thread(() =>
            {
                try
                {
                    test();
                }
                catch (Exception e)
                {
                    error = e;
                }
            });
            thread.IsBackground = true;
            thread.Start();
            if (!thread.Join(TestTimeLimit)) return "did not finish within " + TestTimeLimit.TotalSeconds + " s";
            if (error == null) return null;
            if (error is AssertionException) return error.Message;
            return error.GetType().FullName + ": " + error.Message + Environment.NewLine + error.StackTrace;
        }
    }

    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    public static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition) throw new AssertionException(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
            {
                throw new AssertionException(string.Format("{0}: expected <{1}>, got <{2}>", what, Show(expected), Show(actual)));
            }
        }

        public static void Null(object value, string what)
        {
            if (value != null) throw new AssertionException(what + ": expected null, got <" + value + ">");
        }

        public static void Contains(string expectedPart, string actual, string what)
        {
            if (actual == null || actual.IndexOf(expectedPart, StringComparison.Ordinal) < 0)
            {
                throw new AssertionException(string.Format("{0}: <{1}> does not contain <{2}>", what, Show(actual), expectedPart));
            }
        }

        public static void Less(double actual, double bound, string what)
        {
            if (!(actual < bound)) throw new AssertionException(string.Format("{0}: {1} is not below {2}", what, actual, bound));
        }

        /// <summary>Runs <paramref name="action"/> and returns the exception of type T it throws (exactly T or a subclass).</summary>
        public static T Throws<T>(Action action, string what) where T : Exception
        {
            try
            {
                action();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new AssertionException(string.Format("{0}: expected {1}, got {2}: {3}", what, typeof(T).Name, e.GetType().FullName, e.Message));
            }
            throw new AssertionException(string.Format("{0}: expected {1}, nothing was thrown", what, typeof(T).Name));
        }

        /// <summary>A CapMonsterException with <paramref name="code"/>.</summary>
        public static CapMonsterException Fails(CapMonsterErrorCode code, Action action, string what)
        {
            CapMonsterException e = Throws<CapMonsterException>(action, what);
            if (e.Code != code)
            {
                throw new AssertionException(string.Format("{0}: expected code {1}, got {2} ({3})", what, code, e.Code, e.Message));
            }
            return e;
        }

        private static string Show(object value)
        {
            return value == null ? "null" : value.ToString();
        }
    }
}
