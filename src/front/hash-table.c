/* SPDX-License-Identifier: MIT */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "front/hash-table.h"
#include "shared/util.h"

#define HASH_TABLE_CAP_MIN 16

void hash_key_init(HashKey *ret, const void *salt) {
        uint64_t k[2];

        if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t) sizeof(k)) {
                k[0] = now_usec(CLOCK_MONOTONIC) ^ (uint64_t) (uintptr_t) salt;
                k[1] = now_usec(CLOCK_REALTIME) ^ ((uint64_t) getpid() << 32);
        }
        *ret = (HashKey){.k0 = k[0], .k1 = k[1]};
}

static inline uint64_t rotl64(uint64_t x, int b) {
        return (x << b) | (x >> (64 - b));
}

#define SIPROUND                                                                                            \
        do {                                                                                                \
                v0 += v1;                                                                                   \
                v1 = rotl64(v1, 13);                                                                        \
                v1 ^= v0;                                                                                   \
                v0 = rotl64(v0, 32);                                                                        \
                v2 += v3;                                                                                   \
                v3 = rotl64(v3, 16);                                                                        \
                v3 ^= v2;                                                                                   \
                v0 += v3;                                                                                   \
                v3 = rotl64(v3, 21);                                                                        \
                v3 ^= v0;                                                                                   \
                v2 += v1;                                                                                   \
                v1 = rotl64(v1, 17);                                                                        \
                v1 ^= v2;                                                                                   \
                v2 = rotl64(v2, 32);                                                                        \
        } while (0)

/* SipHash-1-3: keyed, so clients cannot pick idempotency keys that all land in one probe chain. */
static uint64_t siphash13(const void *data, size_t len, uint64_t k0, uint64_t k1) {
        const uint8_t *p = data;
        uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
        uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
        uint64_t b = (uint64_t) len << 56;
        size_t i;

        for (i = 0; i + 8 <= len; i += 8) {
                uint64_t m;

                memcpy(&m, p + i, 8);
                m = le64toh(m);
                v3 ^= m;
                SIPROUND;
                v0 ^= m;
        }
        for (size_t j = 0; i + j < len; j++)
                b |= (uint64_t) p[i + j] << (8 * j);
        v3 ^= b;
        SIPROUND;
        v0 ^= b;
        v2 ^= 0xff;
        SIPROUND;
        SIPROUND;
        SIPROUND;
        return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t hash_string(const HashKey *k, const char *s, uint64_t tweak) {
        return siphash13(s, strlen(s), k->k0 ^ tweak, k->k1);
}

static int hash_table_rehash(HashTable *t, size_t cap, HashTableHashFn hash, const void *userdata) {
        void **slots = calloc(cap, sizeof(void *));

        if (!slots)
                return -ENOMEM;
        if (t->slots)
                for (size_t i = 0; i <= t->mask; i++) {
                        void *e = t->slots[i];
                        size_t j;

                        if (!e)
                                continue;
                        for (j = hash(e, userdata) & (cap - 1); slots[j]; j = (j + 1) & (cap - 1))
                                ;
                        slots[j] = e;
                }
        free(t->slots);
        t->slots = slots;
        t->mask = cap - 1;
        return 0;
}

int hash_table_reserve(HashTable *t, size_t want, HashTableHashFn hash, const void *userdata) {
        size_t cap = t->slots ? t->mask + 1 : 0, new_cap = cap ? cap : HASH_TABLE_CAP_MIN;

        if (want <= cap / 4 * 3)
                return 0;
        while (want > new_cap / 4 * 3) {
                if (new_cap > SIZE_MAX / 2 / sizeof(void *))
                        return -ENOMEM;
                new_cap *= 2;
        }
        return hash_table_rehash(t, new_cap, hash, userdata);
}

void hash_table_add(HashTable *t, uint64_t h, void *e) {
        size_t i;

        for (i = h & t->mask; t->slots[i]; i = (i + 1) & t->mask)
                ;
        t->slots[i] = e;
        t->n++;
}

void hash_table_remove(HashTable *t, uint64_t h, const void *e, HashTableHashFn hash, const void *userdata) {
        size_t i, j;

        if (!t->slots)
                return;
        for (i = h & t->mask; t->slots[i] != e; i = (i + 1) & t->mask)
                if (!t->slots[i])
                        return; /* not there */

        /* Backward shift: pull later members of the probe chain into the hole when their home slot
         * allows it, so lookups never need tombstones. */
        for (j = (i + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
                size_t home = hash(t->slots[j], userdata) & t->mask;

                if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
                        t->slots[i] = t->slots[j];
                        i = j;
                }
        }
        t->slots[i] = NULL;
        t->n--;

        /* Give memory back after a burst; failing to shrink is harmless. */
        if (t->mask + 1 > HASH_TABLE_CAP_MIN && t->n < (t->mask + 1) / 8)
                (void) hash_table_rehash(t, (t->mask + 1) / 2, hash, userdata);
}

void hash_table_done(HashTable *t) {
        free(t->slots);
        *t = (HashTable){};
}
