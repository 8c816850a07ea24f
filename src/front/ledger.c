/* SPDX-License-Identifier: MIT */
/*
 * The ledger: records indexed by id and by (submitter, key), an id-ordered array for listing, and the
 * run queue. The run queue is one priority heap per task name (or raw command) holding the tasks that
 * may run now, plus one min-heap by run_after for the tasks that must wait. Picking the next task
 * looks at the top of each non-empty group only, so it costs O(groups + log n) however long the
 * queue is.
 *
 * A record made by ledger_submit() is one allocation: the TaskRecord, the ledger's bookkeeping
 * (Node) and every string of the submission packed behind it. Only `unit`, which the dispatcher
 * sets later, is a separate allocation. Records handed over by ledger_adopt() keep the strings the
 * store allocated, and get their Node from a small separate allocation.
 *
 * Behaviour the header leaves open, decided here:
 * - ledger_adopt(): on error the caller still owns t (and frees it with task_record_free()).
 * - ledger_set_next_id() never moves the next id backwards.
 * - ledger_free() fires the watches still pending with forgotten = true, so their owners drop them.
 * - ledger_watch() accepts a task in any state; on a final task it fires when the task is forgotten
 *   (or, after a retry, when it is final again). -ENOENT for a task forgotten from a callback.
 * - State changes from the wrong state return -EINVAL (ledger_cancel: -EBUSY / -EALREADY).
 * - can_start() must not change the ledger.
 * - The QUEUED_MAX admission check is the caller's (ledger_stats() has the count).
 */
#include <endian.h>
#include <sys/random.h>

#include "front/ledger.h"
#include "shared/limits.h"
#include "shared/util.h"

/* Where a queued record waits. */
enum {
        WHERE_NONE,    /* not queued */
        WHERE_READY,   /* in its group's heap: may run now */
        WHERE_DELAYED, /* in the delay heap: run_after not reached when last looked */
};

/* How a record was allocated. */
enum {
        KIND_PACKED,  /* ledger_submit(): record, node and strings in one allocation */
        KIND_ADOPTED, /* ledger_adopt(): strings separately allocated, node separately allocated */
};

typedef struct Node {
        LedgerWatch *watches; /* not yet fired */
        uint32_t heap_idx;    /* position in the heap named by `where` */
        uint8_t where;
        uint8_t kind;
        uint8_t firing; /* depth of watch callbacks running for this record: it must stay allocated */
        bool doomed;    /* removed from the ledger while its watches were firing: free afterwards */
} Node;

typedef struct Entry {
        TaskRecord rec; /* first, so that the record's address is the allocation's */
        Node node;
        /* packed strings follow */
} Entry;

struct LedgerWatch {
        LedgerWatch *prev, *next;
        LedgerWatch **head; /* list this watch is on: a record's, or a list being fired */
        LedgerWatchFn fn;
        void *userdata;
        bool firing; /* its callback runs now; the ledger frees it afterwards */
};

/* Binary heap of records; each record's Node.heap_idx tracks its position. */
typedef struct Heap {
        TaskRecord **items;
        uint32_t n, cap;
} Heap;

typedef bool (*HeapLessFn)(const TaskRecord *a, const TaskRecord *b);

/* Tasks of one task name (or one raw command) that may run now, best first. */
typedef struct Group {
        Heap heap;
        uint64_t hash;
        size_t active_idx; /* index in Ledger.active while the heap is non-empty */
        bool is_cmd;
        char name[];
} Group;

/* Open addressing, linear probing, backward-shift deletion (no tombstones). */
typedef struct Table {
        void **slots;
        size_t mask; /* capacity - 1; capacity is a power of two */
        size_t n;
} Table;

/* Records in id order; entries of removed records keep their id with t = NULL until compaction. */
typedef struct OrderEntry {
        uint64_t id;
        TaskRecord *t;
} OrderEntry;

struct Ledger {
        uint64_t next_id;
        uint64_t hash_k0, hash_k1; /* per-ledger keys: clients choose idempotency keys */

        Table by_id;
        Table by_key; /* records with a key, by (submitter, key) */
        Table groups; /* Group by (is_cmd, name), empty ones included until pruned */

        Group **active; /* groups with a non-empty heap */
        size_t n_active, active_cap;
        size_t n_empty_groups;

        Heap delayed; /* queued records by run_after */

        OrderEntry *order;
        size_t order_n, order_cap, order_dead;
        uint64_t order_max_id;
        bool order_unsorted; /* an adopted record came in below order_max_id */
        unsigned iterating;  /* a walk over `order` is running: do not move entries */

        uint64_t by_state[_TASK_STATE_MAX];
        uint64_t submitted_total;
};

/* Empty groups kept for reuse before they are dropped: a task name that keeps emptying and filling
 * its queue should not cost an allocation each time, but many distinct commands must not pile up. */
#define GROUPS_EMPTY_KEEP 64

#define TABLE_CAP_MIN 16
#define HEAP_CAP_MIN  16
#define ORDER_CAP_MIN 64

static inline Node *node_of(const TaskRecord *t) {
        return t->priv;
}

/* ---- hashing ---- */

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

static uint64_t hash_string(const Ledger *l, const char *s, uint64_t tweak) {
        return siphash13(s, strlen(s), l->hash_k0 ^ tweak, l->hash_k1);
}

/* Ids are ours, not the clients': a fast mix is enough (splitmix64's finalizer). */
static uint64_t hash_id(uint64_t id) {
        id ^= id >> 30;
        id *= 0xbf58476d1ce4e5b9ULL;
        id ^= id >> 27;
        id *= 0x94d049bb133111ebULL;
        return id ^ (id >> 31);
}

static uint64_t hash_key(const Ledger *l, const char *submitter, const char *key) {
        return hash_string(l, key, hash_string(l, submitter, 0));
}

static uint64_t record_id_hash(const Ledger *l, const void *e) {
        return hash_id(((const TaskRecord *) e)->id);
}

static uint64_t record_key_hash(const Ledger *l, const void *e) {
        const TaskRecord *t = e;
        return hash_key(l, t->submitter, t->key);
}

static uint64_t group_hash(const Ledger *l, const void *e) {
        return ((const Group *) e)->hash;
}

/* ---- open addressing table ---- */

typedef uint64_t (*TableHashFn)(const Ledger *l, const void *entry);

static int table_rehash(Table *t, size_t cap, const Ledger *l, TableHashFn hash) {
        void **slots = calloc(cap, sizeof(void *));

        if (!slots)
                return -ENOMEM;
        if (t->slots)
                for (size_t i = 0; i <= t->mask; i++) {
                        void *e = t->slots[i];
                        size_t j;

                        if (!e)
                                continue;
                        for (j = hash(l, e) & (cap - 1); slots[j]; j = (j + 1) & (cap - 1))
                                ;
                        slots[j] = e;
                }
        free(t->slots);
        t->slots = slots;
        t->mask = cap - 1;
        return 0;
}

/* Makes room for `want` entries at a load of at most 3/4. */
static int table_reserve(Table *t, size_t want, const Ledger *l, TableHashFn hash) {
        size_t cap = t->slots ? t->mask + 1 : 0, new_cap = cap ? cap : TABLE_CAP_MIN;

        if (want <= cap / 4 * 3)
                return 0;
        while (want > new_cap / 4 * 3) {
                if (new_cap > SIZE_MAX / 2 / sizeof(void *))
                        return -ENOMEM;
                new_cap *= 2;
        }
        return table_rehash(t, new_cap, l, hash);
}

/* Caller reserved room first. */
static void table_add(Table *t, uint64_t h, void *e) {
        size_t i;

        for (i = h & t->mask; t->slots[i]; i = (i + 1) & t->mask)
                ;
        t->slots[i] = e;
        t->n++;
}

static void table_remove(Table *t, uint64_t h, const void *e, const Ledger *l, TableHashFn hash) {
        size_t i, j;

        if (!t->slots)
                return;
        for (i = h & t->mask; t->slots[i] != e; i = (i + 1) & t->mask)
                if (!t->slots[i])
                        return; /* not there */

        /* Backward shift: pull later members of the probe chain into the hole when their home slot
         * allows it, so lookups never need tombstones. */
        for (j = (i + 1) & t->mask; t->slots[j]; j = (j + 1) & t->mask) {
                size_t home = hash(l, t->slots[j]) & t->mask;

                if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
                        t->slots[i] = t->slots[j];
                        i = j;
                }
        }
        t->slots[i] = NULL;
        t->n--;

        /* Give memory back after a burst; failing to shrink is harmless. */
        if (t->mask + 1 > TABLE_CAP_MIN && t->n < (t->mask + 1) / 8)
                (void) table_rehash(t, (t->mask + 1) / 2, l, hash);
}

static TaskRecord *table_find_id(const Table *t, uint64_t id) {
        if (!t->slots)
                return NULL;
        for (size_t i = hash_id(id) & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
                TaskRecord *r = t->slots[i];
                if (r->id == id)
                        return r;
        }
        return NULL;
}

static TaskRecord *table_find_key(const Ledger *l, const char *submitter, const char *key) {
        const Table *t = &l->by_key;

        if (!t->slots)
                return NULL;
        for (size_t i = hash_key(l, submitter, key) & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
                TaskRecord *r = t->slots[i];
                if (streq(r->key, key) && streq(r->submitter, submitter))
                        return r;
        }
        return NULL;
}

/* ---- heaps ---- */

static bool ready_less(const TaskRecord *a, const TaskRecord *b) {
        if (a->priority != b->priority)
                return a->priority > b->priority;
        return a->id < b->id;
}

static bool delayed_less(const TaskRecord *a, const TaskRecord *b) {
        if (a->run_after != b->run_after)
                return a->run_after < b->run_after;
        return a->id < b->id;
}

static inline void heap_set(Heap *h, uint32_t i, TaskRecord *t) {
        h->items[i] = t;
        node_of(t)->heap_idx = i;
}

static void heap_sift_up(Heap *h, uint32_t i, HeapLessFn less) {
        TaskRecord *t = h->items[i];

        while (i > 0) {
                uint32_t parent = (i - 1) / 2;
                if (!less(t, h->items[parent]))
                        break;
                heap_set(h, i, h->items[parent]);
                i = parent;
        }
        heap_set(h, i, t);
}

static void heap_sift_down(Heap *h, uint32_t i, HeapLessFn less) {
        TaskRecord *t = h->items[i];

        for (;;) {
                uint32_t c = 2 * i + 1;

                if (c >= h->n)
                        break;
                if (c + 1 < h->n && less(h->items[c + 1], h->items[c]))
                        c++;
                if (!less(h->items[c], t))
                        break;
                heap_set(h, i, h->items[c]);
                i = c;
        }
        heap_set(h, i, t);
}

static int heap_reserve(Heap *h, size_t want) {
        TaskRecord **items;
        size_t cap;

        if (want <= h->cap)
                return 0;
        if (want > UINT32_MAX / 2)
                return -ENOMEM;
        cap = h->cap ? (size_t) h->cap * 2 : HEAP_CAP_MIN;
        while (cap < want)
                cap *= 2;
        items = realloc(h->items, cap * sizeof(TaskRecord *));
        if (!items)
                return -ENOMEM;
        h->items = items;
        h->cap = (uint32_t) cap;
        return 0;
}

/* Caller reserved room first. */
static void heap_push(Heap *h, TaskRecord *t, HeapLessFn less) {
        h->items[h->n] = t;
        node_of(t)->heap_idx = h->n;
        h->n++;
        heap_sift_up(h, h->n - 1, less);
}

static void heap_remove(Heap *h, uint32_t i, HeapLessFn less) {
        TaskRecord *last = h->items[--h->n];

        if (i < h->n) {
                heap_set(h, i, last);
                if (i > 0 && less(last, h->items[(i - 1) / 2]))
                        heap_sift_up(h, i, less);
                else
                        heap_sift_down(h, i, less);
        }

        /* A queue that drained after a burst gives its memory back; failing to shrink is harmless. */
        if (h->cap > HEAP_CAP_MIN && h->n < h->cap / 4) {
                TaskRecord **items = realloc(h->items, (size_t) (h->cap / 2) * sizeof(TaskRecord *));
                if (items) {
                        h->items = items;
                        h->cap /= 2;
                }
        }
}

static void heap_done(Heap *h) {
        free(h->items);
        *h = (Heap){};
}

/* ---- groups ---- */

static const char *record_group_name(const TaskRecord *t, bool *ret_is_cmd) {
        *ret_is_cmd = !t->task;
        return t->task ? t->task : t->cmd;
}

static Group *group_find(const Ledger *l, const TaskRecord *t, uint64_t *ret_hash) {
        bool is_cmd;
        const char *name = record_group_name(t, &is_cmd);
        uint64_t h = hash_string(l, name, is_cmd);

        if (ret_hash)
                *ret_hash = h;
        if (!l->groups.slots)
                return NULL;
        for (size_t i = h & l->groups.mask; l->groups.slots[i]; i = (i + 1) & l->groups.mask) {
                Group *g = l->groups.slots[i];
                if (g->hash == h && g->is_cmd == is_cmd && streq(g->name, name))
                        return g;
        }
        return NULL;
}

/* Finds or creates t's group; a new group starts empty (not in `active`). */
static int group_get(Ledger *l, const TaskRecord *t, Group **ret) {
        bool is_cmd;
        const char *name = record_group_name(t, &is_cmd);
        uint64_t h;
        Group *g = group_find(l, t, &h);
        size_t len;
        int r;

        if (g) {
                *ret = g;
                return 0;
        }
        r = table_reserve(&l->groups, l->groups.n + 1, l, group_hash);
        if (r < 0)
                return r;
        len = strlen(name);
        g = calloc(1, sizeof(Group) + len + 1);
        if (!g)
                return -ENOMEM;
        memcpy(g->name, name, len + 1);
        g->hash = h;
        g->is_cmd = is_cmd;
        table_add(&l->groups, h, g);
        l->n_empty_groups++;
        *ret = g;
        return 0;
}

static void group_free(Group *g) {
        heap_done(&g->heap);
        free(g);
}

/* Drops every empty group. Rebuilds the table from the active ones; skipped if that cannot be
 * allocated (empty groups only cost memory, never time in ledger_next_runnable). */
static void groups_prune(Ledger *l) {
        Table fresh = {};
        size_t want = l->n_active ? l->n_active : 1;

        if (table_reserve(&fresh, want, l, group_hash) < 0)
                return;
        for (size_t i = 0; i < l->n_active; i++)
                table_add(&fresh, l->active[i]->hash, l->active[i]);
        for (size_t i = 0; i <= l->groups.mask; i++) {
                Group *g = l->groups.slots[i];
                if (g && g->heap.n == 0)
                        group_free(g);
        }
        free(l->groups.slots);
        l->groups = fresh;
        l->n_empty_groups = 0;
}

static int active_reserve(Ledger *l) {
        Group **a;
        size_t cap;

        if (l->n_active < l->active_cap)
                return 0;
        cap = l->active_cap ? l->active_cap * 2 : 16;
        a = realloc(l->active, cap * sizeof(Group *));
        if (!a)
                return -ENOMEM;
        l->active = a;
        l->active_cap = cap;
        return 0;
}

static void group_deactivate(Ledger *l, Group *g) {
        Group *last = l->active[--l->n_active];

        l->active[g->active_idx] = last;
        last->active_idx = g->active_idx;
        l->n_empty_groups++;
        if (l->n_empty_groups > GROUPS_EMPTY_KEEP)
                groups_prune(l);
}

/* ---- the queue ---- */

/* Allocates what enqueue() will need, so that state changes happen only once nothing can fail. */
static int enqueue_reserve(Ledger *l, const TaskRecord *t, uint64_t now) {
        Group *g;
        int r;

        if (t->run_after > now)
                return heap_reserve(&l->delayed, (size_t) l->delayed.n + 1);

        r = group_get(l, t, &g);
        if (r < 0)
                return r;
        r = heap_reserve(&g->heap, (size_t) g->heap.n + 1);
        if (r < 0)
                return r;
        if (g->heap.n == 0)
                return active_reserve(l);
        return 0;
}

static void ready_push(Ledger *l, Group *g, TaskRecord *t) {
        if (g->heap.n == 0) {
                g->active_idx = l->n_active;
                l->active[l->n_active++] = g;
                l->n_empty_groups--;
        }
        heap_push(&g->heap, t, ready_less);
        node_of(t)->where = WHERE_READY;
}

/* After enqueue_reserve() with the same now. */
static void enqueue(Ledger *l, TaskRecord *t, uint64_t now) {
        if (t->run_after > now) {
                heap_push(&l->delayed, t, delayed_less);
                node_of(t)->where = WHERE_DELAYED;
                return;
        }
        ready_push(l, group_find(l, t, NULL), t);
}

static void dequeue(Ledger *l, TaskRecord *t) {
        Node *n = node_of(t);

        if (n->where == WHERE_READY) {
                Group *g = group_find(l, t, NULL);

                heap_remove(&g->heap, n->heap_idx, ready_less);
                if (g->heap.n == 0)
                        group_deactivate(l, g);
        } else if (n->where == WHERE_DELAYED)
                heap_remove(&l->delayed, n->heap_idx, delayed_less);
        n->where = WHERE_NONE;
}

/* Moves every delayed record due at `now` into its group. A record whose group cannot be allocated
 * stays in the delay heap and is tried again next time. */
static void promote_due(Ledger *l, uint64_t now) {
        while (l->delayed.n > 0) {
                TaskRecord *t = l->delayed.items[0];
                Group *g;

                if (t->run_after > now)
                        break;
                if (enqueue_reserve(l, t, now) < 0)
                        break;
                g = group_find(l, t, NULL);
                heap_remove(&l->delayed, 0, delayed_less);
                ready_push(l, g, t);
        }
}

/* ---- id order ---- */

static int order_cmp(const void *a, const void *b) {
        uint64_t x = ((const OrderEntry *) a)->id, y = ((const OrderEntry *) b)->id;
        return x < y ? -1 : x > y;
}

static void order_compact(Ledger *l) {
        size_t j = 0;

        for (size_t i = 0; i < l->order_n; i++)
                if (l->order[i].t)
                        l->order[j++] = l->order[i];
        l->order_n = j;
        l->order_dead = 0;
        if (l->order_unsorted) {
                qsort(l->order, l->order_n, sizeof(OrderEntry), order_cmp);
                l->order_unsorted = false;
        }
        if (l->order_cap > ORDER_CAP_MIN && l->order_n < l->order_cap / 4) {
                OrderEntry *o = realloc(l->order, l->order_cap / 2 * sizeof(OrderEntry));
                if (o) {
                        l->order = o;
                        l->order_cap /= 2;
                }
        }
}

static int order_reserve(Ledger *l) {
        OrderEntry *o;
        size_t cap;

        if (l->order_n < l->order_cap)
                return 0;
        if (l->order_dead > 0 && !l->iterating) {
                order_compact(l);
                if (l->order_n < l->order_cap)
                        return 0;
        }
        cap = l->order_cap ? l->order_cap * 2 : ORDER_CAP_MIN;
        if (cap > SIZE_MAX / sizeof(OrderEntry))
                return -ENOMEM;
        o = realloc(l->order, cap * sizeof(OrderEntry));
        if (!o)
                return -ENOMEM;
        l->order = o;
        l->order_cap = cap;
        return 0;
}

/* After order_reserve(). */
static void order_append(Ledger *l, TaskRecord *t) {
        if (l->order_n > 0 && t->id < l->order_max_id)
                l->order_unsorted = true;
        if (t->id > l->order_max_id)
                l->order_max_id = t->id;
        l->order[l->order_n++] = (OrderEntry){.id = t->id, .t = t};
}

static void order_remove(Ledger *l, const TaskRecord *t) {
        size_t i;

        if (l->order_unsorted && !l->iterating)
                order_compact(l);
        if (l->order_unsorted) {
                for (i = 0; i < l->order_n && l->order[i].t != t; i++)
                        ;
        } else {
                size_t lo = 0, hi = l->order_n;

                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        if (l->order[mid].id < t->id)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                i = lo;
        }
        if (i >= l->order_n || l->order[i].t != t)
                return;
        l->order[i].t = NULL;
        l->order_dead++;
        if (!l->iterating && l->order_dead > 32 && l->order_dead > l->order_n / 2)
                order_compact(l);
}

/* ---- records ---- */

static void record_destroy(TaskRecord *t) {
        Node *n = node_of(t);

        if (n->kind == KIND_ADOPTED) {
                t->priv = NULL;
                free(n);
                task_record_free(t);
                return;
        }
        free(t->unit);
        free(t->last.error);
        free(t); /* the Entry: record, node and packed strings */
}

void task_record_free(TaskRecord *t) {
        if (!t)
                return;
        free(t->task);
        free(t->cmd);
        strv_free(t->args);
        free(t->stdin_data);
        free(t->key);
        free(t->submitter);
        free(t->unit);
        free(t->last.error);
        free(t);
}

int task_result_set_error(TaskResult *r, const char *error) {
        char *e = NULL;

        if (error && *error) {
                e = strndup(error, TASK_ERROR_BYTES_MAX);
                if (!e)
                        return -ENOMEM;
        }
        free(r->error);
        r->error = e;
        return 0;
}

void task_result_set_word(TaskResult *r, const char *word) {
        size_t n = word ? strnlen(word, sizeof(r->result) - 1) : 0;

        memcpy(r->result, word ? word : "", n);
        r->result[n] = 0;
}

int task_result_from_run(TaskResult *ret, const RunResult *run) {
        TaskResult res = {
                .cpu_usec = run->cpu_usec,
                .memory_peak = run->memory_peak,
                .exit_status = run->exit_status,
                .signal = run->signal,
                .has_exit_status = run->has_exit_status != 0,
        };
        size_t n = strnlen(run->result, sizeof(res.result) - 1); /* res.result is the shorter */
        size_t e = strnlen(run->error, TASK_ERROR_BYTES_MAX);

        memcpy(res.result, run->result, n);
        res.result[n] = 0;
        if (e > 0) {
                /* Copied by length: a RunResult's error fills its buffer and may lack a NUL. */
                res.error = malloc(e + 1);
                if (!res.error)
                        return -ENOMEM;
                memcpy(res.error, run->error, e);
                res.error[e] = 0;
        }
        *ret = res;
        return 0;
}

static void set_state(Ledger *l, TaskRecord *t, TaskState state) {
        l->by_state[t->state]--;
        l->by_state[state]++;
        t->state = state;
}

/* Runs and frees every watch on t. Watches are moved to a local list first: a callback may free
 * another watch (it is then unlinked from that list and never fires), add new watches (they wait for
 * the next event), or forget t (t stays allocated until the outermost firing is done). */
static void fire_watches(TaskRecord *t, bool forgotten) {
        Node *n = node_of(t);
        LedgerWatch *pending = n->watches, *w;

        if (!pending)
                return;
        n->watches = NULL;
        for (w = pending; w; w = w->next)
                w->head = &pending;

        n->firing++;
        while ((w = pending)) {
                pending = w->next;
                if (pending)
                        pending->prev = NULL;
                w->head = NULL;
                w->prev = w->next = NULL;
                w->firing = true;
                w->fn(t, forgotten, w->userdata);
                free(w);
        }
        n->firing--;
}

/* Frees t if it was removed from the ledger and no callback runs for it any more. Returns true if
 * freed. */
static bool record_reap(TaskRecord *t) {
        Node *n = node_of(t);

        if (!n->doomed || n->firing > 0)
                return false;
        record_destroy(t);
        return true;
}

/* Takes t out of every index and the queue, tells its watchers, frees it. */
static void record_remove(Ledger *l, TaskRecord *t) {
        Node *n = node_of(t);

        dequeue(l, t);
        table_remove(&l->by_id, hash_id(t->id), t, l, record_id_hash);
        if (t->key)
                table_remove(&l->by_key, hash_key(l, t->submitter, t->key), t, l, record_key_hash);
        order_remove(l, t);
        l->by_state[t->state]--;
        n->doomed = true;

        fire_watches(t, true);
        (void) record_reap(t);
}

static void record_finalize(TaskRecord *t, uint64_t now) {
        t->finished_at = now;
        fire_watches(t, false);
        (void) record_reap(t);
}

/* Makes room in the indexes for one more record. */
static int indexes_reserve(Ledger *l, bool keyed) {
        int r;

        r = table_reserve(&l->by_id, l->by_id.n + 1, l, record_id_hash);
        if (r < 0)
                return r;
        if (keyed) {
                r = table_reserve(&l->by_key, l->by_key.n + 1, l, record_key_hash);
                if (r < 0)
                        return r;
        }
        return order_reserve(l);
}

/* After indexes_reserve(). */
static void indexes_add(Ledger *l, TaskRecord *t) {
        table_add(&l->by_id, hash_id(t->id), t);
        if (t->key)
                table_add(&l->by_key, hash_key(l, t->submitter, t->key), t);
        order_append(l, t);
        l->by_state[t->state]++;
        if (t->id >= l->next_id)
                l->next_id = t->id + 1;
}

/* ---- public ---- */

int ledger_new(Ledger **ret) {
        Ledger *l;
        uint64_t k[2];

        if (!ret)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        if (getrandom(k, sizeof(k), GRND_NONBLOCK) != (ssize_t) sizeof(k)) {
                /* Early boot without entropy: keys become guessable, lookups stay correct. */
                k[0] = now_usec(CLOCK_MONOTONIC) ^ (uint64_t) (uintptr_t) l;
                k[1] = now_usec(CLOCK_REALTIME) ^ ((uint64_t) getpid() << 32);
        }
        l->hash_k0 = k[0];
        l->hash_k1 = k[1];
        l->next_id = 1;
        *ret = l;
        return 0;
}

Ledger *ledger_free(Ledger *l) {
        if (!l)
                return NULL;

        /* Whoever still waits on a record learns that it is gone (and drops its watch pointer). */
        l->iterating++;
        for (size_t i = 0; i < l->order_n; i++) {
                TaskRecord *t = l->order[i].t;
                if (t) {
                        fire_watches(t, true);
                        (void) record_reap(t); /* a callback forgot it */
                }
        }
        for (size_t i = 0; i < l->order_n; i++)
                if (l->order[i].t)
                        record_destroy(l->order[i].t);

        if (l->groups.slots)
                for (size_t i = 0; i <= l->groups.mask; i++)
                        if (l->groups.slots[i])
                                group_free(l->groups.slots[i]);
        free(l->groups.slots);
        free(l->by_id.slots);
        free(l->by_key.slots);
        free(l->active);
        free(l->order);
        heap_done(&l->delayed);
        free(l);
        return NULL;
}

void ledger_set_next_id(Ledger *l, uint64_t next_id) {
        /* Ids never repeat: never move backwards past what was handed out or adopted. */
        if (next_id > l->next_id)
                l->next_id = next_id;
}

static int submission_check(const TaskSubmission *sub) {
        if (!sub || !sub->submitter)
                return -EINVAL;
        if (!sub->task == !sub->cmd) /* exactly one of them */
                return -EINVAL;
        if (sub->n_args > TASK_ARGS_MAX)
                return -E2BIG;
        if (sub->n_args > 0 && !sub->args)
                return -EINVAL;
        for (size_t i = 0; i < sub->n_args; i++)
                if (!sub->args[i])
                        return -EINVAL;
        if (sub->stdin_len > 0 && !sub->stdin_data)
                return -EINVAL;
        return 0;
}

/* Adds len to *size, failing on overflow. */
static bool size_add(size_t *size, size_t len) {
        return !__builtin_add_overflow(*size, len, size);
}

static char *pack(char **cursor, const void *data, size_t len) {
        char *p = *cursor;

        memcpy(p, data, len);
        p[len] = 0;
        *cursor = p + len + 1;
        return p;
}

/* One allocation for record, node and strings. */
static int record_new_packed(const TaskSubmission *sub, TaskRecord **ret) {
        const char *name = sub->task ? sub->task : sub->cmd;
        size_t size = sizeof(Entry), name_len = strlen(name), sub_len = strlen(sub->submitter);
        size_t key_len = sub->key ? strlen(sub->key) : 0;
        bool ok = true;
        Entry *e;
        char *p;

        ok = ok && size_add(&size, (sub->n_args + 1) * sizeof(char *));
        ok = ok && size_add(&size, name_len + 1);
        for (size_t i = 0; i < sub->n_args; i++)
                ok = ok && size_add(&size, strlen(sub->args[i]) + 1);
        if (sub->key)
                ok = ok && size_add(&size, key_len + 1);
        ok = ok && size_add(&size, sub_len + 1);
        if (sub->stdin_data)
                ok = ok && size_add(&size, sub->stdin_len) && size_add(&size, 1);
        if (!ok)
                return -E2BIG;

        e = malloc(size);
        if (!e)
                return -ENOMEM;
        memset(e, 0, sizeof(Entry));
        e->rec.priv = &e->node;
        e->node.kind = KIND_PACKED;

        e->rec.args = (char **) (e + 1);
        p = (char *) (e->rec.args + sub->n_args + 1);
        if (sub->task)
                e->rec.task = pack(&p, sub->task, name_len);
        else
                e->rec.cmd = pack(&p, sub->cmd, name_len);
        for (size_t i = 0; i < sub->n_args; i++)
                e->rec.args[i] = pack(&p, sub->args[i], strlen(sub->args[i]));
        e->rec.args[sub->n_args] = NULL;
        e->rec.n_args = sub->n_args;
        if (sub->key)
                e->rec.key = pack(&p, sub->key, key_len);
        e->rec.submitter = pack(&p, sub->submitter, sub_len);
        if (sub->stdin_data) {
                e->rec.stdin_data = pack(&p, sub->stdin_data, sub->stdin_len);
                e->rec.stdin_len = sub->stdin_len;
        }

        *ret = &e->rec;
        return 0;
}

int ledger_submit(Ledger *l, const TaskSubmission *sub, uint64_t now, TaskRecord **ret, bool *ret_existing) {
        TaskRecord *t;
        int r;

        if (!l)
                return -EINVAL;
        r = submission_check(sub);
        if (r < 0)
                return r;

        if (sub->key) {
                t = table_find_key(l, sub->submitter, sub->key);
                if (t) {
                        if (ret)
                                *ret = t;
                        if (ret_existing)
                                *ret_existing = true;
                        return 0;
                }
        }

        r = record_new_packed(sub, &t);
        if (r < 0)
                return r;
        t->id = l->next_id;
        t->priority = sub->priority;
        t->state = TASK_QUEUED;
        t->max_attempts = sub->max_attempts;
        t->created_at = now;
        t->run_after = sub->run_after ? sub->run_after : now;

        r = indexes_reserve(l, sub->key);
        if (r >= 0)
                r = enqueue_reserve(l, t, now);
        if (r < 0) {
                record_destroy(t);
                return r;
        }
        indexes_add(l, t);
        enqueue(l, t, now);
        l->submitted_total++;

        if (ret)
                *ret = t;
        if (ret_existing)
                *ret_existing = false;
        return 0;
}

int ledger_adopt(Ledger *l, TaskRecord *t) {
        Node *n;
        int r;

        if (!l || !t || t->id == 0 || !t->submitter)
                return -EINVAL;
        if (t->state < 0 || t->state >= _TASK_STATE_MAX)
                return -EINVAL;
        if (!t->task == !t->cmd)
                return -EINVAL;
        if (t->n_args > 0 && !t->args)
                return -EINVAL;
        if (table_find_id(&l->by_id, t->id))
                return -EEXIST;
        if (t->key && table_find_key(l, t->submitter, t->key))
                return -EEXIST;

        r = indexes_reserve(l, t->key);
        if (r < 0)
                return r;
        if (t->state == TASK_QUEUED) {
                /* Not knowing the time, every queued record waits in the delay heap; the next
                 * ledger_next_runnable() moves the due ones (ledger_next_wakeup() says when). */
                r = heap_reserve(&l->delayed, (size_t) l->delayed.n + 1);
                if (r < 0)
                        return r;
        }
        if (!t->args) {
                /* Consumers walk args up to its NULL terminator. */
                t->args = calloc(1, sizeof(char *));
                if (!t->args)
                        return -ENOMEM;
        }
        n = calloc(1, sizeof(Node));
        if (!n)
                return -ENOMEM;
        n->kind = KIND_ADOPTED;
        t->priv = n;

        indexes_add(l, t);
        if (t->state == TASK_QUEUED) {
                heap_push(&l->delayed, t, delayed_less);
                n->where = WHERE_DELAYED;
        }
        return 0;
}

TaskRecord *ledger_get(Ledger *l, uint64_t id) {
        return l ? table_find_id(&l->by_id, id) : NULL;
}

TaskRecord *ledger_next_runnable(Ledger *l, uint64_t now, bool (*can_start)(const TaskRecord *t, void *ud),
                                 void *ud) {
        TaskRecord *best = NULL;

        promote_due(l, now);

        /* Ask only about candidates that would beat the best one allowed so far. */
        for (size_t i = 0; i < l->n_active; i++) {
                TaskRecord *c = l->active[i]->heap.items[0];

                if (best && !ready_less(c, best))
                        continue;
                if (can_start && !can_start(c, ud))
                        continue;
                best = c;
        }
        return best;
}

/* Records adopted as queued, or whose time came since the last ledger_next_runnable(), may still sit
 * in the delay heap: their run_after (already past) is returned, so the caller wakes up at once. */
uint64_t ledger_next_wakeup(Ledger *l) {
        return l->delayed.n > 0 ? l->delayed.items[0]->run_after : UINT64_MAX;
}

int ledger_mark_running(Ledger *l, TaskRecord *t, uint64_t now) {
        if (!l || !t || node_of(t)->doomed)
                return -EINVAL;
        if (t->state != TASK_QUEUED)
                return -EINVAL;

        dequeue(l, t);
        set_state(l, t, TASK_RUNNING);
        t->attempts++;
        t->started_at = now;
        free(t->unit);
        t->unit = NULL;
        return 0;
}

int ledger_mark_finished(Ledger *l, TaskRecord *t, const RunResult *r, uint64_t now, uint64_t backoff_sec) {
        char word[sizeof(r->result)];
        TaskState next;
        TaskResult res;
        int k;

        if (!l || !t || !r || node_of(t)->doomed)
                return -EINVAL;
        if (t->state != TASK_RUNNING)
                return -EINVAL;

        /* The whole word decides; the record keeps it cut to its TaskResult (see ledger.h). */
        memcpy(word, r->result, sizeof(word) - 1);
        word[sizeof(word) - 1] = 0;

        if (streq(word, "success"))
                next = TASK_SUCCEEDED;
        else if (streq(word, "cancelled"))
                next = TASK_CANCELLED;
        else if (t->attempts < t->max_attempts)
                next = TASK_QUEUED;
        else
                next = TASK_FAILED;

        k = task_result_from_run(&res, r);
        if (k < 0)
                return k;

        if (next == TASK_QUEUED) {
                uint64_t delay =
                        backoff_sec > UINT64_MAX / USEC_PER_SEC ? UINT64_MAX : backoff_sec * USEC_PER_SEC;
                uint64_t run_after = now > UINT64_MAX - delay ? UINT64_MAX : now + delay;
                uint64_t saved = t->run_after;

                t->run_after = run_after;
                k = enqueue_reserve(l, t, now);
                if (k < 0) {
                        t->run_after = saved;
                        free(res.error);
                        return k;
                }
        }

        free(t->last.error);
        t->last = res;
        t->launch_pending = false;
        set_state(l, t, next);
        if (next == TASK_QUEUED)
                enqueue(l, t, now);
        else
                record_finalize(t, now);
        return 0;
}

int ledger_cancel(Ledger *l, TaskRecord *t, uint64_t now) {
        if (!l || !t || node_of(t)->doomed)
                return -EINVAL;
        if (t->state == TASK_RUNNING)
                return -EBUSY;
        if (task_state_is_final(t->state))
                return -EALREADY;

        dequeue(l, t);
        set_state(l, t, TASK_CANCELLED);
        record_finalize(t, now);
        return 0;
}

int ledger_retry(Ledger *l, TaskRecord *t, uint64_t now) {
        uint64_t saved;
        int r;

        if (!l || !t || node_of(t)->doomed)
                return -EINVAL;
        if (t->state != TASK_FAILED && t->state != TASK_CANCELLED)
                return -EINVAL;

        saved = t->run_after;
        t->run_after = now;
        r = enqueue_reserve(l, t, now);
        if (r < 0) {
                t->run_after = saved;
                return r;
        }
        /* t->last stays: it explains the previous failure until the next run ends. */
        t->attempts = 0;
        t->finished_at = 0;
        set_state(l, t, TASK_QUEUED);
        enqueue(l, t, now);
        return 0;
}

int ledger_forget(Ledger *l, TaskRecord *t) {
        if (!l || !t)
                return -EINVAL;
        if (node_of(t)->doomed)
                return -ENOENT;
        if (t->state == TASK_RUNNING)
                return -EBUSY;

        record_remove(l, t);
        return 0;
}

size_t ledger_list(Ledger *l, int state, size_t limit, TaskRecord **out) {
        size_t n = 0;

        if (!l || limit == 0 || state >= _TASK_STATE_MAX)
                return 0;
        if (l->order_unsorted && !l->iterating)
                order_compact(l);

        for (size_t i = 0; i < l->order_n && n < limit; i++) {
                TaskRecord *t = l->order[i].t;

                if (t && (state < 0 || (int) t->state == state))
                        out[n++] = t;
        }
        return n;
}

size_t ledger_purge(Ledger *l, uint64_t before) {
        size_t n = 0;

        if (!l)
                return 0;

        /* Watch callbacks run while we walk: entries must not move until we are done. */
        l->iterating++;
        for (size_t i = 0; i < l->order_n; i++) {
                TaskRecord *t = l->order[i].t;

                if (!t || (t->state != TASK_SUCCEEDED && t->state != TASK_CANCELLED))
                        continue;
                if (t->finished_at >= before)
                        continue;
                record_remove(l, t);
                n++;
        }
        l->iterating--;

        if (!l->iterating && (l->order_unsorted || (l->order_dead > 32 && l->order_dead > l->order_n / 2)))
                order_compact(l);
        return n;
}

void ledger_stats(Ledger *l, LedgerStats *ret) {
        *ret = (LedgerStats){
                .queued = l->by_state[TASK_QUEUED],
                .running = l->by_state[TASK_RUNNING],
                .succeeded = l->by_state[TASK_SUCCEEDED],
                .failed = l->by_state[TASK_FAILED],
                .cancelled = l->by_state[TASK_CANCELLED],
                .submitted_total = l->submitted_total,
        };
}

int ledger_watch(Ledger *l, TaskRecord *t, LedgerWatchFn fn, void *userdata, LedgerWatch **ret) {
        Node *n;
        LedgerWatch *w;

        if (!l || !t || !fn)
                return -EINVAL;
        n = node_of(t);
        if (n->doomed)
                return -ENOENT;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fn = fn;
        w->userdata = userdata;
        w->head = &n->watches;
        w->next = n->watches;
        if (w->next)
                w->next->prev = w;
        n->watches = w;

        if (ret)
                *ret = w;
        return 0;
}

LedgerWatch *ledger_watch_free(LedgerWatch *w) {
        if (!w)
                return NULL;
        if (w->firing)
                return NULL; /* its own callback runs: the ledger frees it right after */

        if (w->prev)
                w->prev->next = w->next;
        else
                *w->head = w->next;
        if (w->next)
                w->next->prev = w->prev;
        free(w);
        return NULL;
}
