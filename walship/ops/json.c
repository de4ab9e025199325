/* json.c — output helpers the operations commands share (ops.h). */
#include "walship/ops/ops.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

void ws_ops_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

void ws_ops_human_bytes(uint64_t n, char out[32])
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)n;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, 32, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

double ws_ops_wallclock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void ws_ops_field_add(ws_ops_result *r, const char *key, const char *value, int num)
{
    if (r->nfields >= WS_OPS_FIELDS_MAX)
        return;
    r->fields[r->nfields++] = (ws_ops_field){key, value, num};
}
