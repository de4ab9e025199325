/* fuzz_pin.c — the two small text objects expire and list read from every backup: the pin
 * (backup/<id>/walship.pin, ws_pin_get) and the backup lock (backup/<id>/walship.lock,
 * ws_backup_lock_read, then ws_backup_lock_live), read through a real posix repository in a
 * private temporary directory (removed at exit). The input is stored as both objects.
 * Invariants: a pin's note is one line of at most WS_PIN_NOTE_MAX bytes; a lock that reads
 * has a NUL-terminated host and a positive heartbeat. (The manifest expire reads,
 * ws_manifest_read, is fuzz_manifest's parser stage.)
 *
 * Seeds: FUZZ_MKSEEDS=DIR build/fuzz/fuzz_pin writes a pin made by ws_pin_set and a lock
 * made by ws_backup_lock_take into DIR and exits. */
#include "tests/fuzz/fuzz.h"
#include "walship/repo/lock.h"
#include "walship/repo/pin.h"

#include <ftw.h>

#define FUZZ_PIN_ID "20261202T000000Z-fuzz"

static char fuzz_pin_dir[64];

static int fuzz_pin_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}
static void fuzz_pin_cleanup(void)
{
    if (fuzz_pin_dir[0])
        nftw(fuzz_pin_dir, fuzz_pin_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static ws_repo *fuzz_pin_repo(void)
{
    static ws_repo *r;
    if (!r) {
        snprintf(fuzz_pin_dir, sizeof fuzz_pin_dir, "/tmp/walship-fuzz-pin.XXXXXX");
        if (!mkdtemp(fuzz_pin_dir))
            abort();
        atexit(fuzz_pin_cleanup);
        char d[128];
        snprintf(d, sizeof d, "%s/backup", fuzz_pin_dir);
        mkdir(d, 0700);
        snprintf(d, sizeof d, "%s/backup/" FUZZ_PIN_ID, fuzz_pin_dir);
        mkdir(d, 0700);
        ws_storage_config cfg = {.url = fuzz_pin_dir, .s3_verify_tls = 1};
        ws_error err;
        if (ws_repo_open(&cfg, &r, &err) < 0) {
            fprintf(stderr, "fuzz_pin: %s\n", err.msg);
            abort();
        }
    }
    return r;
}

static void fuzz_pin_store(const char *name, const uint8_t *data, size_t size)
{
    char path[160];
    snprintf(path, sizeof path, "%s/backup/" FUZZ_PIN_ID "/%s", fuzz_pin_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ws_repo *r = fuzz_pin_repo();
    fuzz_pin_store(WS_PIN_NAME, data, size);
    fuzz_pin_store(WS_BACKUP_LOCK_NAME, data, size);
    ws_error err;
    ws_pin pin;
    if (ws_pin_get(r, FUZZ_PIN_ID, &pin, &err) == 0) {
        size_t n = strnlen(pin.note, sizeof pin.note);
        if (n > WS_PIN_NOTE_MAX || memchr(pin.note, '\n', n))
            abort();
    }
    ws_backup_lock_info info;
    if (ws_backup_lock_read(r, FUZZ_PIN_ID, &info, &err) == 0) {
        if (strnlen(info.host, sizeof info.host) == sizeof info.host || info.heartbeat <= 0)
            abort();
        (void)ws_backup_lock_live(&info, ws_repo_wall_time(), WS_BACKUP_LOCK_STALE);
    }
    return 0;
}

/* ---- seed-making mode ---- */

static void fuzz_pin_copy(const char *name, const char *dir, const char *seed)
{
    char from[160], to[4096], buf[4096];
    snprintf(from, sizeof from, "%s/backup/" FUZZ_PIN_ID "/%s", fuzz_pin_dir, name);
    snprintf(to, sizeof to, "%s/%s", dir, seed);
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    size_t n = in ? fread(buf, 1, sizeof buf, in) : 0;
    if (!in || !out || n == 0 || fwrite(buf, 1, n, out) != n || fclose(out) != 0) {
        fprintf(stderr, "fuzz_pin: cannot make seed %s from %s\n", to, from);
        exit(1);
    }
    fclose(in);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *dir = getenv("FUZZ_MKSEEDS");
    if (!dir || !*dir)
        return 0;
    ws_repo *r = fuzz_pin_repo();
    ws_error err;
    if (ws_pin_set(r, FUZZ_PIN_ID, "kept for the audit\nof 2026", &err) < 0)
        goto fail;
    fuzz_pin_copy(WS_PIN_NAME, dir, "pin-note");
    if (ws_pin_set(r, FUZZ_PIN_ID, NULL, &err) < 0)
        goto fail;
    fuzz_pin_copy(WS_PIN_NAME, dir, "pin-no-note");
    ws_storage_config cfg = {.url = fuzz_pin_dir, .s3_verify_tls = 1};
    ws_backup_lock *l;
    if (ws_backup_lock_take(&cfg, 1, FUZZ_PIN_ID, &l, &err) < 0)
        goto fail;
    fuzz_pin_copy(WS_BACKUP_LOCK_NAME, dir, "lock");
    ws_backup_lock_release(l);
    ws_repo_free(r);
    exit(0);
fail:
    fprintf(stderr, "fuzz_pin: %s\n", err.msg);
    exit(1);
}
