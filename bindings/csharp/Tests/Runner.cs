using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Threading;

namespace CapMonster.Tests
{
    /// <summary>
    /// A console test runner: every test is a method run on its own thread, with a time
    /// bound; it prints "PASS name" or "FAIL name: reason", and last "N passed, M failed".
    /// The exit code is 0 only when nothing failed.
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

            Emulator.Init(url.TrimEnd('/'));
            int passed = 0, failed = 0;
            var total = Stopwatch.StartNew();
            foreach (Action test in System.Linq.Enumerable.Concat(ClientTests.All(), EngineTests.All()))
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
            // A test stuck past its time limit leaves a background thread: exit anyway.
            Environment.Exit(failed == 0 ? 0 : 1);
            return failed == 0 ? 0 : 1;
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
