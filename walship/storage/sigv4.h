/*
 * sigv4.h — AWS Signature Version 4, as S3 wants it, on OpenSSL.
 *
 * We sign ourselves instead of using CURLOPT_AWS_SIGV4 because curl 7.88 gets S3 wrong
 * (no x-amz-content-sha256, unsorted query, raw path, signs Expect:).
 *
 * Canonicalisation follows S3, not the generic SigV4 suite: the path is URI-encoded once
 * and never normalised ("//", "." and ".." stay as they are), '/' is kept in the path and
 * encoded as %2F in the query; the query is sorted by encoded name then value and a
 * valueless parameter is written "name="; header names are lowercased, values trimmed with
 * inner runs of spaces collapsed, and the list sorted.
 *
 * The signer signs exactly the headers it is given: the S3 layer always passes host,
 * x-amz-date, x-amz-content-sha256 and every x-amz-* / if-none-match / range it sends.
 * Nothing here logs; the secret only ever enters an HMAC key.
 */
#ifndef WS_SIGV4_H
#define WS_SIGV4_H

#include <stddef.h>
#include <time.h>

/* The SHA-256 of an empty body, which every bodiless request carries. */
#define WS_SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct ws_sigv4_kv {
    const char *name;
    const char *value; /* NULL or "" for a valueless query parameter */
} ws_sigv4_kv;

typedef struct ws_sigv4_creds {
    const char *access_key;
    const char *secret;
    const char *region;  /* "us-east-1" */
    const char *service; /* "s3" */
} ws_sigv4_creds;

typedef struct ws_sigv4_request {
    const char *method;
    const char *path;         /* raw (not encoded), starting with '/' */
    const ws_sigv4_kv *query; /* raw names and values, any order */
    size_t nquery;
    const ws_sigv4_kv *headers; /* every header to sign, names in any case */
    size_t nheaders;
    const char *payload_sha256; /* lowercase hex */
    const char *amz_date;       /* "YYYYMMDDTHHMMSSZ", the x-amz-date header's value */
} ws_sigv4_request;

/* UriEncode: every byte but A-Z a-z 0-9 - . _ ~ becomes %XX (uppercase); '/' is kept when
 * keep_slash. Returns a malloc'd string, NULL when out of memory. */
char *ws_sigv4_encode(const char *s, int keep_slash);

/* The canonical query string ("a=1&b=&c=%2F"), which is also what the URL should carry so
 * that what is signed is what is sent. "" when n is 0. malloc'd; NULL on ENOMEM. */
char *ws_sigv4_query_string(const ws_sigv4_kv *q, size_t n);

/* The canonical request (for tests and debugging; it holds no secret). malloc'd. */
char *ws_sigv4_canonical_request(const ws_sigv4_request *rq);

/* The Authorization header's value:
 * "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,
 *  SignedHeaders=host;..., Signature=<64 hex>". malloc'd; NULL on ENOMEM. */
char *ws_sigv4_authorization(const ws_sigv4_request *rq, const ws_sigv4_creds *c);

/* Lowercase hex SHA-256 of len bytes. */
void ws_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* t formatted as x-amz-date wants it (UTC, "20130524T000000Z"). */
void ws_sigv4_amz_date(time_t t, char out[17]);

#endif
