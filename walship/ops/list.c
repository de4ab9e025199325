/*
 * list.c — `walship list [--json]`: what the repository holds. Backups are those with a
 * manifest (a backup without one never finished and is not restorable: each is listed as
 * incomplete, with what it occupies; one that cannot be read is named and makes list exit 1,
 * without hiding the others); the WAL archive is
 * summarised per timeline with its gaps, since a gap between a backup's stop segment and the
 * recovery target is where point-in-time recovery would stop. Segments push dropped under
 * push-queue-max (gap records, docs/queue-max.md) are shown as such, apart from segments that
 * are simply missing; a segment stored after all is not counted as dropped.
 *
 * A repository without walship.repo (missing, empty — an unmounted mount point, a wrong
 * bucket or prefix — or one whose identity was removed) is a failure, never "no backups":
 * monitoring reads exit 0 as healthy. Temporary files of interrupted writes are counted as
 * leftovers.
 *
 * The JSON shape is a stable interface, documented in docs/basebackup.md.
 */
#include "walship/commands.h"
#include "walship/exit.h"
#include "walship/ops/expire.h"
#include "walship/ops/ops.h"
#include "walship/ops/expire_plan.h"
#include "walship/repo/catalog.h"
#include "walship/repo/catchup.h"
#include "walship/repo/lock.h"
#include "walship/repo/open.h"
#include "walship/repo/pin.h"
#include "walship/repo/summary.h"
#include "walship/log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- output ---- */

/* What the output says besides the WAL. */
typedef struct listing {
    const char *repo;
    const ws_catalog *cat;
    uint64_t tmp_files, tmp_bytes; /* the driver's temporary files, the whole repository */
    int number, nrepos;            /* 1-based; how many repositories are listed */
    const unsigned *keep;          /* cat->n rules keeping each backup; NULL: no policy */
    unsigned *present;             /* cat->n masks of the repositories holding each backup */
    char **notes;                  /* cat->n pin notes (NULL: not pinned or unread) */
    /* repoN-mode = catch-up: its backlog behind the source (repository number source) */
    int catchup, source, backlog_known;
    uint64_t backlog_files, backlog_bytes;
    char backlog_oldest[128];
} listing;

/* Pins, the rules that keep the backup, and where else it is. */
static void print_json_backup_extra(FILE *f, const listing *L, int i)
{
    fprintf(f, ",\"pinned\":%s", L->cat->pinned[i] ? "true" : "false");
    if (L->cat->pinned[i]) {
        fprintf(f, ",\"pin_note\":");
        ws_ops_json_str(f, L->notes && L->notes[i] ? L->notes[i] : "");
    }
    fprintf(f, ",\"kept_by\":");
    if (!L->keep) {
        fprintf(f, "null");
    } else {
        fputc('[', f);
        for (int r = 0, n = 0; r < WS_KEEP_RULES; r++)
            if (L->keep[i] & (1u << r))
                fprintf(f, "%s\"%s\"", n++ ? "," : "", ws_keep_rule_name(r));
        fputc(']', f);
    }
    fprintf(f, ",\"repositories\":[");
    for (int r = 0, n = 0; r < L->nrepos; r++)
        if (L->present[i] & (1u << r))
            fprintf(f, "%s%d", n++ ? "," : "", r + 1);
    fputc(']', f);
}

static void print_text_backup_extra(FILE *f, const listing *L, int i)
{
    if (L->cat->pinned[i])
        fprintf(f, "  %-20s pinned%s%s\n", "",
                L->notes && L->notes[i] && L->notes[i][0] ? ": " : "",
                L->notes && L->notes[i] ? L->notes[i] : "");
    if (L->keep) {
        char rules[160] = "";
        size_t o = 0;
        for (int r = 0; r < WS_KEEP_RULES; r++)
            if (L->keep[i] & (1u << r))
                o += (size_t)snprintf(rules + o, o < sizeof rules ? sizeof rules - o : 0, "%s%s",
                                      o ? ", " : "", ws_keep_rule_name(r));
        fprintf(f, "  %-20s %s\n", "",
                L->keep[i] ? rules : "EXPIRED: the next walship expire removes it");
    }
    unsigned all = L->nrepos >= 32 ? ~0u : (1u << L->nrepos) - 1;
    if (L->nrepos > 1 && (L->present[i] & all) != all) {
        fprintf(f, "  %-20s only in repository", "");
        for (int r = 0; r < L->nrepos; r++)
            if (L->present[i] & (1u << r))
                fprintf(f, " %d", r + 1);
        fprintf(f, "; missing from");
        for (int r = 0; r < L->nrepos; r++)
            if (!(L->present[i] & (1u << r)))
                fprintf(f, " %d", r + 1);
        fprintf(f, "\n");
    }
}

static void print_json_extra(FILE *f, const listing *L)
{
    const ws_catalog *c = L->cat;
    fprintf(f, ",\"incomplete_backup_details\":[");
    for (int i = 0; i < c->nincomplete; i++) {
        const ws_catalog_incomplete *x = &c->incomplete_info[i];
        fprintf(f, "%s{\"id\":", i ? "," : "");
        ws_ops_json_str(f, c->incomplete[i]);
        fprintf(f,
                ",\"started_marker\":%s,\"objects\":%" PRIu64 ",\"stored_size\":%" PRIu64
                ",\"temporary_files\":%" PRIu64 ",\"temporary_bytes\":%" PRIu64 "}",
                x->started ? "true" : "false", x->objects, x->bytes, x->tmp_files, x->tmp_bytes);
    }
    fprintf(f, "],\"unreadable_backups\":[");
    for (int i = 0; i < c->nunreadable; i++) {
        fprintf(f, "%s{\"id\":", i ? "," : "");
        ws_ops_json_str(f, c->unreadable[i].id);
        fprintf(f, ",\"error\":");
        ws_ops_json_str(f, c->unreadable[i].err.msg);
        fprintf(f, "}");
    }
    fprintf(f, "],\"temporary_files\":{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64 "}", L->tmp_files,
            L->tmp_bytes);
}

/* Every byte the repository holds: backups (complete and not), WAL, temporary files. */
static uint64_t stored_total(const listing *L, const ws_summary *w)
{
    uint64_t t = w->bytes + L->tmp_bytes;
    for (int i = 0; i < L->cat->nincomplete; i++)
        t += L->cat->incomplete_info[i].bytes;
    for (int i = 0; i < L->cat->n; i++)
        t += L->cat->backups[i].stored_size;
    return t;
}

static void print_json(FILE *f, const listing *L, const ws_summary *w, uint32_t seg_size)
{
    const ws_manifest_info *b = L->cat->backups;
    int nb = L->cat->n;
    const char *repo = L->repo;
    char t1[32], t2[32], l1[32], l2[32], seg[32];
    fprintf(f, "{\"repository\":");
    ws_ops_json_str(f, repo);
    fprintf(f, ",\"number\":%d,\"stored_bytes\":%" PRIu64, L->number, stored_total(L, w));
    fprintf(f, ",\"mode\":\"%s\"", L->catchup ? "catch-up" : "sync");
    if (L->catchup && L->backlog_known)
        fprintf(f,
                ",\"catch_up_backlog\":{\"source\":%d,\"files\":%" PRIu64 ",\"bytes\":%" PRIu64 "}",
                L->source, L->backlog_files, L->backlog_bytes);
    else if (L->catchup)
        fprintf(f, ",\"catch_up_backlog\":null");
    fprintf(f, ",\"backups\":[");
    for (int i = 0; i < nb; i++) {
        const ws_manifest_info *m = &b[i];
        ws_manifest_format_time(m->start_time, t1);
        ws_manifest_format_time(m->stop_time, t2);
        ws_wal_lsn_text(m->start_lsn, l1);
        ws_wal_lsn_text(m->stop_lsn, l2);
        fprintf(f, "%s{\"id\":", i ? "," : "");
        ws_ops_json_str(f, m->id);
        fprintf(f, ",\"label\":");
        ws_ops_json_str(f, m->label);
        fprintf(f,
                ",\"complete\":true,\"start_time\":\"%s\",\"stop_time\":\"%s\","
                "\"duration_seconds\":%" PRId64 ",\"start_lsn\":\"%s\",\"stop_lsn\":\"%s\","
                "\"start_timeline\":%" PRIu32 ",\"stop_timeline\":%" PRIu32
                ",\"start_wal\":\"%s\",\"stop_wal\":\"%s\",\"original_size\":%" PRIu64
                ",\"stored_size\":%" PRIu64 ",\"file_count\":%" PRIu64
                ",\"pg_version_num\":%d,\"system_identifier\":\"%" PRIu64 "\"",
                t1, t2, m->stop_time - m->start_time, l1, l2, m->start_tli, m->stop_tli,
                m->start_wal, m->stop_wal, m->original_size, m->stored_size, m->file_count,
                m->pg_version_num, m->sysid);
        print_json_backup_extra(f, L, i);
        fputc('}', f);
    }
    fprintf(f, "],\"incomplete_backups\":[");
    for (int i = 0; i < L->cat->nincomplete; i++) {
        fprintf(f, "%s", i ? "," : "");
        ws_ops_json_str(f, L->cat->incomplete[i]);
    }
    fprintf(f, "]");
    print_json_extra(f, L);
    fprintf(f, ",\"wal\":{\"segment_size\":%" PRIu32 ",\"timelines\":[", seg_size);
    for (int i = 0; i < w->ntl; i++) {
        const ws_summary_tl *t = &w->tl[i];
        char a[32], z[32];
        ws_wal_format_segment(a, t->tli, t->first, seg_size);
        ws_wal_format_segment(z, t->tli, t->last, seg_size);
        if (t->count)
            fprintf(f,
                    "%s{\"timeline\":%" PRIu32
                    ",\"first\":\"%s\",\"last\":\"%s\",\"count\":%" PRIu64 ",\"gaps\":[",
                    i ? "," : "", t->tli, a, z, t->count);
        else /* only dropped segments on this timeline */
            fprintf(f,
                    "%s{\"timeline\":%" PRIu32
                    ",\"first\":null,\"last\":null,\"count\":0,\"gaps\":[",
                    i ? "," : "", t->tli);
        for (int g = 0; g < t->ngaps; g++) {
            ws_wal_format_segment(a, t->tli, t->gaps[g].first, seg_size);
            ws_wal_format_segment(z, t->tli, t->gaps[g].last, seg_size);
            fprintf(f,
                    "%s{\"first\":\"%s\",\"last\":\"%s\",\"missing\":%" PRIu64
                    ",\"dropped\":%" PRIu64 "}",
                    g ? "," : "", a, z, t->gaps[g].last - t->gaps[g].first + 1, t->gaps[g].dropped);
        }
        fprintf(f, "],\"dropped\":[");
        for (int d = 0; d < t->ndrops; d++) {
            char when[32];
            ws_wal_format_segment(a, t->tli, t->drops[d].first, seg_size);
            ws_wal_format_segment(z, t->tli, t->drops[d].last, seg_size);
            ws_manifest_format_time(t->drops[d].dropped_at, when);
            fprintf(f,
                    "%s{\"first\":\"%s\",\"last\":\"%s\",\"count\":%" PRIu64
                    ",\"reason\":\"" WS_GAP_REASON_QUEUE_MAX "\",\"dropped_at\":\"%s\"}",
                    d ? "," : "", a, z, t->drops[d].last - t->drops[d].first + 1, when);
        }
        fprintf(f, "]}");
    }
    const ws_summary_names *lists[3] = {&w->history, &w->partial, &w->backup_files};
    const char *names[3] = {"history_files", "partial_segments", "backup_history_files"};
    fprintf(f, "]");
    for (int k = 0; k < 3; k++) {
        fprintf(f, ",\"%s\":[", names[k]);
        for (int i = 0; i < lists[k]->n; i++) {
            fprintf(f, "%s", i ? "," : "");
            ws_ops_json_str(f, lists[k]->v[i]);
        }
        fprintf(f, "]");
    }
    (void)seg;
    fprintf(f, "}}\n");
}

static void print_hole(FILE *f, const ws_summary_tl *t, uint64_t first, uint64_t last,
                       const ws_summary_drop *d, uint32_t seg_size)
{
    char a[32], z[32], when[32];
    ws_wal_format_segment(a, t->tli, first, seg_size);
    ws_wal_format_segment(z, t->tli, last, seg_size);
    if (!d) {
        fprintf(f, "  missing %s .. %s (%" PRIu64 ")\n", a, z, last - first + 1);
        return;
    }
    ws_manifest_format_time(d->dropped_at, when);
    fprintf(f, "  dropped by push-queue-max %s .. %s (%" PRIu64 "), %s: recovery cannot cross it\n",
            a, z, last - first + 1, when);
}

/* Every hole of a timeline in order: dropped runs as such, and the rest of each gap as
 * missing. A dropped run holds no stored segment, so it lies inside one gap, or before the
 * first or after the last stored segment. */
static void print_holes(FILE *f, const ws_summary_tl *t, uint32_t seg_size)
{
    int d = 0;
    for (int g = 0; g <= t->ngaps; g++) {
        uint64_t lo = g < t->ngaps ? t->gaps[g].first : UINT64_MAX;
        uint64_t hi = g < t->ngaps ? t->gaps[g].last : UINT64_MAX;
        /* dropped runs before this gap (outside every gap) */
        for (; d < t->ndrops && t->drops[d].first < lo; d++)
            print_hole(f, t, t->drops[d].first, t->drops[d].last, &t->drops[d], seg_size);
        if (g == t->ngaps)
            break;
        uint64_t cursor = lo;
        for (; d < t->ndrops && t->drops[d].last <= hi; d++) {
            if (t->drops[d].first > cursor)
                print_hole(f, t, cursor, t->drops[d].first - 1, NULL, seg_size);
            print_hole(f, t, t->drops[d].first, t->drops[d].last, &t->drops[d], seg_size);
            cursor = t->drops[d].last + 1;
        }
        if (cursor <= hi)
            print_hole(f, t, cursor, hi, NULL, seg_size);
    }
}

/* Incomplete and unreadable backups, and the temporary files of interrupted writes. */
static void print_text_extra(FILE *f, const listing *L)
{
    const ws_catalog *c = L->cat;
    char s1[32], s2[32];
    if (c->nincomplete)
        fprintf(f,
                "%d incomplete backup(s): no manifest, never finished, not restorable; their "
                "objects wait for removal:\n",
                c->nincomplete);
    for (int i = 0; i < c->nincomplete; i++) {
        const ws_catalog_incomplete *x = &c->incomplete_info[i];
        ws_ops_human_bytes(x->bytes, s1);
        ws_ops_human_bytes(x->tmp_bytes, s2);
        fprintf(f, "  %-20s incomplete: %" PRIu64 " object(s), %s", c->incomplete[i], x->objects,
                s1);
        if (x->tmp_files)
            fprintf(f, "; %" PRIu64 " temporary file(s), %s", x->tmp_files, s2);
        fprintf(f, "\n");
    }
    for (int i = 0; i < c->nunreadable; i++)
        fprintf(f, "  %-20s UNREADABLE: %s\n", c->unreadable[i].id, c->unreadable[i].err.msg);
    if (L->tmp_files) {
        ws_ops_human_bytes(L->tmp_bytes, s1);
        fprintf(f,
                "leftovers: %" PRIu64 " temporary file(s) of interrupted writes, %s (never read "
                "as data; walship does not remove them yet)\n",
                L->tmp_files, s1);
    }
}

static void print_text(FILE *f, const listing *L, const ws_summary *w, uint32_t seg_size)
{
    const ws_manifest_info *b = L->cat->backups;
    int nb = L->cat->n;
    char tot[32];
    ws_ops_human_bytes(stored_total(L, w), tot);
    if (L->nrepos > 1)
        fprintf(f, "repository %d: %s (%s stored)\n\n", L->number, L->repo, tot);
    else
        fprintf(f, "repository %s (%s stored)\n\n", L->repo, tot);
    if (L->catchup && L->backlog_known) {
        char bb[32];
        ws_ops_human_bytes(L->backlog_bytes, bb);
        if (L->backlog_files)
            fprintf(f,
                    "catch-up repository: %" PRIu64 " WAL file(s) (%s) behind repository %d, "
                    "oldest %s\n\n",
                    L->backlog_files, bb, L->source, L->backlog_oldest);
        else
            fprintf(f, "catch-up repository: up to date with repository %d\n\n", L->source);
    } else if (L->catchup) {
        fprintf(f, "catch-up repository: backlog unknown (repository %d cannot be listed)\n\n",
                L->source);
    }
    if (nb == 0)
        fprintf(f, "no backups\n");
    else
        fprintf(f, "%-20s %-20s %-20s %-20s %-12s %-12s %3s %10s %10s %8s\n", "backup", "label",
                "start (UTC)", "stop (UTC)", "start LSN", "stop LSN", "TLI", "size", "stored",
                "duration");
    for (int i = 0; i < nb; i++) {
        const ws_manifest_info *m = &b[i];
        char t1[32], t2[32], l1[32], l2[32], s1[32], s2[32], label[21], dur[32];
        ws_manifest_format_time(m->start_time, t1);
        ws_manifest_format_time(m->stop_time, t2);
        ws_wal_lsn_text(m->start_lsn, l1);
        ws_wal_lsn_text(m->stop_lsn, l2);
        ws_ops_human_bytes(m->original_size, s1);
        ws_ops_human_bytes(m->stored_size, s2);
        snprintf(label, sizeof label, "%s", m->label);
        snprintf(dur, sizeof dur, "%" PRId64 "s", m->stop_time - m->start_time);
        fprintf(f, "%-20s %-20s %-20s %-20s %-12s %-12s %3" PRIu32 " %10s %10s %8s\n", m->id, label,
                t1, t2, l1, l2, m->stop_tli, s1, s2, dur);
        print_text_backup_extra(f, L, i);
    }
    print_text_extra(f, L);
    fprintf(f, "\n");
    if (w->ntl == 0)
        fprintf(f, "no WAL segments\n");
    for (int i = 0; i < w->ntl; i++) {
        const ws_summary_tl *t = &w->tl[i];
        char a[32], z[32];
        const char *state = t->ngaps || t->ndrops ? "GAPS:" : "no gaps";
        ws_wal_format_segment(a, t->tli, t->first, seg_size);
        ws_wal_format_segment(z, t->tli, t->last, seg_size);
        if (t->count)
            fprintf(f, "WAL timeline %" PRIu32 ": %s .. %s, %" PRIu64 " segment(s), %s\n", t->tli,
                    a, z, t->count, state);
        else
            fprintf(f, "WAL timeline %" PRIu32 ": no segment stored, %s\n", t->tli, state);
        print_holes(f, t, seg_size);
    }
    if (w->history.n)
        fprintf(f, "timeline history files: %d (last %s)\n", w->history.n,
                w->history.v[w->history.n - 1]);
    if (w->partial.n)
        fprintf(f, "partial segments: %d\n", w->partial.n);
}

static int tmp_cb(void *arg, const char *key, const ws_storage_info *info)
{
    (void)key;
    listing *L = arg;
    L->tmp_files++;
    L->tmp_bytes += info->size;
    return 0;
}

static int tmp_skip_cb(void *arg, const char *prefix, const ws_error *err)
{
    (void)arg, (void)prefix, (void)err;
    return 0; /* an unreadable directory: the listings of objects report it */
}

/* Why a repository has no identity, as an error. */
static void no_identity(ws_repo *r, ws_error *err)
{
    char found[256];
    int holds = ws_repo_holds_objects(r, found, sizeof found, err);
    if (holds < 0)
        return;
    if (holds) {
        ws_error_set(err, WS_ECORRUPT,
                     "repository %s has no " WS_REPO_ROOT_KEY " but holds objects (%s): its "
                     "identity was removed",
                     ws_repo_describe(r), found);
        ws_error_hint(err, "run \"walship repo repair\" to re-derive it from the stored WAL and "
                           "backups (docs/repository-format.md)");
        return;
    }
    ws_error_set(err, WS_ENOENT,
                 "repository %s is missing or empty: no " WS_REPO_ROOT_KEY
                 ", no WAL segment, no backup",
                 ws_repo_describe(r));
    ws_error_hint(err, "check repo in the config: an unmounted mount point, or a wrong bucket or "
                       "prefix, looks like this; a new repository gets its " WS_REPO_ROOT_KEY
                       " from the first push");
}

/* One repository's state; ok 0: err says why it cannot be listed. */
typedef struct repo_state {
    int ok;
    ws_error err;
    ws_catalog cat;
    ws_summary wal;
    uint32_t seg_size;
    listing L;
    ws_expire_plan plan;
    int have_plan;
} repo_state;

static int load_repo(const ws_config *cfg, int idx, ws_repo *r, repo_state *s)
{
    ws_error *err = &s->err;
    ws_repo_identity id;
    s->L.repo = ws_repo_describe(r);
    s->L.cat = &s->cat;
    if (ws_repo_identity_get(r, &id, err) < 0) {
        if (err->code == WS_ENOENT)
            no_identity(r, err);
        return -1;
    }
    s->seg_size = id.seg_size;
    if (ws_catalog_load(r, &s->cat, err) < 0 || ws_summary_load(r, id.seg_size, &s->wal, err) < 0 ||
        ws_storage_list_ex(ws_repo_storage(r), "", WS_STORAGE_LIST_TMP, tmp_cb, tmp_skip_cb, &s->L,
                           err) < 0)
        return -1;
    ws_retention pol;
    int local;
    if (ws_expire_policy(cfg, idx, &pol, &local, err) < 0)
        return -1;
    if (ws_retention_any(&pol)) {
        if (ws_expire_plan_make(&pol, s->cat.backups, s->cat.n, s->cat.pinned, NULL,
                                ws_repo_wall_time(), local, &s->plan, err) < 0)
            return -1;
        s->have_plan = 1;
        s->L.keep = s->plan.keep;
    }
    s->L.notes = calloc((size_t)(s->cat.n ? s->cat.n : 1), sizeof *s->L.notes);
    s->L.present = calloc((size_t)(s->cat.n ? s->cat.n : 1), sizeof *s->L.present);
    if (!s->L.notes || !s->L.present)
        return ws_error_oom(err);
    for (int i = 0; i < s->cat.n; i++) {
        ws_pin pin;
        ws_error e;
        if (s->cat.pinned[i] && ws_pin_get(r, s->cat.backups[i].id, &pin, &e) == 0)
            s->L.notes[i] = strdup(pin.note);
    }
    s->ok = 1;
    return 0;
}

static void free_state(repo_state *s)
{
    for (int i = 0; s->L.notes && i < s->cat.n; i++)
        free(s->L.notes[i]);
    free(s->L.notes);
    free(s->L.present);
    if (s->have_plan)
        ws_expire_plan_free(&s->plan);
    ws_catalog_free(&s->cat);
    ws_summary_free(&s->wal);
}

int ws_cmd_list(const ws_config *cfg)
{
    ws_error err;
    ws_error_clear(&err);
    if (ws_config_nargs(cfg) != 0) {
        ws_log_error("usage: walship list [--json] [--repo URL|N]");
        return WS_EXIT_USAGE;
    }
    if (ws_expire_clock_setup(cfg, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_USAGE;
    }
    int json = ws_config_flag(cfg, "json");
    ws_repo **repos;
    int nrepos;
    if (ws_cmd_open_repos(cfg, &repos, &nrepos, &err) < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        return err.code == WS_ECONFIG ? WS_EXIT_USAGE : WS_EXIT_FAIL;
    }
    repo_state *st = calloc((size_t)nrepos, sizeof *st);
    if (!st) {
        ws_cmd_close_repos(repos, nrepos);
        ws_error_oom(&err);
        ws_log_err(WS_LOG_ERROR, &err);
        return WS_EXIT_FAIL;
    }
    int rc = WS_EXIT_OK, config_error = 0;
    for (int i = 0; i < nrepos; i++) {
        ws_error_clear(&st[i].err);
        st[i].L.number = i + 1;
        st[i].L.nrepos = nrepos;
        if (load_repo(cfg, i, repos[i], &st[i]) < 0) {
            ws_log_err(WS_LOG_ERROR, &st[i].err);
            config_error |= st[i].err.code == WS_ECONFIG;
            rc = WS_EXIT_FAIL;
        }
    }
    /* repoN-mode = catch-up: the backlog behind the first sync repository, by listing */
    int catchup[WS_CONFIG_MAX_REPOS];
    int src = ws_repo_modes(cfg, catchup, &err);
    if (src < 0) {
        ws_log_err(WS_LOG_ERROR, &err);
        ws_error_clear(&err);
        src = 0;
        memset(catchup, 0, sizeof catchup);
    }
    for (int i = 0; i < nrepos && i < WS_CONFIG_MAX_REPOS; i++) {
        if (!catchup[i])
            continue;
        st[i].L.catchup = 1;
        st[i].L.source = src + 1;
        ws_catchup_backlog b;
        ws_error e;
        ws_error_clear(&e);
        /* a catch-up repository never reached has no identity yet: its backlog is all */
        if (st[src].ok && ws_catchup_backlog_of(repos[src], repos[i], &b, &e) == 0) {
            st[i].L.backlog_known = 1;
            st[i].L.backlog_files = (uint64_t)b.n;
            st[i].L.backlog_bytes = b.bytes;
            if (b.n) {
                const char *slash = strrchr(b.v[0].key, '/');
                snprintf(st[i].L.backlog_oldest, sizeof st[i].L.backlog_oldest, "%s",
                         slash ? slash + 1 : b.v[0].key);
            }
            ws_catchup_backlog_free(&b);
        } else if (e.msg[0]) {
            ws_log_err(WS_LOG_WARN, &e);
        }
    }
    /* where each backup is: by id across the repositories that could be read */
    for (int i = 0; i < nrepos; i++)
        for (int k = 0; st[i].ok && k < st[i].cat.n; k++)
            for (int j = 0; j < nrepos && j < 32; j++)
                if (st[j].ok && ws_catalog_find(&st[j].cat, st[i].cat.backups[k].id))
                    st[i].L.present[k] |= 1u << j;
    if (json && nrepos > 1)
        printf("{\"repositories\":[");
    for (int i = 0; i < nrepos; i++) {
        if (json && nrepos > 1 && i)
            printf(",");
        if (!st[i].ok) {
            if (json && nrepos > 1) {
                printf("{\"repository\":");
                ws_ops_json_str(stdout, ws_repo_describe(repos[i]));
                printf(",\"number\":%d,\"error\":", i + 1);
                ws_ops_json_str(stdout, st[i].err.msg);
                printf(",\"mode\":\"%s\"", st[i].L.catchup ? "catch-up" : "sync");
                if (st[i].L.catchup && st[i].L.backlog_known)
                    printf(",\"catch_up_backlog\":{\"source\":%d,\"files\":%" PRIu64
                           ",\"bytes\":%" PRIu64 "}",
                           st[i].L.source, st[i].L.backlog_files, st[i].L.backlog_bytes);
                printf("}");
            } else if (!json) {
                printf("%srepository %d: %s CANNOT BE LISTED: %s\n", i ? "\n" : "", i + 1,
                       ws_repo_describe(repos[i]), st[i].err.msg);
                if (st[i].L.catchup && st[i].L.backlog_known) {
                    char hb[32];
                    ws_ops_human_bytes(st[i].L.backlog_bytes, hb);
                    printf("catch-up repository: %" PRIu64 " WAL file(s) (%s) behind repository "
                           "%d, oldest %s\n",
                           st[i].L.backlog_files, hb, st[i].L.source, st[i].L.backlog_oldest);
                }
            }
            continue;
        }
        if (json)
            print_json(stdout, &st[i].L, &st[i].wal, st[i].seg_size);
        else {
            if (i)
                printf("\n");
            print_text(stdout, &st[i].L, &st[i].wal, st[i].seg_size);
        }
        if (st[i].cat.nunreadable) {
            /* the others are listed above; monitoring must still see the damage */
            ws_error_set(&err, WS_ECORRUPT,
                         "%d backup(s) in %s cannot be read (first: %s); the %d readable one(s) "
                         "are listed",
                         st[i].cat.nunreadable, st[i].L.repo, st[i].cat.unreadable[0].id,
                         st[i].cat.n);
            ws_error_hint(&err, "see the warnings above: restore cannot use such a backup; "
                                "check the repository's files or permissions");
            ws_log_err(WS_LOG_ERROR, &err);
            rc = WS_EXIT_FAIL;
        }
    }
    if (json && nrepos > 1)
        printf("]}\n");
    if (fflush(stdout) != 0)
        rc = WS_EXIT_FAIL;
    for (int i = 0; i < nrepos; i++)
        free_state(&st[i]);
    free(st);
    ws_cmd_close_repos(repos, nrepos);
    return config_error && nrepos == 1 ? WS_EXIT_USAGE : rc;
}
