/*
 * timeline.h — PostgreSQL timeline history files (TTTTTTTT.history), read from a repository.
 *
 * A history file lists, one line each, the ancestors of its timeline and where each was
 * left: "parent_tli<TAB>switch LSN<TAB>reason". The timeline itself begins at the last line's
 * switch point. Used by restore (which backups lie on the target timeline's path) and by the
 * prefetching fetch (which timeline recovery will follow past a switch point).
 */
#ifndef WS_TIMELINE_H
#define WS_TIMELINE_H

#include <stdint.h>

#include "walship/error.h"
#include "walship/repo/repo.h"

#define WS_TL_MAX_ANCESTORS 64

typedef struct ws_tl_history {
    uint32_t tli; /* the timeline this history is of */
    int n;        /* ancestors, oldest first */
    struct {
        uint32_t tli;
        uint64_t end; /* switch point: where this ancestor was left */
    } anc[WS_TL_MAX_ANCESTORS];
} ws_tl_history;

/* Parses the text of tli's history file (text need not be NUL-terminated; it is copied).
 * WS_ECORRUPT naming the line when malformed. */
int ws_tl_history_parse(uint32_t tli, const char *text, size_t len, ws_tl_history *h,
                        ws_error *err);

/* Reads and parses tli's history file from r; timeline 1 has none (an empty history).
 * WS_ENOENT when the file is not in r (err has a hint for restore's users). */
int ws_tl_history_load(ws_repo *r, uint32_t tli, ws_tl_history *h, ws_error *err);

/* 1 if h's timeline is tli or has it among its ancestors; *end (may be NULL) then receives
 * where h's lineage left tli (UINT64_MAX when tli is h's own timeline). */
int ws_tl_history_has(const ws_tl_history *h, uint32_t tli, uint64_t *end);

/* Of hist[0..n), the newest timeline that recovery on timeline cur at segment `from` can still
 * switch to (recovery_target_timeline = latest): its history contains cur, left after
 * segment `from`. NULL if none. */
const ws_tl_history *ws_tl_choose(const ws_tl_history *hist, int n, uint32_t cur, uint64_t from,
                                  uint32_t seg_size);

/* The timeline recovery reads segment segno from when it follows h (NULL: stays on cur) from
 * timeline cur on: the newest timeline of the lineage that begins at or before the segment —
 * the segment holding a switch point belongs to the new timeline, as PostgreSQL reads it. */
uint32_t ws_tl_segment_tli(const ws_tl_history *h, uint32_t cur, uint64_t segno, uint32_t seg_size);

#endif
