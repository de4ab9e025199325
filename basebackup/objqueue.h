/*
 * objqueue.h — internal to basebackup/: the thread queue that writes a base backup's objects
 * (store.h says what goes into them).
 *
 * The stream's thread (the caller's) opens objects, puts their bytes and closes them; a pool
 * of `parallel` writer threads, each with its own repository handles, takes the objects in
 * the order they were handed over, writes them (hash, compress, storage) and commits them
 * (fsync). A streamed object (a part of a large file, a blob) is queued when opened and its
 * bytes go to its writer as they come; a gathered one (a pack) is queued whole when closed.
 * The bytes handed over and not yet taken by a writer are bounded by max_inflight (or one
 * gathered object, when it is larger): past it the stream's thread waits.
 *
 * A failed object fails the queue: every later call on the stream's thread returns its error.
 *
 * Ownership: ws_bb_oq_new returns a queue freed by ws_bb_oq_free (which stops the writers and
 * aborts every object not yet committed). An object belongs to the stream's thread until
 * ws_bb_oq_close, to the queue afterwards. The repositories and the configuration are
 * borrowed.
 */
#ifndef WS_BB_OBJQUEUE_H
#define WS_BB_OBJQUEUE_H

#include <stdint.h>

#include "walship/config.h"
#include "walship/repo/repo.h"

typedef struct ws_bb_oq_opts {
    ws_repo **repos; /* used by the writers when cfg is NULL */
    int nrepos;
    const ws_config *cfg; /* else each writer opens the repositories of its own */
    const char *id;       /* backup id: objects go under backup/<id>/ */
    ws_codec codec;
    int level;
    int parallel;          /* writer threads, >= 1 */
    uint64_t max_inflight; /* bytes handed over and not yet taken, > 0 */
    uint64_t gather_max;   /* the largest gathered object (pack_size): spare chunks kept */
    /* called on the stream's thread (ws_bb_oq_reap) for each committed object with a tag */
    int (*committed)(void *arg, void *tag, const ws_objhdr *hdr, ws_error *err);
    void (*tag_free)(void *tag); /* frees a tag with its object */
    void *arg;
} ws_bb_oq_opts;

typedef struct ws_bb_oq ws_bb_oq;
typedef struct ws_bb_obj ws_bb_obj;

/* Starts the writer threads (each opening its repositories). On failure *out may be set
 * already: free it with ws_bb_oq_free. */
int ws_bb_oq_new(const ws_bb_oq_opts *o, ws_bb_oq **out, ws_error *err);
void ws_bb_oq_free(ws_bb_oq *q);

/* A new object backup/<id>/<rel>; rel NULL names the next data/NNNNNN. size_hint: its exact
 * plaintext length, or 0. Reaps the objects committed so far first. */
int ws_bb_oq_open(ws_bb_oq *q, const char *rel, uint64_t size_hint, int streamed, ws_bb_obj **out,
                  ws_error *err);
int ws_bb_oq_put(ws_bb_oq *q, ws_bb_obj *j, const void *buf, size_t len, ws_error *err);
/* No more bytes for j: the writers own it from here. */
int ws_bb_oq_close(ws_bb_oq *q, ws_bb_obj *j, ws_error *err);
/* An object not handed over (a gathered one never closed): freed. */
void ws_bb_oq_drop(ws_bb_obj *j);

const char *ws_bb_obj_rel(const ws_bb_obj *j);  /* "data/000042" */
uint64_t ws_bb_obj_written(const ws_bb_obj *j); /* plaintext bytes put so far */
/* Something of the caller's to complete when j is committed (opts.committed), freed with j
 * (opts.tag_free). Before ws_bb_oq_close. */
void ws_bb_obj_set_tag(ws_bb_obj *j, void *tag);

/* Calls opts.committed for the objects committed since the last reap (none once the queue
 * failed). */
int ws_bb_oq_reap(ws_bb_oq *q, ws_error *err);
/* Waits until every object handed over is committed, stops the writers, reaps: 0 only if
 * every object was committed. */
int ws_bb_oq_finish(ws_bb_oq *q, ws_error *err);

typedef struct ws_bb_oq_stats {
    uint64_t objects;       /* objects committed */
    uint64_t stored_bytes;  /* their stored size in the first repository */
    uint64_t peak_inflight; /* the most bytes handed over and not yet taken at once */
} ws_bb_oq_stats;
void ws_bb_oq_get_stats(ws_bb_oq *q, ws_bb_oq_stats *out);

#endif
