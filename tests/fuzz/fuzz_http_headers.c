/* fuzz_http_headers.c — response header lines as libcurl hands them to walship/storage/http.c
 * (status lines reset the set, as after a 100 Continue), then the lookups the S3 driver makes. */
#include "tests/fuzz/fuzz.h"
#include "walship/storage/curl_dl.h"
#include "walship/storage/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int loaded;
    ws_error err;
    if (!loaded && ws_curl_load(&err) < 0)
        abort(); /* libcurl is loaded on first use; ws_http_req_free calls into it */
    loaded = 1;
    ws_http_req *rq = ws_http_req_new("GET", "http://127.0.0.1/fuzz");
    if (!rq)
        return 0;
    for (size_t off = 0; off < size;) {
        const uint8_t *nl = memchr(data + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (data + off)) + 1 : size - off;
        /* libcurl's buffer is not NUL-terminated: give the parser exactly n bytes */
        char *line = malloc(n ? n : 1);
        if (!line)
            break;
        memcpy(line, data + off, n);
        ws_http_req_feed_header(rq, line, n);
        free(line);
        off += n;
    }
    static const char *names[] = {"etag",
                                  "content-length",
                                  "x-amz-meta-walship-sha256",
                                  "last-modified",
                                  "content-range",
                                  "retry-after",
                                  ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = ws_http_req_resp_header(rq, names[i]);
        if (v)
            (void)strlen(v);
    }
    const char *name, *value;
    for (int i = 0; ws_http_req_resp_header_at(rq, i, &name, &value) == 1; i++)
        if (strlen(name) + strlen(value) > size)
            abort();
    ws_http_req_free(rq);
    return 0;
}
