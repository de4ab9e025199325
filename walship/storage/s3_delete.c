/*
 * s3_delete.c — the S3 driver's batch removal and multipart leftovers (s3_driver.h).
 *
 * remove_many: DeleteObjects, S3_DELETE_BATCH (1000, S3's limit) keys per request, in the
 * order given, with the same retries and error classes as every other request (s3_client.h).
 * A key the server reports in an <Error> fails the batch; keys of earlier batches are done.
 *
 * Temporary files: an interrupted multipart upload is S3's only "temporary file" (its parts
 * are stored and billed, but no object exists). list_ex with WS_STORAGE_LIST_TMP lists them
 * (ListMultipartUploads, paginated) as "<key>?uploadId=<id>" with mtime = Initiated;
 * remove_tmp aborts one (AbortMultipartUpload). A server that does not implement the listing
 * (s3rver answers 501 NotImplemented) lists none; so do credentials that may not list them
 * (403, with a warning): the catalog lists them under backup/, and list or restore must not
 * fail for want of a permission only leftover collection needs.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "walship/log.h"
#include "walship/storage/s3_driver.h"

#define S3_DELETE_BATCH 1000
#define S3_UPLOAD_SEP   "?uploadId="

static void xml_escape(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '&':
            fputs("&amp;", f);
            break;
        case '<':
            fputs("&lt;", f);
            break;
        case '>':
            fputs("&gt;", f);
            break;
        case '"':
            fputs("&quot;", f);
            break;
        case '\'':
            fputs("&apos;", f);
            break;
        default:
            fputc(*s, f);
        }
}

/* One DeleteObjects request for keys[0..n). */
static int delete_batch(s3_storage *s, const char *const *keys, size_t n, ws_error *err)
{
    char *xml = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&xml, &len);
    if (!f)
        return ws_error_oom(err);
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>", f);
    for (size_t i = 0; i < n; i++) {
        fputs("<Object><Key>", f);
        fputs(s->prefix, f);
        xml_escape(f, keys[i]);
        fputs("</Key></Object>", f);
    }
    fputs("</Delete>", f);
    if (fclose(f) != 0 || !xml) {
        free(xml);
        return ws_error_oom(err);
    }
    unsigned char md5[16];
    unsigned int mdlen = 0;
    char b64[32];
    if (!EVP_Digest(xml, len, md5, &mdlen, EVP_md5(), NULL)) {
        free(xml);
        return ws_error_set(err, WS_EINTERNAL, "MD5 of a DeleteObjects body failed");
    }
    EVP_EncodeBlock((unsigned char *)b64, md5, (int)mdlen);
    ws_s3_op op;
    ws_s3_op_init(&op, "POST", NULL);
    if (ws_s3_op_query(&op, "delete", "") < 0 || ws_s3_op_header(&op, "content-md5", b64) < 0 ||
        ws_s3_op_header(&op, "content-type", "application/xml") < 0) {
        ws_s3_op_cleanup(&op);
        free(xml);
        return ws_error_oom(err);
    }
    op.body = xml;
    op.body_len = len;
    op.check_error_body = 0;
    int rc = ws_s3_op_run(&s->c, &op, err);
    if (rc == 0) {
        const char *body = ws_s3_op_body(&op, NULL);
        const char *e = body ? strstr(body, "<Error>") : NULL;
        if (e) {
            char key[1100] = "", code[128] = "", msg[300] = "";
            ws_s3_xml_text(e, "Key", key, sizeof key, NULL);
            ws_s3_xml_text(e, "Code", code, sizeof code, NULL);
            ws_s3_xml_text(e, "Message", msg, sizeof msg, NULL);
            int auth = strcmp(code, "AccessDenied") == 0;
            ws_error_set(err, auth ? WS_EAUTH : WS_EIO, "DeleteObjects in %s: %s refused: %s %s",
                         s->desc, key, code, msg);
            if (auth)
                ws_error_hint(err, "the key needs s3:DeleteObject on the repository's prefix");
            rc = -1;
        }
    }
    ws_s3_op_cleanup(&op);
    free(xml);
    return rc;
}

int ws_s3_drv_remove_many(ws_storage *st, const char *const *keys, size_t n, size_t *done,
                          ws_error *err)
{
    s3_storage *s = S(st);
    if (done)
        *done = 0;
    for (size_t i = 0; i < n; i++)
        if (check_key(keys[i], err) < 0)
            return -1;
    for (size_t off = 0; off < n; off += S3_DELETE_BATCH) {
        size_t k = n - off < S3_DELETE_BATCH ? n - off : S3_DELETE_BATCH;
        if (delete_batch(s, keys + off, k, err) < 0)
            return -1;
        if (done)
            *done = off + k;
    }
    return 0;
}

/* ---- multipart uploads never completed ---- */

/* Calls cb for each <Upload> of one page; returns 1 if cb asked to stop. */
static int uploads_page(s3_storage *s, const char *xml, ws_storage_list_cb cb, void *arg)
{
    size_t plen = strlen(s->prefix);
    const char *p = xml;
    while ((p = strstr(p, "<Upload>"))) {
        const char *end = strstr(p, "</Upload>");
        if (!end)
            break;
        char *item = strndup(p, (size_t)(end - p));
        p = end + 9;
        if (!item)
            continue;
        char key[1100], id[1100], when[64] = "", name[2300];
        if (ws_s3_xml_text(item, "Key", key, sizeof key, NULL) == 0 &&
            ws_s3_xml_text(item, "UploadId", id, sizeof id, NULL) == 0 &&
            strncmp(key, s->prefix, plen) == 0 && key[plen]) {
            ws_s3_xml_text(item, "Initiated", when, sizeof when, NULL);
            ws_storage_info info;
            memset(&info, 0, sizeof info);
            info.mtime = ws_s3_parse_iso_date(when);
            snprintf(name, sizeof name, "%s" S3_UPLOAD_SEP "%s", key + plen, id);
            if (cb(arg, name, &info)) {
                free(item);
                return 1;
            }
        }
        free(item);
    }
    return 0;
}

static int list_uploads(s3_storage *s, const char *prefix, ws_storage_list_cb cb, void *arg,
                        ws_error *err)
{
    char *fp = full_key(s, prefix ? prefix : "");
    char key_marker[1100] = "", id_marker[1100] = "";
    int rc = 0;
    if (!fp)
        return ws_error_oom(err);
    for (int page = 0; page < 100000; page++) {
        ws_s3_op op;
        ws_s3_op_init(&op, "GET", NULL);
        if (ws_s3_op_query(&op, "uploads", "") < 0 || ws_s3_op_query(&op, "prefix", fp) < 0 ||
            (key_marker[0] && (ws_s3_op_query(&op, "key-marker", key_marker) < 0 ||
                               ws_s3_op_query(&op, "upload-id-marker", id_marker) < 0))) {
            ws_s3_op_cleanup(&op);
            rc = ws_error_oom(err);
            break;
        }
        rc = ws_s3_op_run(&s->c, &op, err);
        if (rc < 0) {
            if (ws_s3_op_status(&op) == 501) {
                ws_log_debug("%s does not list multipart uploads (HTTP 501): none collected",
                             s->desc);
                ws_error_clear(err);
                rc = 0;
            } else if (ws_s3_op_status(&op) == 403) {
                /* list, restore and expire must not fail for a permission only the leftover
                 * collection needs */
                ws_log_warn("%s: the credentials may not list multipart uploads (HTTP 403): "
                            "unfinished uploads are not collected (grant "
                            "s3:ListBucketMultipartUploads and s3:AbortMultipartUpload)",
                            s->desc);
                ws_error_clear(err);
                rc = 0;
            }
            ws_s3_op_cleanup(&op);
            break;
        }
        const char *xml = ws_s3_op_body(&op, NULL);
        int stop = xml ? uploads_page(s, xml, cb, arg) : 0;
        char trunc[16] = "", nk[1100] = "", ni[1100] = "";
        if (xml) {
            ws_s3_xml_text(xml, "IsTruncated", trunc, sizeof trunc, NULL);
            ws_s3_xml_text(xml, "NextKeyMarker", nk, sizeof nk, NULL);
            ws_s3_xml_text(xml, "NextUploadIdMarker", ni, sizeof ni, NULL);
        }
        ws_s3_op_cleanup(&op);
        if (stop || strcmp(trunc, "true") != 0)
            break;
        if (!nk[0] || (strcmp(nk, key_marker) == 0 && strcmp(ni, id_marker) == 0)) {
            rc = ws_error_set(err, WS_EIO, "listing the multipart uploads of %s: no progress",
                              s->desc);
            break;
        }
        snprintf(key_marker, sizeof key_marker, "%s", nk);
        snprintf(id_marker, sizeof id_marker, "%s", ni);
    }
    free(fp);
    return rc;
}

int ws_s3_drv_list_ex(ws_storage *st, const char *prefix, unsigned flags, ws_storage_list_cb cb,
                      ws_storage_list_err_cb on_err, void *arg, ws_error *err)
{
    (void)on_err;
    if (flags & WS_STORAGE_LIST_TMP)
        return list_uploads(S(st), prefix, cb, arg, err);
    return st->ops->list(st, prefix, cb, arg, err);
}

int ws_s3_drv_remove_tmp(ws_storage *st, const char *name, ws_error *err)
{
    s3_storage *s = S(st);
    const char *sep = strstr(name, S3_UPLOAD_SEP);
    if (!sep || sep == name)
        return ws_error_set(err, WS_EINTERNAL, "not a multipart upload: \"%s\"", name);
    char key[1100];
    snprintf(key, sizeof key, "%.*s", (int)(sep - name), name);
    if (check_key(key, err) < 0)
        return -1;
    char *fk = full_key(s, key);
    if (!fk)
        return ws_error_oom(err);
    ws_s3_op op;
    ws_s3_op_init(&op, "DELETE", fk);
    free(fk);
    int rc = ws_s3_op_query(&op, "uploadId", sep + strlen(S3_UPLOAD_SEP)) < 0
                 ? ws_error_oom(err)
                 : ws_s3_op_run(&s->c, &op, err);
    if (rc < 0 && err && err->code == WS_ENOENT) { /* NoSuchUpload: already gone */
        ws_error_clear(err);
        rc = 0;
    }
    ws_s3_op_cleanup(&op);
    return rc;
}
