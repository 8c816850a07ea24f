/* SPDX-License-Identifier: MIT */
/* Placeholder until the MySQL store lands: the front refuses "store": {"type": "mysql"} clearly. */
#include "store.h"

int store_open(const Config *cfg, sd_event *event, Ledger *l, Store **ret) {
        return -EOPNOTSUPP;
}

Store *store_free(Store *s) {
        return NULL;
}

int store_insert(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        return -EOPNOTSUPP;
}

int store_update(Store *s, const TaskRecord *t, StoreDoneFn done, void *userdata) {
        return -EOPNOTSUPP;
}

int store_delete(Store *s, uint64_t id, StoreDoneFn done, void *userdata) {
        return -EOPNOTSUPP;
}

int store_purge(Store *s, uint64_t finished_before, StoreDoneFn done, void *userdata) {
        return -EOPNOTSUPP;
}

bool store_available(Store *s) {
        return false;
}
