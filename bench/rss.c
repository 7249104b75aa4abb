/*
 * Resident memory of a process that has made one getTaskResult call (see bench/README.md).
 *   -DCONTENDER_LIB  : one cm_get_task_result on a new client
 *   -DCONTENDER_CURL : one libcurl easy POST, answer parsed with cJSON
 *   neither          : no call at all (the C runtime alone, for scale)
 * Usage: rss_X URL   prints  RSS vmrss_kib=.. vmhwm_kib=.. ok=..
 */
#include <stdio.h>
#include <string.h>

#include "proc_status.h"

#if defined(CONTENDER_LIB)
#include "capmonster.h"
#elif defined(CONTENDER_CURL)
#include <cjson/cJSON.h>
#include <curl/curl.h>
static char buf[4096];
static size_t len;
static size_t on_data(char *d, size_t s, size_t n, void *u) {
    (void)u;
    if (len + s * n >= sizeof buf) return 0;
    memcpy(buf + len, d, s * n);
    len += s * n;
    return s * n;
}
#endif

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s BASE_URL\n", argv[0]);
        return 2;
    }
    int ok = 1;
#if defined(CONTENDER_LIB)
    cm_client *c = NULL;
    cm_result *r = NULL;
    ok = cm_client_new("bench-key", &c, NULL) == CM_OK && cm_client_set_base_url(c, argv[1], NULL) == CM_OK &&
         cm_client_set_proxy(c, NULL, NULL) == CM_OK && cm_get_task_result(c, 1, &r) == CM_OK &&
         cm_result_is_ready(r) == 0;
    cm_result_free(r);
#elif defined(CONTENDER_CURL)
    char url[512];
    snprintf(url, sizeof url, "%s/getTaskResult", argv[1]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL *h = curl_easy_init();
    struct curl_slist *hd = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "{\"clientKey\":\"bench-key\",\"taskId\":1}");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    ok = curl_easy_perform(h) == CURLE_OK;
    cJSON *j = cJSON_ParseWithLength(buf, len);
    cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "status");
    ok = ok && cJSON_IsString(s) && strcmp(s->valuestring, "processing") == 0;
    cJSON_Delete(j);
#endif
    /* Measured while the client (and its connection) is still alive, as in a real program. */
    printf("RSS vmrss_kib=%ld vmhwm_kib=%ld ok=%d\n", status_kib("VmRSS:"), status_kib("VmHWM:"), ok);
#if defined(CONTENDER_LIB)
    cm_client_free(c);
#elif defined(CONTENDER_CURL)
    curl_easy_cleanup(h);
    curl_slist_free_all(hd);
    curl_global_cleanup();
#endif
    return ok ? 0 : 1;
}
