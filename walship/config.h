/*
 * config.h — options from the command line, the environment and the config file.
 *
 * Every option is a config-file key ("s3-region = eu-west-1"), a flag ("--s3-region
 * eu-west-1" or "--s3-region=eu-west-1") and an environment variable (WALSHIP_S3_REGION).
 * Precedence: flag > environment > config file > default.
 *
 * Several repositories: "repo" may be repeated on the command line; in the config file and
 * the environment they are repo1, repo2, ... (a plain "repo" is repo1). Per-repository
 * settings are "repoN-<key>" (repo2-s3-region, WALSHIP_REPO2_S3_REGION) and fall back to
 * the plain key. S3 credentials also come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN. Secret options are refused on the command line (argv is visible to
 * every user of the machine through ps).
 *
 * Ownership: ws_config_load returns a config the caller frees with ws_config_free; strings
 * it returns live as long as the config.
 */
#ifndef WS_CONFIG_H
#define WS_CONFIG_H

#include <stdint.h>

#include "walship/error.h"

/* storage/storage.h: the core names the storage seam's settings, never includes it */
struct ws_storage_config;

#define WS_CONFIG_MAX_REPOS    9
#define WS_CONFIG_DEFAULT_FILE "/etc/walship/walship.conf"

typedef struct ws_config ws_config;

/* Parses argv (argv[0] is the program): options anywhere, the first non-option word is the
 * command, the rest are its positional arguments ("--" ends options). Then reads the
 * environment and the config file (-c/--config, $WALSHIP_CONFIG, else the default file if
 * it exists). Unknown options, unknown keys and malformed lines are WS_ECONFIG errors that
 * name the file and line. */
int ws_config_load(int argc, char **argv, ws_config **out, ws_error *err);
void ws_config_free(ws_config *c);

const char *ws_config_command(const ws_config *c); /* NULL if none */
int ws_config_nargs(const ws_config *c);
const char *ws_config_arg(const ws_config *c, int i); /* positional i, 0-based */
/* True if the flag was given on the command line (for valueless flags: --json, --help). */
int ws_config_flag(const ws_config *c, const char *key);

/* The resolved value of a global key, or its default (NULL if none). */
const char *ws_config_get(const ws_config *c, const char *key);
/* Typed getters: return -1 with a WS_ECONFIG error naming where the bad value came from. */
int ws_config_get_bool(const ws_config *c, const char *key, int *out, ws_error *err);
int ws_config_get_long(const ws_config *c, const char *key, long min, long max, long *out,
                       ws_error *err);
/* Sizes: "4GB", "512MB", "64kB", "1048576" (units of 1024; B, kB/KiB, MB/MiB, GB/GiB,
 * TB/TiB, any case) of at least min bytes, or "off" → 0. */
int ws_config_get_size(const ws_config *c, const char *key, uint64_t min, uint64_t *out,
                       ws_error *err);
/* Durations: "30", "30s", "500ms", "2min", "1h" → seconds. */
int ws_config_get_seconds(const ws_config *c, const char *key, double *out, ws_error *err);
/* Where a key's value came from: "--flag", "WALSHIP_X", "/etc/walship/walship.conf:12",
 * "default". */
const char *ws_config_source(const ws_config *c, const char *key);

/* Repositories, in order (1-based in names, 0-based here). */
int ws_config_repo_count(const ws_config *c);
/* repoN-key if set, else key. */
const char *ws_config_repo_get(const ws_config *c, int repo, const char *key);
/* Fills a storage config for repository i (strings borrowed from c). */
int ws_config_storage(const ws_config *c, int repo, struct ws_storage_config *out, ws_error *err);

/* The config file that was read (-c, $WALSHIP_CONFIG or the default file), or NULL. */
const char *ws_config_file(const ws_config *c);
/* Every setting given in the environment or on the command line that another walship process
 * would need repeated to act the same (restore writes them into restore_command): config
 * keys only, environment before flags, the repositories first and in order (key "repo").
 * secret says the value must not be repeated anywhere visible. */
typedef void (*ws_config_setting_fn)(void *arg, const char *key, const char *value, int secret);
void ws_config_each_explicit(const ws_config *c, ws_config_setting_fn fn, void *arg);
/* True if key (or repoN-key) is a credential: never on the command line, never logged,
 * never hashed into anything written to disk without a key (agent/spool.c). */
int ws_config_key_secret(const char *key);
/* Option documentation for --help: calls fn for every option in the table. */
typedef void (*ws_config_doc_fn)(void *arg, const char *key, const char *value_name,
                                 const char *def, const char *help);
void ws_config_each_option(ws_config_doc_fn fn, void *arg);

#endif
