/* test_wal.c — WAL names, segment arithmetic for every segment size, page header checks. */
#include "tests/unit/tap.h"
#include "walship/bytes.h"
#include "walship/wal.h"

#include <stdio.h>
#include <string.h>

static void make_header(unsigned char *p, unsigned magic, uint32_t tli, uint64_t pageaddr,
                        uint64_t sysid, uint32_t seg_size)
{
    memset(p, 0, 40);
    ws_put_le16(p, (uint16_t)magic);
    ws_put_le16(p + 2, 0x0002 | 0x0004);
    ws_put_le32(p + 4, tli);
    ws_put_le64(p + 8, pageaddr);
    ws_put_le64(p + 24, sysid);
    ws_put_le32(p + 32, seg_size);
    ws_put_le32(p + 36, 8192);
}

int main(void)
{
    plan_no_plan();
    ws_wal_name n;
    ws_error err;

    ok(ws_wal_parse_name("000000010000000A000000FF", &n, &err) == 0 && n.kind == WS_WAL_SEGMENT &&
           n.tli == 1 && n.log == 0xA && n.seg == 0xFF,
       "segment name parsed");
    ok(ws_wal_parse_name("00000002.history", &n, &err) == 0 && n.kind == WS_WAL_HISTORY &&
           n.tli == 2,
       "history file parsed");
    ok(ws_wal_parse_name("000000010000000000000002.00000028.backup", &n, &err) == 0 &&
           n.kind == WS_WAL_BACKUP && n.backup_off == 0x28,
       "backup history file parsed");
    ok(ws_wal_parse_name("000000010000000000000003.partial", &n, &err) == 0 &&
           n.kind == WS_WAL_PARTIAL && n.seg == 3,
       "partial segment parsed");
    const char *bad[] = {"",
                         "foo",
                         "00000001000000000000000",
                         "0000000100000000000000001",
                         "000000010000000000000001.gz",
                         "00000001000000000000000g",
                         "000000010000000000000001.0000002.backup",
                         "0000001.history",
                         "0000000a0000000000000001",
                         "../000000010000000000000001",
                         "000000000000000000000001",
                         "RECOVERYXLOG"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ok(ws_wal_parse_name(bad[i], &n, &err) < 0 && err.code == WS_EINVAL, "\"%s\" refused",
           bad[i]);
    ok(strstr(err.msg, "not a WAL file name") || strstr(err.msg, "timeline 0"),
       "message says what the name is not: %s", err.msg);

    /* segment math for every power of two from 1 MiB to 1 GiB */
    for (uint32_t sz = WS_WAL_SEG_MIN; sz && sz <= WS_WAL_SEG_MAX; sz <<= 1) {
        uint64_t per = ws_wal_segs_per_id(sz);
        ok(per * sz == UINT64_C(0x100000000), "segs_per_id(%u) = %llu", sz,
           (unsigned long long)per);
        uint64_t segno = per * 3 + per - 1; /* last segment of log id 3 */
        char name[25];
        ws_wal_format_segment(name, 7, segno, sz);
        ws_wal_name p;
        uint64_t back;
        ok(ws_wal_parse_name(name, &p, &err) == 0 && ws_wal_segno(&p, sz, &back) == 0 &&
               back == segno && p.log == 3 && p.tli == 7,
           "segment %s round-trips for size %u", name, sz);
        ok(ws_wal_lsn_segno(segno * sz + 12345, sz) == segno, "lsn → segno for size %u", sz);
        if (per < 0x100000000ull) {
            ws_wal_name impossible = p;
            impossible.seg = (uint32_t)per;
            ok(ws_wal_segno(&impossible, sz, &back) < 0, "seg %llu impossible for size %u",
               (unsigned long long)per, sz);
        }
    }
    ok(ws_wal_seg_size_valid(16u << 20) && !ws_wal_seg_size_valid(3u << 20) &&
           !ws_wal_seg_size_valid(512 * 1024) && !ws_wal_seg_size_valid(2ull << 30),
       "segment size validity");
    char name16[25];
    ws_wal_format_segment(name16, 1, 0x1FF, 16u << 20);
    is_str(name16, "0000000100000001000000FF", "16 MiB naming matches PostgreSQL");

    uint64_t lsn;
    ok(ws_wal_parse_lsn("16/B374D848", &lsn) == 0 && lsn == 0x16B374D848ull, "LSN parsed");
    ok(ws_wal_parse_lsn("16B374D848", &lsn) < 0 && ws_wal_parse_lsn("1/", &lsn) < 0 &&
           ws_wal_parse_lsn("x/1", &lsn) < 0,
       "bad LSNs refused");

    /* headers: the magic of every supported major (XLOG_PAGE_MAGIC in each release's
     * src/include/access/xlog_internal.h) accepted, at every segment size initdb allows */
    const unsigned magics[] = {0xD106, 0xD10D, 0xD110, 0xD113, 0xD116, 0xD118};
    const int versions[] = {13, 14, 15, 16, 17, 18};
    unsigned char page[40];
    ws_wal_parse_name("000000010000000000000003", &n, &err);
    ok(WS_PG_MAJOR_MIN == 13 && WS_PG_MAJOR_MAX == 18, "supported majors: 13 to 18");
    for (int i = 0; i < 6; i++) {
        int all_sizes = 1;
        for (uint32_t mib = 1; mib <= 1024; mib *= 2) {
            make_header(page, magics[i], 1, 3ull * mib << 20, 42, mib << 20);
            ws_wal_header h;
            if (ws_wal_check_header(page, 40, &n, (uint64_t)mib << 20, &h, &err) != 0 ||
                h.pg_version != versions[i] || h.sysid != 42 || h.seg_size != mib << 20) {
                all_sizes = 0;
                diag("magic 0x%04X, %u MiB segments: %s", magics[i], mib, err.msg);
            }
        }
        ok(all_sizes && ws_wal_magic_version((uint16_t)magics[i]) == versions[i] &&
               ws_wal_version_magic(versions[i]) == magics[i],
           "magic 0x%04X is PostgreSQL %d, segments of 1 MiB to 1 GiB", magics[i], versions[i]);
    }
    /* majors before 13: known by name, refused by name */
    make_header(page, 0xD101, 1, 3u << 20, 42, 1u << 20);
    ok(ws_wal_check_header(page, 40, &n, 1u << 20, NULL, &err) < 0 &&
           strstr(err.msg, "WAL of PostgreSQL 12 (magic 0xD101)") &&
           strstr(err.msg, "supports PostgreSQL 13 to 18"),
       "PostgreSQL 12 WAL refused: %s", err.msg);
    make_header(page, 0xD098, 1, 3u << 20, 42, 1u << 20);
    ok(ws_wal_check_header(page, 40, &n, 1u << 20, NULL, &err) < 0 &&
           strstr(err.msg, "WAL of PostgreSQL 11"),
       "PostgreSQL 11 WAL refused: %s", err.msg);
    ok(ws_wal_version_magic(19) == 0 && ws_wal_magic_version(0xD119) == 0,
       "no magic known beyond 18");
    make_header(page, 0xD10F, 1, 3u << 20, 42, 1u << 20);
    ok(ws_wal_check_header(page, 40, &n, 1u << 20, NULL, &err) < 0 && strstr(err.msg, "magic"),
       "unknown magic refused: %s", err.msg);
    make_header(page, 0xD110, 1, 3u << 20, 42, 1u << 20);
    page[2] = 0;
    ok(ws_wal_check_header(page, 40, &n, 1u << 20, NULL, &err) < 0 &&
           strstr(err.msg, "long header"),
       "missing XLP_LONG_HEADER refused");
    make_header(page, 0xD110, 1, 3u << 20, 42, 1u << 20);
    ok(ws_wal_check_header(page, 40, &n, 8u << 20, NULL, &err) < 0 &&
           strstr(err.msg, "not a complete WAL segment"),
       "truncated/extended file refused: %s", err.msg);
    make_header(page, 0xD110, 1, 4u << 20, 42, 1u << 20);
    ok(ws_wal_check_header(page, 40, &n, 1u << 20, NULL, &err) < 0 &&
           strstr(err.msg, "page address"),
       "pageaddr of another segment refused: %s", err.msg);
    make_header(page, 0xD110, 1, 3u << 24, 42, 16u << 20);
    ok(ws_wal_check_header(page, 40, &n, 16u << 20, NULL, &err) == 0, "16 MiB segment 3 accepted");
    make_header(page, 0xD110, 1, 3u << 20, 42, 3u << 20);
    ok(ws_wal_check_header(page, 40, &n, 3u << 20, NULL, &err) < 0, "3 MiB segment size refused");
    make_header(page, 0xD110, 2, 3u << 20, 42, 1u << 20);
    ok(ws_wal_check_header(page, 40, &n, 1u << 20, NULL, &err) < 0 && strstr(err.msg, "timeline"),
       "header timeline beyond the name's refused");
    ws_wal_parse_name("000000020000000000000003", &n, &err);
    make_header(page, 0xD110, 1, 3u << 20, 42, 1u << 20);
    ok(ws_wal_check_header(page, 40, &n, 1u << 20, NULL, &err) == 0,
       "first segment of a new timeline may carry the old timeline");
    ok(ws_wal_check_header(page, 20, &n, 20, NULL, &err) < 0, "a 20-byte file refused");
    return done_testing();
}
