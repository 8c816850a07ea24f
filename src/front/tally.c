/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "front/tally.h"
#include "shared/util.h"

typedef struct TallyEntry {
        struct TallyEntry *next;
        uint64_t hash;
        uint64_t count, bytes;
        char owner[];
} TallyEntry;

struct Tally {
        TallyEntry **buckets;
        size_t n_buckets; /* a power of two */
        uint64_t n;
        uint64_t seed; /* an owner's name may come from a remote address: keep chains unguessable */
};

#define TALLY_BUCKETS_MIN 16

/* FNV-1a over a random seed, then a final mix so that the low bits (the bucket) depend on every byte. */
static uint64_t tally_hash(const Tally *t, const char *s) {
        uint64_t h = 0xcbf29ce484222325ULL ^ t->seed;

        for (; *s; s++) {
                h ^= (uint8_t) *s;
                h *= 0x100000001b3ULL;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        return h;
}

int tally_new(Tally **ret) {
        Tally *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->buckets = calloc(TALLY_BUCKETS_MIN, sizeof(*t->buckets));
        if (!t->buckets) {
                free(t);
                return -ENOMEM;
        }
        t->n_buckets = TALLY_BUCKETS_MIN;
        if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != (ssize_t) sizeof(t->seed))
                t->seed = now_usec(CLOCK_MONOTONIC) ^ (uint64_t) (uintptr_t) t;
        *ret = t;
        return 0;
}

Tally *tally_free(Tally *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_buckets; i++)
                while (t->buckets[i]) {
                        TallyEntry *e = t->buckets[i];

                        t->buckets[i] = e->next;
                        free(e);
                }
        free(t->buckets);
        free(t);
        return NULL;
}

static TallyEntry **tally_slot(const Tally *t, const char *owner, uint64_t h) {
        TallyEntry **p = &t->buckets[h & (t->n_buckets - 1)];

        for (; *p; p = &(*p)->next)
                if ((*p)->hash == h && streq((*p)->owner, owner))
                        break;
        return p;
}

/* Doubles the buckets when there are more owners than buckets; keeps the old ones on ENOMEM. */
static void tally_grow(Tally *t) {
        size_t n = t->n_buckets * 2;
        TallyEntry **b;

        if (t->n <= t->n_buckets || n < t->n_buckets)
                return;
        b = calloc(n, sizeof(*b));
        if (!b)
                return;
        for (size_t i = 0; i < t->n_buckets; i++)
                while (t->buckets[i]) {
                        TallyEntry *e = t->buckets[i];

                        t->buckets[i] = e->next;
                        e->next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        free(t->buckets);
        t->buckets = b;
        t->n_buckets = n;
}

static uint64_t add_clamped(uint64_t v, int64_t delta) {
        if (delta >= 0)
                return v + (uint64_t) delta;
        return (uint64_t) -delta > v ? 0 : v - (uint64_t) -delta;
}

int tally_add(Tally *t, const char *owner, int64_t count, int64_t bytes) {
        uint64_t h = tally_hash(t, owner);
        TallyEntry **p = tally_slot(t, owner, h), *e = *p;

        if (!e) {
                size_t len = strlen(owner);

                if (count <= 0 && bytes <= 0)
                        return 0;
                e = calloc(1, sizeof(*e) + len + 1);
                if (!e)
                        return -ENOMEM;
                memcpy(e->owner, owner, len + 1);
                e->hash = h;
                *p = e;
                t->n++;
        }
        e->count = add_clamped(e->count, count);
        e->bytes = add_clamped(e->bytes, bytes);
        if (e->count == 0 && e->bytes == 0) {
                *p = e->next;
                free(e);
                t->n--;
                return 0;
        }
        tally_grow(t);
        return 0;
}

void tally_get(const Tally *t, const char *owner, uint64_t *ret_count, uint64_t *ret_bytes) {
        TallyEntry *e = *tally_slot(t, owner, tally_hash(t, owner));

        if (ret_count)
                *ret_count = e ? e->count : 0;
        if (ret_bytes)
                *ret_bytes = e ? e->bytes : 0;
}

uint64_t tally_size(const Tally *t) {
        return t->n;
}
