using System;
using System.IO;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using System.Threading;

namespace CapMonster.Tests
{
    /// <summary>Talks to the emulator's control endpoints (scripts, stats, tasks).</summary>
    public static class Emulator
    {
        private static long _nextTaskId = 7000000;

        public static string Url { get; private set; }

        public static void Init(string url)
        {
            Url = url;
        }

        /// <summary>A task id no other test uses (scripts apply per task id, created or not).</summary>
        public static long NewTaskId()
        {
            return Interlocked.Increment(ref _nextTaskId);
        }

        /// <summary>Scripts the answers to getTaskResult for <paramref name="taskId"/>; each step is JSON.</summary>
        public static void Script(long taskId, params string[] steps)
        {
            Post("/_emulator/script", "{\"taskId\":" + taskId + ",\"steps\":[" + string.Join(",", steps) + "]}");
        }

        /// <summary>A new scripted task id answering <paramref name="steps"/>.</summary>
        public static long ScriptedTask(params string[] steps)
        {
            long id = NewTaskId();
            Script(id, steps);
            return id;
        }

        /// <summary>How many getTaskResult requests reached the emulator for <paramref name="taskId"/>.</summary>
        public static int Requests(long taskId)
        {
            string stats = Get("/_emulator/stats");
            Match m = Regex.Match(stats, "\"" + taskId + "\"\\s*:\\s*(\\d+)");
            return m.Success ? int.Parse(m.Groups[1].Value) : 0;
        }

        /// <summary>Scripts every request to <paramref name="method"/> (e.g. "createTask"); no steps removes the script.</summary>
        public static void ScriptMethod(string method, params string[] steps)
        {
            Post("/_emulator/script", "{\"method\":" + Str(method) + ",\"steps\":[" + string.Join(",", steps) + "]}");
        }

        /// <summary>How many requests to <paramref name="method"/> reached the emulator since it started.</summary>
        public static int MethodCount(string method)
        {
            string stats = Get("/_emulator/stats");
            Match m = Regex.Match(stats, "\"" + method + "\"\\s*:\\s*(\\d+)");
            return m.Success ? int.Parse(m.Groups[1].Value) : 0;
        }

        /// <summary>Waits (up to 10 s) until <paramref name="count"/> returns at least <paramref name="target"/>.</summary>
        public static void AwaitCount(Func<int> count, int target, string what)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            while (count() < target)
            {
                if (watch.ElapsedMilliseconds > 10000) throw new InvalidOperationException(what + ": not seen within 10 s");
                Thread.Sleep(5);
            }
        }

        /// <summary>
        /// <paramref name="count"/> tasks at once (POST /_emulator/tasks): task first+j is ready
        /// <paramref name="solveAfterMs"/> + <paramref name="spreadMs"/>·j/count ms from now. Returns first.
        /// </summary>
        public static long CreateTasks(string type, int count, int solveAfterMs, int spreadMs)
        {
            string reply = Post("/_emulator/tasks", "{\"type\":" + Str(type) + ",\"count\":" + count + ",\"solveAfterMs\":" + solveAfterMs + ",\"spreadMs\":" + spreadMs + "}");
            return long.Parse(Regex.Match(reply, "\"firstTaskId\"\\s*:\\s*(\\d+)").Groups[1].Value);
        }

        /// <summary>A JSON string literal.</summary>
        public static string Str(string value)
        {
            var b = new StringBuilder("\"");
            foreach (char c in value)
            {
                switch (c)
                {
                    case '"': b.Append("\\\""); break;
                    case '\\': b.Append("\\\\"); break;
                    default:
                        if (c < 0x20) b.AppendFormat("\\u{0:x4}", (int)c);
                        else b.Append(c);
                        break;
                }
            }
            return b.Append('"').ToString();
        }

        public static string Post(string path, string json)
        {
            return Send("POST", path, json);
        }

        public static string Get(string path)
        {
            return Send("GET", path, null);
        }

        private static string Send(string method, string path, string body)
        {
            var request = (HttpWebRequest)WebRequest.Create(Url + path);
            request.Method = method;
            request.Proxy = null; // the tests' environment may name a proxy on purpose
            request.KeepAlive = false;
            request.Timeout = 30000;
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
                string detail = "";
                if (e.Response != null)
                {
                    using (var reader = new StreamReader(e.Response.GetResponseStream(), Encoding.UTF8)) detail = reader.ReadToEnd();
                }
                throw new InvalidOperationException(method + " " + path + " failed: " + e.Message + " " + detail, e);
            }
        }
    }
}
