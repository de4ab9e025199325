/* test_repo.c — the posix driver's atomicity and modes, and objects written and read back
 * through the repository layer (lz4 and none), with corruption detected. */
#include "tests/unit/tap.h"
#include "walship/repo/repo.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[] = "/tmp/walship-test-repo-XXXXXX";

static int count_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)key;
    (void)info;
    (*(int *)arg)++;
    return 0;
}

static int dir_entries(const char *path)
{
    DIR *d = opendir(path);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

static mode_t mode_of(const char *rel)
{
    char p[512];
    struct stat st;
    snprintf(p, sizeof p, "%s/%s", root, rel);
    return stat(p, &st) == 0 ? st.st_mode & 07777 : 0;
}

static void flip_byte(const char *rel, long off)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    int fd = open(p, O_RDWR);
    unsigned char c;
    pread(fd, &c, 1, off);
    c ^= 0x01;
    pwrite(fd, &c, 1, off);
    close(fd);
}

int main(void)
{
    plan_no_plan();
    if (!mkdtemp(root))
        bail_out("mkdtemp");
    umask(022);
    ws_error err;
    ws_storage_config sc = {.url = root};
    ws_repo *repo;
    ok(ws_repo_open(&sc, &repo, &err) == 0, "open posix repository");
    ws_storage *s = ws_repo_storage(repo);

    /* invisible until commit; abort leaves nothing */
    ws_storage_writer *w;
    ok(ws_storage_open_write(s, "a/b/obj", WS_STORAGE_WRITE_EXCL, &w, &err) == 0, "open write");
    ws_storage_write(w, "hello world", 11, &err);
    ws_storage_info info;
    ok(ws_storage_stat(s, "a/b/obj", &info, &err) < 0 && err.code == WS_ENOENT,
       "not visible before commit");
    int n = 0;
    ws_storage_list(s, "", count_cb, &n, &err);
    is_int(n, 0, "temporary file not listed");
    ok(ws_storage_patch(w, 0, "J", 1, &err) == 0, "patch");
    ok(ws_storage_writer_commit(w, NULL, &err) == 0, "commit");
    ok(ws_storage_stat(s, "a/b/obj", &info, &err) == 0 && info.size == 11, "visible after");
    char *buf;
    size_t len;
    ok(ws_storage_get_small(s, "a/b/obj", 100, &buf, &len, &err) == 0 && len == 11 &&
           memcmp(buf, "Jello world", 11) == 0,
       "contents, patched");
    free(buf);
    is_int(mode_of("a/b/obj"), 0600, "object file is 0600");
    is_int(mode_of("a"), 0700, "directories are 0700");
    is_int(mode_of("a/b"), 0700, "nested directory 0700");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/a/b", root);
    is_int(dir_entries(dir), 1, "no temporary left beside the object");

    ok(ws_storage_open_write(s, "a/b/obj", WS_STORAGE_WRITE_EXCL, &w, &err) == 0, "second writer");
    ws_storage_write(w, "other", 5, &err);
    ok(ws_storage_writer_commit(w, NULL, &err) < 0 && err.code == WS_EEXIST,
       "create-only-if-absent refuses an existing key");
    ok(ws_storage_get_small(s, "a/b/obj", 100, &buf, &len, &err) == 0 && len == 11,
       "existing object untouched");
    free(buf);
    is_int(dir_entries(dir), 1, "failed commit leaves no temporary");

    ok(ws_storage_open_write(s, "a/b/gone", 0, &w, &err) == 0, "writer to abort");
    ws_storage_write(w, "xyz", 3, &err);
    ws_storage_writer_abort(w);
    is_int(dir_entries(dir), 1, "abort leaves nothing");

    ws_storage_reader *r;
    ok(ws_storage_open_read(s, "a/b/obj", 6, 3, &r, &err) == 0, "ranged read");
    char rb[16];
    ok(ws_storage_read_full(r, rb, sizeof rb, &len, &err) == 0 && len == 3 &&
           memcmp(rb, "wor", 3) == 0,
       "range honoured");
    ws_storage_reader_close(r);
    ok(ws_storage_open_read(s, "nope", 0, 0, &r, &err) < 0 && err.code == WS_ENOENT,
       "absent is WS_ENOENT");
    ok(ws_storage_open_read(s, "../etc/passwd", 0, 0, &r, &err) < 0, "escaping key refused");
    ok(!ws_storage_key_valid("/abs") && !ws_storage_key_valid("a/../b") &&
           !ws_storage_key_valid("a//b") && !ws_storage_key_valid("a/") &&
           ws_storage_key_valid("wal/x"),
       "key validation");
    ws_storage_put_small(s, "a/c", 0, "1", 1, NULL, &err);
    ws_storage_put_small(s, "b/d", 0, "1", 1, NULL, &err);
    n = 0;
    ws_storage_list(s, "a/", count_cb, &n, &err);
    is_int(n, 2, "list by prefix");
    ok(ws_storage_remove(s, "a/c", &err) == 0 && ws_storage_remove(s, "a/c", &err) == 0,
       "remove, and remove of an absent key succeeds");

    /* objects through the repository layer */
    size_t big = 3 * 1024 * 1024 + 17;
    unsigned char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (unsigned char)((i / 1000) * 7 + (i % 13 == 0 ? i : 0));
    const ws_codec codecs[] = {WS_CODEC_LZ4, WS_CODEC_NONE};
    for (int ci = 0; ci < 2; ci++) {
        char key[64];
        snprintf(key, sizeof key, "obj/%s", ws_codec_name(codecs[ci]));
        ws_repo_obj_writer *ow;
        ws_objhdr hdr, rh;
        ws_repo_put_result res;
        ok(ws_repo_obj_create(&repo, 1, key, WS_OBJ_DATA, codecs[ci], 1, big, &ow, &err) == 0,
           "%s: create", key);
        for (size_t off = 0; off < big; off += 100000)
            ws_repo_obj_write(ow, data + off, big - off < 100000 ? big - off : 100000, &err);
        ok(ws_repo_obj_commit(ow, &hdr, &res, &err) == 0 && res.status == WS_PUT_STORED &&
               hdr.length == big,
           "%s: stored", key);
        ok(ws_repo_obj_header(repo, key, &rh, &err) == 0 &&
               memcmp(rh.sha256, hdr.sha256, 32) == 0 && rh.codec == codecs[ci],
           "%s: checksum reachable without reading the payload", key);

        char out[] = "/tmp/walship-test-out-XXXXXX";
        int fd = mkstemp(out);
        ws_stage *sink = ws_stage_fd_sink_new(fd, out);
        ok(ws_repo_obj_read(repo, key, sink, &rh, &err) == 0, "%s: read back", key);
        ws_stage_free(sink);
        unsigned char *back = malloc(big + 1);
        ssize_t got = pread(fd, back, big + 1, 0);
        ok(got == (ssize_t)big && memcmp(back, data, big) == 0, "%s: byte-identical", key);
        free(back);

        /* the same object again: identical; different contents: mismatch */
        ws_repo_obj_create(&repo, 1, key, WS_OBJ_DATA, codecs[ci], 1, big, &ow, &err);
        ws_repo_obj_write(ow, data, big, &err);
        ok(ws_repo_obj_commit(ow, NULL, &res, &err) == 0 && res.status == WS_PUT_IDENTICAL,
           "%s: identical re-push succeeds", key);
        ws_repo_obj_create(&repo, 1, key, WS_OBJ_DATA, codecs[ci], 1, 0, &ow, &err);
        ws_repo_obj_write(ow, data, big - 1, &err);
        ok(ws_repo_obj_commit(ow, NULL, &res, &err) < 0 && err.code == WS_EMISMATCH &&
               strstr(err.msg, "different contents"),
           "%s: different contents refused: %.120s", key, err.msg);

        /* corruption in the payload */
        flip_byte(key, WS_OBJHDR_SIZE + 5000);
        ftruncate(fd, 0);
        sink = ws_stage_fd_sink_new(fd, out);
        ok(ws_repo_obj_read(repo, key, sink, NULL, &err) < 0 && err.code == WS_ECORRUPT,
           "%s: one flipped payload byte detected: %.120s", key, err.msg);
        ws_stage_free(sink);
        close(fd);
        unlink(out);
    }
    /* truncated object */
    ws_repo_obj_writer *ow;
    ws_repo_obj_create(&repo, 1, "obj/trunc", WS_OBJ_DATA, WS_CODEC_LZ4, 1, big, &ow, &err);
    ws_repo_obj_write(ow, data, big, &err);
    ws_repo_obj_commit(ow, NULL, NULL, &err);
    char p[512];
    snprintf(p, sizeof p, "%s/obj/trunc", root);
    struct stat st;
    stat(p, &st);
    truncate(p, st.st_size - 100);
    ws_stage *null_sink = ws_stage_sha256_new(NULL);
    ok(ws_repo_obj_read(repo, "obj/trunc", null_sink, NULL, &err) < 0 && err.code == WS_ECORRUPT,
       "truncated object detected: %s", err.msg);
    ws_stage_free(null_sink);

    /* identity */
    ws_repo_identity id = {1, 1234, 15, 1 << 24}, got;
    ok(ws_repo_identity_get(repo, &got, &err) < 0 && err.code == WS_ENOENT, "no identity yet");
    ok(ws_repo_identity_ensure(repo, &id, &err) == 0, "identity created");
    ws_repo_free(repo);
    ws_repo_open(&sc, &repo, &err);
    ok(ws_repo_identity_get(repo, &got, &err) == 0 && got.sysid == 1234 && got.pg_version == 15 &&
           got.seg_size == 1 << 24 && got.format == 1,
       "identity read back");
    id.sysid = 999;
    ok(ws_repo_identity_ensure(repo, &id, &err) < 0 && err.code == WS_EMISMATCH &&
           strstr(err.msg, "1234") && strstr(err.msg, "999"),
       "another cluster refused, both ids named");
    ws_repo_free(repo);
    free(data);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    system(cmd);
    return done_testing();
}
