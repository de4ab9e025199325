/*
 * commands.h — the command entry points main.c dispatches to. Each takes the loaded
 * configuration and returns the process exit code (walship/exit.h). Nothing but main.c calls
 * them; each command's file includes this header only to have its definition checked.
 */
#ifndef WS_COMMANDS_H
#define WS_COMMANDS_H

#include "walship/config.h"

int ws_cmd_push(const ws_config *cfg);       /* walship/archive/push.c */
int ws_cmd_fetch(const ws_config *cfg);      /* walship/fetch/fetch.c */
int ws_cmd_basebackup(const ws_config *cfg); /* basebackup/basebackup.c */
int ws_cmd_list(const ws_config *cfg);       /* walship/ops/list.c */
int ws_cmd_restore(const ws_config *cfg);    /* restore/cmd.c */
int ws_cmd_repo(const ws_config *cfg);       /* repo repair (walship/ops/repair.c) */
int ws_cmd_cipher(const ws_config *cfg);     /* cipher change | rotate (walship/ops/cipher.c) */

#endif
