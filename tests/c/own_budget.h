/*
 * A request budget of the test process's own, so that no test reads or writes the user's
 * budget file (`$XDG_RUNTIME_DIR/capmonster/budget-v4` or the like), whoever runs it. Call
 * use_own_budget() first in main: setenv is safe only while no other thread exists, and the
 * library reads the budget's variables once, at the first client.
 *
 * Unix: a fresh file in a new temporary directory (forked children share it, as the budget
 * tests need), removed at exit by the process that made it. Windows, where a mapped file
 * cannot be removed while its process lives: the budget of this process alone.
 *
 * C99 and C++11; on Unix define _POSIX_C_SOURCE 200809L (mkdtemp, setenv) before the first
 * include.
 */
#ifndef CAPMONSTER_TEST_OWN_BUDGET_H
#define CAPMONSTER_TEST_OWN_BUDGET_H

#include <stdio.h>
#include <stdlib.h>

#ifdef _WIN32
#include <windows.h>

static void use_own_budget(void) {
    if (!SetEnvironmentVariableA("CAPMONSTER_BUDGET", "process")) {
        fprintf(stderr, "cannot set CAPMONSTER_BUDGET: error %lu\n", (unsigned long)GetLastError());
        exit(2);
    }
    SetEnvironmentVariableA("CAPMONSTER_BUDGET_FILE", NULL); /* fails only when it was not set */
}
#else
#include <sys/types.h>
#include <unistd.h>

static char own_budget_dir[4096];
static char own_budget_file[4096 + sizeof "/budget"];
static pid_t own_budget_owner;

static void remove_own_budget(void) {
    if (getpid() != own_budget_owner) return; /* a forked child leaves it to its parent */
    unlink(own_budget_file);
    rmdir(own_budget_dir);
}

static void use_own_budget(void) {
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] != '/') tmp = "/tmp";
    if ((size_t)snprintf(own_budget_dir, sizeof own_budget_dir, "%s/capmonster-c-test-budget.XXXXXX", tmp) >=
            sizeof own_budget_dir ||
        mkdtemp(own_budget_dir) == NULL) {
        perror("the test's budget directory");
        exit(2);
    }
    snprintf(own_budget_file, sizeof own_budget_file, "%s/budget", own_budget_dir);
    if (setenv("CAPMONSTER_BUDGET_FILE", own_budget_file, 1) != 0 || unsetenv("CAPMONSTER_BUDGET") != 0) {
        perror("setenv");
        exit(2);
    }
    own_budget_owner = getpid();
    atexit(remove_own_budget);
}
#endif

#endif /* CAPMONSTER_TEST_OWN_BUDGET_H */
