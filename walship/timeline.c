/* timeline.c — timeline history files (timeline.h). */
#include "walship/timeline.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_MAX 16384

int ws_tl_history_parse(uint32_t tli, const char *text, size_t len, ws_tl_history *h, ws_error *err)
{
    memset(h, 0, sizeof *h);
    h->tli = tli;
    char *buf = malloc(len + 1);
    if (!buf)
        return ws_error_oom(err);
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *save = NULL;
    for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (isspace((unsigned char)*line))
            line++;
        if (!*line || *line == '#')
            continue;
        unsigned long parent;
        char lsn[32];
        if (sscanf(line, "%lu %31s", &parent, lsn) != 2 || h->n == WS_TL_MAX_ANCESTORS ||
            ws_wal_parse_lsn(lsn, &h->anc[h->n].end) < 0) {
            ws_error_set(err, WS_ECORRUPT, "malformed line in %08" PRIX32 ".history: %.60s", tli,
                         line);
            free(buf);
            return -1;
        }
        h->anc[h->n++].tli = (uint32_t)parent;
    }
    free(buf);
    return 0;
}

int ws_tl_history_load(ws_repo *r, uint32_t tli, ws_tl_history *h, ws_error *err)
{
    memset(h, 0, sizeof *h);
    h->tli = tli;
    if (tli <= 1)
        return 0;
    char name[32], key[128];
    snprintf(name, sizeof name, "%08" PRIX32 ".history", tli);
    ws_wal_name wn;
    if (ws_wal_parse_name(name, &wn, err) < 0 || ws_repo_wal_key(&wn, key, sizeof key) < 0)
        return -1;
    ws_stage *m = ws_stage_mem_sink_new(HISTORY_MAX, "timeline history file");
    if (!m)
        return ws_error_oom(err);
    if (ws_repo_obj_read(r, key, m, NULL, err) < 0) {
        ws_stage_free(m);
        if (err->code == WS_ENOENT)
            ws_error_hint(err,
                          "timeline %" PRIu32 " is not in the repository; check "
                          "--target-timeline, or push its history file",
                          tli);
        return -1;
    }
    size_t len;
    const char *text = ws_stage_mem_data(m, &len);
    int rc = ws_tl_history_parse(tli, text, len, h, err);
    ws_stage_free(m);
    return rc;
}

int ws_tl_history_has(const ws_tl_history *h, uint32_t tli, uint64_t *end)
{
    if (h->tli == tli) {
        if (end)
            *end = UINT64_MAX;
        return 1;
    }
    for (int i = 0; i < h->n; i++)
        if (h->anc[i].tli == tli) {
            if (end)
                *end = h->anc[i].end;
            return 1;
        }
    return 0;
}

const ws_tl_history *ws_tl_choose(const ws_tl_history *hist, int n, uint32_t cur, uint64_t from,
                                  uint32_t seg_size)
{
    const ws_tl_history *best = NULL;
    for (int i = 0; i < n; i++) {
        const ws_tl_history *h = &hist[i];
        uint64_t end;
        if (h->tli == cur || !ws_tl_history_has(h, cur, &end) ||
            ws_wal_lsn_segno(end, seg_size) <= from)
            continue;
        if (!best || h->tli > best->tli)
            best = h;
    }
    return best;
}

uint32_t ws_tl_segment_tli(const ws_tl_history *h, uint32_t cur, uint64_t segno, uint32_t seg_size)
{
    if (!h || h->tli == cur)
        return cur;
    int k = 0;
    while (k < h->n && h->anc[k].tli != cur)
        k++;
    uint32_t tli = cur;
    for (int j = k + 1; j <= h->n; j++) {
        /* the timeline after anc[j-1] begins where anc[j-1] was left */
        if (ws_wal_lsn_segno(h->anc[j - 1].end, seg_size) > segno)
            break;
        tli = j < h->n ? h->anc[j].tli : h->tli;
    }
    return tli;
}
