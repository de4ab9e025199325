/* test_sigv4.c — the SigV4 signer against published vectors.
 *
 * Two sets, with two different example secrets (a classic trap):
 *  - the S3 documentation's examples: secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
 *    AKIAIOSFODNN7EXAMPLE, 20130524T000000Z, us-east-1, service s3;
 *  - the generic SigV4 test suite: secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
 *    AKIDEXAMPLE, 20150830T123600Z, us-east-1, service "service" — only its cases that do
 *    not normalise the path, since S3 never does.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/tap.h"
#include "walship/storage/sigv4.h"

#define S3_SECRET  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define GEN_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define S3_HOST    "examplebucket.s3.amazonaws.com"
#define S3_DATE    "20130524T000000Z"
#define GEN_DATE   "20150830T123600Z"

static const ws_sigv4_creds s3_creds = {"AKIAIOSFODNN7EXAMPLE", S3_SECRET, "us-east-1", "s3"};
static const ws_sigv4_creds gen_creds = {"AKIDEXAMPLE", GEN_SECRET, "us-east-1", "service"};

/* The 64 hex digits after "Signature=". */
static const char *sig_of(const char *auth)
{
    const char *p = auth ? strstr(auth, "Signature=") : NULL;
    return p ? p + 10 : "(none)";
}

static void check_sig(const ws_sigv4_request *rq, const ws_sigv4_creds *c, const char *want,
                      const char *name)
{
    char *auth = ws_sigv4_authorization(rq, c);
    is_str(sig_of(auth), want, "%s: signature", name);
    free(auth);
}

static void s3_vectors(void)
{
    /* GET Object with Range. */
    ws_sigv4_kv h1[] = {{"Host", S3_HOST},
                        {"Range", "bytes=0-9"},
                        {"x-amz-content-sha256", WS_SIGV4_EMPTY_SHA256},
                        {"x-amz-date", S3_DATE}};
    ws_sigv4_request r1 = {"GET", "/test.txt", NULL, 0, h1, 4, WS_SIGV4_EMPTY_SHA256, S3_DATE};
    char *creq = ws_sigv4_canonical_request(&r1);
    is_str(creq,
           "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
           "x-amz-content-sha256:" WS_SIGV4_EMPTY_SHA256 "\nx-amz-date:20130524T000000Z\n\n"
           "host;range;x-amz-content-sha256;x-amz-date\n" WS_SIGV4_EMPTY_SHA256,
           "GET with Range: canonical request");
    free(creq);
    char *auth = ws_sigv4_authorization(&r1, &s3_creds);
    is_str(auth,
           "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
           "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
           "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
           "GET with Range: Authorization header");
    free(auth);

    /* PUT Object: '$' in the key is encoded, Date and storage class are signed. */
    char body_hash[65];
    ws_sigv4_sha256_hex("Welcome to Amazon S3.", 21, body_hash);
    is_str(body_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
           "payload SHA-256");
    ws_sigv4_kv h2[] = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                        {"Host", S3_HOST},
                        {"x-amz-date", S3_DATE},
                        {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                        {"x-amz-content-sha256", body_hash}};
    ws_sigv4_request r2 = {"PUT", "/test$file.text", NULL, 0, h2, 5, body_hash, S3_DATE};
    check_sig(&r2, &s3_creds, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
              "PUT /test$file.text");

    /* GET Bucket lifecycle: a valueless parameter signs as "lifecycle=". */
    ws_sigv4_kv h3[] = {{"Host", S3_HOST},
                        {"x-amz-date", S3_DATE},
                        {"x-amz-content-sha256", WS_SIGV4_EMPTY_SHA256}};
    ws_sigv4_kv q3[] = {{"lifecycle", NULL}};
    ws_sigv4_request r3 = {"GET", "/", q3, 1, h3, 3, WS_SIGV4_EMPTY_SHA256, S3_DATE};
    check_sig(&r3, &s3_creds, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
              "GET ?lifecycle");

    /* List objects: parameters sorted (given out of order here). */
    ws_sigv4_kv q4[] = {{"prefix", "J"}, {"max-keys", "2"}};
    ws_sigv4_request r4 = {"GET", "/", q4, 2, h3, 3, WS_SIGV4_EMPTY_SHA256, S3_DATE};
    check_sig(&r4, &s3_creds, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
              "GET ?max-keys=2&prefix=J");
}

static void gen(const char *method, const char *path, const ws_sigv4_kv *q, size_t nq,
                const char *want, const char *name)
{
    ws_sigv4_kv h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", GEN_DATE}};
    ws_sigv4_request r = {method, path, q, nq, h, 2, WS_SIGV4_EMPTY_SHA256, GEN_DATE};
    check_sig(&r, &gen_creds, want, name);
}

static void generic_vectors(void)
{
    gen("GET", "/", NULL, 0, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        "get-vanilla");
    gen("POST", "/", NULL, 0, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        "post-vanilla");
    gen("GET", "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", NULL, 0,
        "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f", "get-unreserved");
    gen("GET", "/\xe1\x88\xb4", NULL, 0,
        "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85", "get-utf8");
    gen("GET", "/example space/", NULL, 0,
        "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741", "get-space");
    ws_sigv4_kv qk[] = {{"Param2", "value2"}, {"Param1", "value1"}};
    gen("GET", "/", qk, 2, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        "get-vanilla-query-order-key-case");
    ws_sigv4_kv qv[] = {{"Param1", "value2"}, {"Param1", "Value1"}};
    gen("GET", "/", qv, 2, "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1",
        "get-vanilla-query-order-value");
    ws_sigv4_kv qu[] = {{"\xe1\x88\xb4", "bar"}};
    gen("GET", "/", qu, 1, "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04",
        "get-vanilla-utf8-query");
    const char *unres = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    ws_sigv4_kv qr[] = {{unres, unres}};
    gen("GET", "/", qr, 1, "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197",
        "get-vanilla-query-unreserved");

    ws_sigv4_kv ht[] = {{"Host", "example.amazonaws.com"},
                        {"My-Header1", " value1"},
                        {"My-Header2", " \"a   b   c\""},
                        {"X-Amz-Date", GEN_DATE}};
    ws_sigv4_request rt = {"GET", "/", NULL, 0, ht, 4, WS_SIGV4_EMPTY_SHA256, GEN_DATE};
    check_sig(&rt, &gen_creds, "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
              "get-header-value-trim");
}

/* What S3 needs beyond the vectors: no normalisation, %2F in the query, valueless params. */
static void unnormalised(void)
{
    char *e = ws_sigv4_encode("wal/0000 0001/a+b$~", 1);
    is_str(e, "wal/0000%200001/a%2Bb%24~", "path encoding keeps '/'");
    free(e);
    e = ws_sigv4_encode("a/b", 0);
    is_str(e, "a%2Fb", "query encoding encodes '/'");
    free(e);

    ws_sigv4_kv q[] = {{"uploadId", "x/y=="}, {"uploads", NULL}, {"list-type", "2"}};
    char *qs = ws_sigv4_query_string(q, 3);
    is_str(qs, "list-type=2&uploadId=x%2Fy%3D%3D&uploads=", "query sorted, valueless = name=");
    free(qs);

    ws_sigv4_kv h[] = {{"Host", "h"}, {"x-amz-date", GEN_DATE}};
    ws_sigv4_request r = {"GET", "//a/./b/../c", NULL, 0, h, 2, WS_SIGV4_EMPTY_SHA256, GEN_DATE};
    char *creq = ws_sigv4_canonical_request(&r);
    ok(creq && strncmp(creq, "GET\n//a/./b/../c\n\n", 18) == 0,
       "path is not normalised (S3 keeps //, . and ..)");
    free(creq);

    /* A different secret must give a different signature (the control). */
    ws_sigv4_creds other = gen_creds;
    other.secret = "not-the-secret";
    char *a1 = ws_sigv4_authorization(&r, &gen_creds), *a2 = ws_sigv4_authorization(&r, &other);
    ok(a1 && a2 && strcmp(a1, a2) != 0, "signature depends on the secret");
    ok(a1 && !strstr(a1, GEN_SECRET), "the Authorization header never holds the secret");
    free(a1);
    free(a2);

    char d[17];
    ws_sigv4_amz_date(1369353600, d);
    is_str(d, "20130524T000000Z", "amz date format");
}

int main(void)
{
    s3_vectors();
    generic_vectors();
    unnormalised();
    return done_testing();
}
