/* One request to the emulator's control endpoints over raw HTTP/1.1 (one connection per
 * request, `Connection: close`). Shared by the benchmark programs (scale.c, storm.c). */
#ifndef CAPMONSTER_BENCH_EMULATOR_HTTP_H
#define CAPMONSTER_BENCH_EMULATOR_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* The largest answer kept: the stats of 100,000 tasks are about 1.5 MiB. */
#define EMULATOR_MAX_ANSWER (16u << 20)

/* Sends one request to 127.0.0.1:port; returns the body (malloc'd, NUL-terminated, cut at
 * EMULATOR_MAX_ANSWER) and sets *status, or NULL. */
static char *emulator_request(int port, const char *method, const char *path, const char *body, int *status) {
    *status = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return NULL;
    }
    size_t blen = body ? strlen(body) : 0;
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: emulator\r\nConnection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, blen);
    if (write(fd, head, (size_t)hn) != hn || (blen && write(fd, body, blen) != (ssize_t)blen)) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    /* Bounded: the buffer grows to EMULATOR_MAX_ANSWER at most, then what is left is cut. */
    while (buf) {
        if (len + 4096 > cap && cap < EMULATOR_MAX_ANSWER) {
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) break;
            buf = bigger;
            cap *= 2;
        }
        if (len + 1 >= cap) break;
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    if (!buf) return NULL;
    buf[len] = 0;
    char *sep = strstr(buf, "\r\n\r\n");
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
        free(buf);
        return NULL;
    }
    memmove(buf, sep + 4, len - (size_t)(sep + 4 - buf) + 1);
    return buf;
}

#endif
