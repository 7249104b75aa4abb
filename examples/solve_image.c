/*
 * Solves one image captcha: createTask (ImageToTextTask), then cm_wait_result, then prints
 * the solution and how many requests the wait spent.
 *
 *   CAPMONSTER_BASE_URL=http://127.0.0.1:PORT ./solve_image        against the emulator
 *   CAPMONSTER_CLIENT_KEY=your-key ./solve_image [captcha.png]     against the real service
 *
 * Without an image file it sends a small built-in sample picture.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capmonster.h"

/* A small noisy 80x24 PNG, base64-encoded. */
static const char SAMPLE_IMAGE_BASE64[] =
    "iVBORw0KGgoAAAANSUhEUgAAAFAAAAAYCAAAAABIcSVwAAABRklEQVR42oWU2xUEIQhDqST9F3WL"
    "sITddRwFhLN+jOODCEnUxhgaYnZjIM1ez3A18ld7+HZ7YHHoYb6DB5tqLSKd9gCerTGoW+Cd8+fI"
    "AVYgutNgAVAFaQGqACPkwg3Aw4Lc8axfW71OTiRGYUV9U4MVjS9m71iAeAFJhIleCo0U9wCiTRch"
    "aJa7LXITh3bqpyQr2fcZika1qUS2aVSZGMAOuYzudypA/lRG8cRcmYfR4aF2uNXzVDPyf0ol6fWh"
    "LzBidNz9QpWJ37YzN/+KpUojkhzdueanXyTU8EjQ5CJJUWU1UhyTMu9xmR23KNEvbaPI35vK8ovA"
    "egZRUqJzdzQRdt/KfzKTa5FbwXy89vWs38HqgVPi35rclWWJd+7guKhJi6l+gW+FFJxId0nNnclV"
    "SSNIk+8qmZwipSBoRA9qxJdoXacPAyWAG66wIC4AAAAASUVORK5CYII=";

/* Reads a whole file and returns it base64-encoded (malloc'd), or NULL. */
static char *base64_file(const char *path) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    FILE *file = fopen(path, "rb");
    unsigned char *data;
    char *out;
    long size;
    size_t i, o = 0;
    if (file == NULL) return NULL;
    if (fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return NULL;
    }
    data = malloc((size_t)size + 1);
    out = malloc(((size_t)size + 2) / 3 * 4 + 1);
    if (data == NULL || out == NULL || fread(data, 1, (size_t)size, file) != (size_t)size) {
        fclose(file);
        free(data);
        free(out);
        return NULL;
    }
    fclose(file);
    for (i = 0; i < (size_t)size; i += 3) {
        unsigned long n = (unsigned long)data[i] << 16;
        size_t left = (size_t)size - i;
        if (left > 1) n |= (unsigned long)data[i + 1] << 8;
        if (left > 2) n |= data[i + 2];
        out[o++] = alphabet[(n >> 18) & 63];
        out[o++] = alphabet[(n >> 12) & 63];
        out[o++] = left > 1 ? alphabet[(n >> 6) & 63] : '=';
        out[o++] = left > 2 ? alphabet[n & 63] : '=';
    }
    out[o] = '\0';
    free(data);
    return out;
}

static int fail(const char *what, cm_code code, const cm_result *result) {
    fprintf(stderr, "%s failed: %s: %s\n", what, cm_code_name(code), cm_result_message(result));
    if (cm_result_api_error_code(result) != NULL) {
        fprintf(stderr, "  service error code: %s\n", cm_result_api_error_code(result));
    }
    return 1;
}

/* What the client did, from its counters (cm_client_get_stats). */
static void print_counters(const cm_client *client) {
    cm_client_stats stats;
    stats.size = sizeof stats;
    if (cm_client_get_stats(client, &stats) != CM_OK) return;
    printf("counters: requests: %llu createTask, %llu getTaskResult; answers: %llu processing, %llu "
           "successful; retries: %llu; connections: %llu opened, %llu open; bytes: %llu sent, %llu received\n",
           (unsigned long long)stats.requests_create_task, (unsigned long long)stats.requests_get_task_result,
           (unsigned long long)stats.answers_processing, (unsigned long long)stats.answers_ready,
           (unsigned long long)stats.retries, (unsigned long long)stats.connections_opened,
           (unsigned long long)stats.connections_open, (unsigned long long)stats.bytes_sent,
           (unsigned long long)stats.bytes_received);
}

int main(int argc, char **argv) {
    const char *key = getenv("CAPMONSTER_CLIENT_KEY");
    const char *base_url = getenv("CAPMONSTER_BASE_URL");
    char *image = NULL;
    char *task_json;
    cm_client *client = NULL;
    cm_result *result = NULL;
    cm_wait_options options;
    int64_t task_id = 0;
    cm_code code;
    int status = 0;

    if (key == NULL && base_url == NULL) {
        fprintf(stderr, "set CAPMONSTER_CLIENT_KEY (real service) or CAPMONSTER_BASE_URL (emulator)\n");
        return 2;
    }
    if (key == NULL) key = "emulator-demo-key";
    if (argc > 1 && (image = base64_file(argv[1])) == NULL) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }

    /* Creation and the setters say why they refuse in a result (NULL instead of &result: the
     * code alone). */
    code = cm_client_new(key, &client, &result);
    if (code != CM_OK) {
        fprintf(stderr, "cm_client_new: %s: %s\n", cm_code_name(code), cm_result_message(result));
        cm_result_free(result);
        free(image);
        return 1;
    }
    cm_result_free(result);
    result = NULL;
    if (base_url != NULL && (code = cm_client_set_base_url(client, base_url, &result)) != CM_OK) {
        fprintf(stderr, "cm_client_set_base_url: %s: %s\n", cm_code_name(code), cm_result_message(result));
        cm_result_free(result);
        cm_client_free(client);
        free(image);
        return 1;
    }
    cm_result_free(result);
    result = NULL;

    task_json = malloc(strlen(image ? image : SAMPLE_IMAGE_BASE64) + 64);
    if (task_json == NULL) {
        cm_client_free(client);
        free(image);
        return 1;
    }
    sprintf(task_json, "{\"type\":\"ImageToTextTask\",\"body\":\"%s\"}", image ? image : SAMPLE_IMAGE_BASE64);
    free(image);

    code = cm_create_task(client, task_json, NULL, &task_id, &result);
    free(task_json);
    if (code != CM_OK) {
        status = fail("createTask", code, result);
        goto done;
    }
    printf("created task %lld\n", (long long)task_id);
    cm_result_free(result);
    result = NULL;

    /* The official schedule for image tasks: first poll after 350 ms, then every 200 ms. */
    cm_wait_options_for_task_type(&options, "ImageToTextTask");
    code = cm_wait_result(client, task_id, &options, &result);
    if (code != CM_OK) {
        status = fail("waiting", code, result);
        goto done;
    }
    printf("solution: %s\n", cm_result_solution_json(result));
    printf("text: %s\n", cm_result_solution_string(result, "text"));
    printf("requests: %u\n", cm_result_request_count(result));
    print_counters(client);

done:
    cm_result_free(result);
    cm_client_free(client);
    return status;
}
