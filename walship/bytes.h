/*
 * bytes.h — little-endian integers in byte buffers: WAL page headers and walship's object
 * header are both little-endian on disk, whatever the host.
 */
#ifndef WS_BYTES_H
#define WS_BYTES_H

#include <stdint.h>

/* n bytes in MiB, for messages. */
static inline double ws_mib(uint64_t n)
{
    return (double)n / (1024.0 * 1024.0);
}

static inline uint16_t ws_get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t ws_get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t ws_get_le64(const unsigned char *p)
{
    return (uint64_t)ws_get_le32(p) | (uint64_t)ws_get_le32(p + 4) << 32;
}

static inline void ws_put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static inline void ws_put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void ws_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

#endif
