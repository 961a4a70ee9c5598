/* le.h — little-endian loads and stores for wire and payload formats.
 * Byte-wise, so they work at any alignment and on any host byte order. */
#ifndef PEERLESS_COMM_LE_H
#define PEERLESS_COMM_LE_H

#include <stdint.h>
#include <string.h>

static inline uint32_t le_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float le_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline void le_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void le_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void le_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void le_put_f32(uint8_t *p, float f) { le_put_u32(p, le_f32_bits(f)); }

static inline uint16_t le_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t le_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline uint64_t le_get_u64(const uint8_t *p)
{
    return (uint64_t)le_get_u32(p) | ((uint64_t)le_get_u32(p + 4) << 32);
}

static inline float le_get_f32(const uint8_t *p) { return le_bits_f32(le_get_u32(p)); }

#endif
