/* A figure of this process from /proc/self/status, e.g. status_kib("VmRSS:"), in KiB; -1 when
 * it cannot be read. Shared by the benchmark programs (rss.c, scale.c). */
#ifndef CAPMONSTER_BENCH_PROC_STATUS_H
#define CAPMONSTER_BENCH_PROC_STATUS_H

#include <stdio.h>
#include <string.h>

static long status_kib(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0) sscanf(line + n, "%ld", &kib);
    if (f) fclose(f);
    return kib;
}

#endif
