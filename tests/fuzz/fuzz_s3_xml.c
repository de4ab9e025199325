/* fuzz_s3_xml.c — what walship reads from S3 response bodies: ListObjectsV2 pages (the
 * <Contents> walk of s3.c's list_page, through the same public ws_s3_xml_text, then
 * IsTruncated / NextContinuationToken), error replies (Code and Message, sanitized as
 * s3_client.c's server_text does) and CreateMultipartUpload's UploadId. */
#include "tests/fuzz/fuzz.h"
#include "walship/error.h"
#include "walship/storage/s3_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml = fuzz_strndup(data, size);
    if (!xml)
        return 0;
    static char key[2048];
    char sz[32], lm[64], trunc[16], next[1024], raw[1024], code[160], msg[400], id[1024];
    const char *p = xml;
    while ((p = strstr(p, "<Contents>"))) {
        const char *end = strstr(p, "</Contents>");
        if (!end)
            break;
        char *item = strndup(p, (size_t)(end - p));
        p = end + 11;
        if (!item)
            continue;
        if (ws_s3_xml_text(item, "Key", key, sizeof key, NULL) == 0) {
            ws_s3_xml_text(item, "Size", sz, sizeof sz, NULL);
            ws_s3_xml_text(item, "LastModified", lm, sizeof lm, NULL);
            (void)strtoull(sz, NULL, 10);
        }
        free(item);
    }
    ws_s3_xml_text(xml, "IsTruncated", trunc, sizeof trunc, NULL);
    ws_s3_xml_text(xml, "NextContinuationToken", next, sizeof next, NULL);
    if (ws_s3_xml_text(xml, "Code", raw, sizeof raw, NULL) == 0)
        ws_sanitize(code, sizeof code, raw, strlen(raw), 64);
    if (ws_s3_xml_text(xml, "Message", raw, sizeof raw, NULL) == 0)
        ws_sanitize(msg, sizeof msg, raw, strlen(raw), WS_SANITIZE_MAX);
    ws_s3_xml_text(xml, "UploadId", id, sizeof id, NULL);
    /* a tiny output buffer: truncation must stay in bounds */
    char tiny[2];
    const char *after;
    for (const char *q = xml; ws_s3_xml_text(q, "ETag", tiny, sizeof tiny, &after) == 0; q = after)
        ;
    free(xml);
    return 0;
}
