/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The ledger's hashing and its one kind of hash table: a set of pointers with open addressing,
 * linear probing and backward-shift deletion (no tombstones). The table stores entries only; how an
 * entry hashes is the caller's HashTableHashFn, and a lookup is the caller's walk along the probe
 * chain (from slot h & mask on, until an empty slot), so entries need no wrapper and compare however
 * they like. Memory only, no I/O.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Keys of hash_string(): random per ledger, since clients choose the strings (idempotency keys). */
typedef struct HashKey {
        uint64_t k0, k1;
} HashKey;

/* Fresh random keys; without entropy yet (early boot) they mix clocks and salt: guessable, still
 * correct. */
void hash_key_init(HashKey *ret, const void *salt);

/* SipHash-1-3 of s under k, tweaked (different tweaks give unrelated hashes of the same string). */
uint64_t hash_string(const HashKey *k, const char *s, uint64_t tweak);

/* A fast mix for numbers we hand out ourselves (ids), where keying is not needed. */
static inline uint64_t hash_u64(uint64_t x) {
        /* splitmix64's finalizer */
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ULL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

typedef struct HashTable {
        void **slots;
        size_t mask; /* capacity - 1; capacity is a power of two */
        size_t n;
} HashTable;

/* The hash of an entry already in a table (rehashing and deletion ask for it). */
typedef uint64_t (*HashTableHashFn)(const void *entry, const void *userdata);

/* Makes room for `want` entries at a load of at most 3/4. -ENOMEM. */
int hash_table_reserve(HashTable *t, size_t want, HashTableHashFn hash, const void *userdata);
/* Adds e, whose hash is h; after hash_table_reserve() made room. */
void hash_table_add(HashTable *t, uint64_t h, void *e);
/* Removes e, whose hash is h (nothing if it is not there). Shrinks after a burst. */
void hash_table_remove(HashTable *t, uint64_t h, const void *e, HashTableHashFn hash, const void *userdata);
/* Frees the slots (not the entries); the table is empty and reusable. */
void hash_table_done(HashTable *t);
