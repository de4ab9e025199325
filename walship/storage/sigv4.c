/* sigv4.c — AWS Signature Version 4 for S3 (see sigv4.h for the canonicalisation rules). */
#include "walship/storage/sigv4.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

char *ws_sigv4_encode(const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

typedef struct enc_pair {
    char *name, *value;
} enc_pair;

static int cmp_pair(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

char *ws_sigv4_query_string(const ws_sigv4_kv *q, size_t n)
{
    enc_pair *pairs = calloc(n ? n : 1, sizeof *pairs);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = NULL;
    int ok = pairs != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        pairs[i].name = ws_sigv4_encode(q[i].name, 0);
        pairs[i].value = ws_sigv4_encode(q[i].value ? q[i].value : "", 0);
        ok = pairs[i].name && pairs[i].value;
    }
    if (ok) {
        /* Sorting the encoded forms is what AWS specifies: byte order of what is sent. */
        qsort(pairs, n, sizeof *pairs, cmp_pair);
        f = open_memstream(&buf, &len);
        ok = f != NULL;
    }
    for (size_t i = 0; ok && i < n; i++)
        fprintf(f, "%s%s=%s", i ? "&" : "", pairs[i].name, pairs[i].value);
    if (f && fclose(f) != 0)
        ok = 0;
    for (size_t i = 0; pairs && i < n; i++) {
        free(pairs[i].name);
        free(pairs[i].value);
    }
    free(pairs);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

typedef struct canon_header {
    char *name;  /* lowercased */
    char *value; /* trimmed, inner spaces collapsed */
} canon_header;

static int cmp_header(const void *a, const void *b)
{
    return strcmp(((const canon_header *)a)->name, ((const canon_header *)b)->name);
}

static char *lower_dup(const char *s)
{
    char *d = strdup(s);
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

static char *trim_dup(const char *s)
{
    char *d = malloc(strlen(s) + 1), *o = d;
    if (!d)
        return NULL;
    while (*s == ' ' || *s == '\t')
        s++;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t') {
            if (o > d && o[-1] != ' ')
                *o++ = ' ';
        } else {
            *o++ = *s;
        }
    }
    while (o > d && o[-1] == ' ')
        o--;
    *o = '\0';
    return d;
}

static void free_headers(canon_header *h, size_t n)
{
    for (size_t i = 0; h && i < n; i++) {
        free(h[i].name);
        free(h[i].value);
    }
    free(h);
}

/* Sorted canonical headers; NULL on ENOMEM. */
static canon_header *canon_headers(const ws_sigv4_request *rq)
{
    canon_header *h = calloc(rq->nheaders ? rq->nheaders : 1, sizeof *h);
    if (!h)
        return NULL;
    for (size_t i = 0; i < rq->nheaders; i++) {
        h[i].name = lower_dup(rq->headers[i].name);
        h[i].value = trim_dup(rq->headers[i].value ? rq->headers[i].value : "");
        if (!h[i].name || !h[i].value) {
            free_headers(h, rq->nheaders);
            return NULL;
        }
    }
    qsort(h, rq->nheaders, sizeof *h, cmp_header);
    return h;
}

/* Writes "a;b;c" — the signed header list. */
static void put_signed_list(FILE *f, const canon_header *h, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? ";" : "", h[i].name);
}

static char *canonical(const ws_sigv4_request *rq, char **signed_list)
{
    canon_header *h = canon_headers(rq);
    char *path = ws_sigv4_encode(rq->path, 1);
    char *query = ws_sigv4_query_string(rq->query, rq->nquery);
    char *buf = NULL, *sl = NULL;
    size_t len = 0, sllen = 0;
    FILE *f = NULL, *fs = NULL;
    int ok = h && path && query && (f = open_memstream(&buf, &len)) &&
             (fs = open_memstream(&sl, &sllen));
    if (ok) {
        fprintf(f, "%s\n%s\n%s\n", rq->method, path, query);
        for (size_t i = 0; i < rq->nheaders; i++)
            fprintf(f, "%s:%s\n", h[i].name, h[i].value);
        fputc('\n', f);
        put_signed_list(f, h, rq->nheaders);
        fprintf(f, "\n%s", rq->payload_sha256);
        put_signed_list(fs, h, rq->nheaders);
    }
    if (f && fclose(f) != 0)
        ok = 0;
    if (fs && fclose(fs) != 0)
        ok = 0;
    free_headers(h, rq->nheaders);
    free(path);
    free(query);
    if (!ok || !signed_list)
        free(sl);
    if (!ok) {
        free(buf);
        return NULL;
    }
    if (signed_list)
        *signed_list = sl;
    return buf;
}

char *ws_sigv4_canonical_request(const ws_sigv4_request *rq)
{
    return canonical(rq, NULL);
}

void ws_sigv4_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

static void hmac(const void *key, size_t keylen, const char *msg, unsigned char out[32])
{
    unsigned int n = 32;
    HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)msg, strlen(msg), out, &n);
}

void ws_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

char *ws_sigv4_authorization(const ws_sigv4_request *rq, const ws_sigv4_creds *c)
{
    char *signed_list = NULL;
    char *creq = canonical(rq, &signed_list);
    if (!creq)
        return NULL;
    char date[9];
    snprintf(date, sizeof date, "%.8s", rq->amz_date);

    char creq_hash[65];
    ws_sigv4_sha256_hex(creq, strlen(creq), creq_hash);
    free(creq);

    char scope[160];
    snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, c->region, c->service);
    char sts[320];
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", rq->amz_date, scope, creq_hash);

    /* The signing key: HMAC chain from "AWS4" + secret. Wiped after use. */
    size_t slen = strlen(c->secret);
    unsigned char *k0 = malloc(slen + 4);
    if (!k0) {
        free(signed_list);
        return NULL;
    }
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, c->secret, slen);
    unsigned char k1[32], k2[32], k3[32], k4[32], sig[32];
    hmac(k0, slen + 4, date, k1);
    OPENSSL_cleanse(k0, slen + 4);
    free(k0);
    hmac(k1, 32, c->region, k2);
    hmac(k2, 32, c->service, k3);
    hmac(k3, 32, "aws4_request", k4);
    hmac(k4, 32, sts, sig);
    OPENSSL_cleanse(k1, 32);
    OPENSSL_cleanse(k2, 32);
    OPENSSL_cleanse(k3, 32);
    OPENSSL_cleanse(k4, 32);

    char sighex[65];
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        sighex[2 * i] = hex[sig[i] >> 4];
        sighex[2 * i + 1] = hex[sig[i] & 15];
    }
    sighex[64] = '\0';

    char *out = NULL;
    if (asprintf(&out, "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s",
                 c->access_key, scope, signed_list, sighex) < 0)
        out = NULL;
    free(signed_list);
    return out;
}
