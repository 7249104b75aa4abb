#!/usr/bin/env python3
"""Runs the code blocks of the READMEs and docs/ pages, the way doc tests keep library docs honest.

Every fenced block with a language (c, go, csharp, sh, cmake, vba) must say how it is checked, on
the line just above its opening fence:

    <!-- readme-test: KIND [name=value ...] -->

or, for a block that cannot run here, visibly, in the text just above it:

    *Not run by the README test: REASON.*

KINDs:
    c-program      a whole C file: built with the flags the README gives, run
    c-fragment     statements: completed by the named `prelude` (one of PRELUDES), built, run
    go-program     a whole Go program: a module of its own that requires the binding (as the
                   README tells other modules to), `go vet`, `go run`
    csharp-program a whole C# program: built with mcs against CapMonster.dll, run with mono
    sh             run with bash -euo pipefail from the repository root
    cmake          a CMakeLists fragment: completed into a project that builds `file`

Options: `expect="text"` (repeatable) must appear in the output; `save=NAME` keeps the block's
text under NAME for later blocks; `file=NAME` (sh) writes a kept block to NAME in the repository
root for the block's run, and `cleanup=NAME` removes what the block made; `from=NAME` (cmake) is
the kept source the project builds, `prefix=` where it finds the package; `replace="A=>B"`
edits the block before it runs (B may use $PREFIX, a temporary install prefix). Programs run
with CAPMONSTER_BASE_URL set to a fresh emulator. Blocks without a language (output shown to the
reader) are not run.

Usage: readme_blocks.py README.md [more.md ...]   (from the repository root, after a release
build; the emulator is target/release/capmonster-emulator)

       readme_blocks.py --links [file.md ...]
checks instead that every relative link (`[text](path)`, `[text](path#heading)`, `[text](#heading)`,
outside code blocks) of the files, by default every Markdown file of the repository, points to a
file or folder that exists and, for `#heading`, to a heading of that Markdown file (GitHub's
anchors: lower case, punctuation dropped, spaces to hyphens). Needs no build.
"""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK = re.compile(r"^<!-- readme-test: ([a-z-]+)(.*?)-->\s*$")
SKIP = re.compile(r"^\*Not run by the README test: (.+)\.\*\s*$")
FENCE = re.compile(r"^```([A-Za-z0-9+#-]*)\s*$")
LANGUAGES = {"c", "go", "csharp", "sh", "cmake", "vba"}
C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]

# What a fragment's surrounding text tells the reader it runs inside.
PRELUDES = {
    # "client, options and task ids as above; use() and report() are yours"
    "waiter": (
        """#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "capmonster.h"

static void use(uint64_t tag, const char *solution) { printf("tag %u: %s\\n", (unsigned)tag, solution); }
static void report(uint64_t tag, const char *message) { printf("tag %u failed: %s\\n", (unsigned)tag, message); }

int main(void) {
    cm_client *client = NULL;
    cm_wait_options options;
    int64_t task_ids[3];
    size_t count = 3, n;
    if (cm_client_new("readme-key", &client, NULL) != CM_OK) return 1;
    if (cm_client_set_base_url(client, getenv("CAPMONSTER_BASE_URL"), NULL) != CM_OK) return 1;
    for (n = 0; n < count; n++) {
        cm_result *created = NULL;
        if (cm_create_task(client, "{\\"type\\":\\"ImageToTextTask\\",\\"body\\":\\"aGVsbG8=\\"}", NULL, &task_ids[n],
                           &created) != CM_OK) return 1;
        cm_result_free(created);
    }
    cm_wait_options_for_task_type(&options, "ImageToTextTask");
    {
""",
        """    }
    cm_client_free(client);
    return 0;
}
""",
    ),
}


class Failure(Exception):
    pass


def blocks(path):
    """(line, language, marker kind, options, skip reason, text) of every fenced block."""
    lines = open(path, encoding="utf-8").read().split("\n")
    found, i = [], 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        start, language = i, fence.group(1)
        end = i + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        text = "\n".join(lines[start + 1 : end]) + "\n"
        kind, options, reason = None, {}, None
        above = start - 1
        if above >= 0 and MARK.match(lines[above]):
            mark = MARK.match(lines[above])
            kind, options = mark.group(1), parse_options(mark.group(2))
        else:
            while above >= 0 and lines[above].strip() == "":
                above -= 1
            if above >= 0 and SKIP.match(lines[above]):
                reason = SKIP.match(lines[above]).group(1)
        found.append((start + 1, language, kind, options, reason, text))
        i = end + 1
    return found


def parse_options(text):
    options = {}
    for word in shlex.split(text):
        name, _, value = word.partition("=")
        options.setdefault(name, []).append(value)
    return options


def one(options, name, default=None):
    return options.get(name, [default])[0]


class Emulator:
    def __enter__(self):
        port_file = tempfile.mktemp(prefix="readme-emulator-port.")
        self.process = subprocess.Popen(
            [os.path.join(ROOT, "target/release/capmonster-emulator"), "--port", "0", "--port-file", port_file,
             "--solve-after-ms", "200"],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        self.url = "http://127.0.0.1:" + open(port_file).read().strip()
        os.remove(port_file)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait()


def run(command, cwd, env=None, timeout=300, shell=False):
    result = subprocess.run(command, cwd=cwd, env=env, timeout=timeout, shell=shell, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, executable="/bin/bash" if shell else None)
    if result.returncode != 0:
        raise Failure(f"{command if isinstance(command, str) else ' '.join(command)} failed "
                      f"({result.returncode}):\n{result.stdout}")
    return result.stdout


def check_expected(output, options):
    for expected in options.get("expect", []):
        if expected not in output:
            raise Failure(f"the output lacks {expected!r}:\n{output}")


def program_env(emulator, extra=None):
    env = dict(os.environ, CAPMONSTER_BASE_URL=emulator.url)
    env.pop("CAPMONSTER_CLIENT_KEY", None)
    env.update(extra or {})
    return env


def build_c(source, work, name):
    path = os.path.join(work, name + ".c")
    with open(path, "w") as f:
        f.write(source)
    exe = os.path.join(work, name)
    release = os.path.join(ROOT, "target/release")
    run(["gcc", *C_FLAGS, "-I" + os.path.join(ROOT, "include"), path, "-L" + release, "-lcapmonster",
         "-Wl,-rpath," + release, "-o", exe], work)
    return exe


def go_program(text, work, emulator):
    module = os.path.join(work, "goprogram")
    os.makedirs(module)
    with open(os.path.join(module, "main.go"), "w") as f:
        f.write(text)
    binding = os.path.join(ROOT, "bindings/go")
    env = dict(os.environ, GOFLAGS="-mod=mod", GOPROXY="off", GOTOOLCHAIN="local", CGO_ENABLED="1")
    run(["go", "mod", "init", "example.com/readme"], module, env)
    # What the Go section tells another module to do.
    run(["go", "mod", "edit", "-require=github.com/libcapmonster/capmonster-go@v0.0.0",
         "-replace=github.com/libcapmonster/capmonster-go=" + binding], module, env)
    run(["go", "vet", "."], module, env)
    return run(["go", "run", "."], module, program_env(emulator, {k: env[k] for k in ("GOFLAGS", "GOPROXY",
                                                                                         "GOTOOLCHAIN")}))


def csharp_program(text, work, emulator):
    dll = os.path.join(work, "CapMonster.dll")
    sources = sorted(os.path.join(ROOT, "bindings/csharp/CapMonster", name)
                     for name in os.listdir(os.path.join(ROOT, "bindings/csharp/CapMonster")) if name.endswith(".cs"))
    run(["mcs", "-target:library", "-out:" + dll, *sources], work)
    path = os.path.join(work, "Program.cs")
    with open(path, "w") as f:
        f.write(text)
    exe = os.path.join(work, "Program.exe")
    run(["mcs", "-r:" + dll, "-out:" + exe, path], work)
    release = os.path.join(ROOT, "target/release")
    return run(["mono", exe], work, program_env(emulator, {"LD_LIBRARY_PATH": release}))


def shell(text, options, saved, work, emulator):
    prefix = os.path.join(work, "prefix")
    for rule in options.get("replace", []):
        old, _, new = rule.partition("=>")
        if old not in text:
            raise Failure(f"replace: {old!r} is not in the block")
        text = text.replace(old, new)
    created = []
    for name in options.get("file", []):
        if name not in saved:
            raise Failure(f"file={name}: no block was saved under that name above")
        target = os.path.join(ROOT, name)
        if os.path.exists(target):
            raise Failure(f"file={name}: {target} exists; the test will not overwrite it")
        with open(target, "w") as f:
            f.write(saved[name])
        created.append(target)
    env = program_env(emulator, {"PREFIX": prefix})
    try:
        return run("set -euo pipefail\n" + text, ROOT, env, shell=True)
    finally:
        for name in options.get("cleanup", []) + [os.path.relpath(p, ROOT) for p in created]:
            target = os.path.join(ROOT, name)
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)


def cmake(text, options, saved, work):
    name = one(options, "from")
    project = os.path.join(work, "cmake-project")
    os.makedirs(project)
    with open(os.path.join(project, "app.c"), "w") as f:
        f.write(saved[name])
    with open(os.path.join(project, "CMakeLists.txt"), "w") as f:
        f.write("cmake_minimum_required(VERSION 3.16)\nproject(readme C)\nadd_executable(app app.c)\n" + text)
    prefix = one(options, "prefix").replace("$PREFIX", os.path.join(work, "prefix"))
    run(["cmake", "-S", project, "-B", os.path.join(project, "build"), "-DCMAKE_PREFIX_PATH=" + prefix], work)
    run(["cmake", "--build", os.path.join(project, "build")], work)
    return "built"


LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")
# Folders of build output and tools, not documentation.
NOT_DOCS = {".git", "target", "dist", "node_modules"}


def prose_lines(path):
    """(line number, text) of the lines outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(open(path, encoding="utf-8").read().split("\n"), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def anchors(path, cache={}):
    """The #anchors a Markdown file's headings get on GitHub, and any <a name/id>."""
    if path not in cache:
        found, seen = set(), {}
        for _, line in prose_lines(path):
            found.update(HTML_ANCHOR.findall(line))
            heading = HEADING.match(line)
            if not heading:
                continue
            text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1))  # a link's text only
            slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            found.add(slug if count == 0 else f"{slug}-{count}")
        cache[path] = found
    return cache[path]


def markdown_files():
    found = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in NOT_DOCS)
        found += [os.path.relpath(os.path.join(folder, n), ROOT) for n in sorted(names) if n.endswith(".md")]
    return found


def check_links(paths):
    failures, count = [], 0
    for path in paths:
        for number, line in prose_lines(path):
            # Code spans are text, not links (`GetBalance[Async](ct)`); a link's text may be one.
            for target in LINK.findall(re.sub(r"`[^`]*`", "code", line)):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked here
                    continue
                count += 1
                file_part, _, anchor = target.partition("#")
                where = f"{path}:{number}: {target}"
                resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
                if not os.path.exists(resolved):
                    failures.append(f"{where}: {resolved} does not exist")
                elif anchor and resolved.endswith(".md") and anchor not in anchors(resolved):
                    failures.append(f"{where}: {resolved} has no heading #{anchor}")
    if failures:
        print("\n".join(failures), file=sys.stderr)
        print(f"links: {len(failures)} of {count} broken in {len(paths)} files", file=sys.stderr)
        return 1
    print(f"links: all {count} relative links of {len(paths)} Markdown files resolve")
    return 0


def main(paths):
    work = tempfile.mkdtemp(prefix="readme-test.")
    failures, counts, saved = [], {}, {}
    try:
        with Emulator() as emulator:
            for path in paths:
                for line, language, kind, options, reason, text in blocks(path):
                    where = f"{path}:{line}"
                    if language not in LANGUAGES:
                        continue
                    if kind is None:
                        if reason is None:
                            failures.append(f"{where}: a {language} block with no readme-test marker and no "
                                            "visible 'Not run by the README test: ...' line")
                        else:
                            print(f"{where}: {language}: not run: {reason}")
                            counts["not run"] = counts.get("not run", 0) + 1
                        continue
                    for name in options.get("save", []):
                        saved[name] = text
                    try:
                        if kind == "c-program":
                            output = run([build_c(text, work, f"block{line}")], work, program_env(emulator))
                        elif kind == "c-fragment":
                            before, after = PRELUDES[one(options, "prelude")]
                            output = run([build_c(before + text + after, work, f"block{line}")], work,
                                         program_env(emulator))
                        elif kind == "go-program":
                            output = go_program(text, os.path.join(work, f"go{line}"), emulator)
                        elif kind == "csharp-program":
                            os.makedirs(os.path.join(work, f"cs{line}"))
                            output = csharp_program(text, os.path.join(work, f"cs{line}"), emulator)
                        elif kind == "sh":
                            output = shell(text, options, saved, work, emulator)
                        elif kind == "cmake":
                            output = cmake(text, options, saved, work)
                        else:
                            raise Failure(f"unknown kind {kind!r}")
                        check_expected(output, options)
                        print(f"{where}: {language}: {kind}: ok")
                        counts[kind] = counts.get(kind, 0) + 1
                    except (Failure, subprocess.TimeoutExpired, KeyError) as error:
                        failures.append(f"{where}: {kind}: {error}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    if failures:
        print("\n".join(failures), file=sys.stderr)
        print(f"README blocks: {len(failures)} failed ({summary} passed or skipped)", file=sys.stderr)
        return 1
    print(f"README blocks: all passed ({summary})")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.chdir(ROOT)
    if sys.argv[1:2] == ["--links"]:
        sys.exit(check_links(sys.argv[2:] or markdown_files()))
    sys.exit(main(sys.argv[1:]))
