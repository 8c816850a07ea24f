/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * This front as one node of several sharing one MySQL/MariaDB database (docs/cluster.md): its
 * heartbeat every heartbeat_sec (which renews the claims of its rows and the leader row), the
 * leader's report of dead nodes, polls for claims while this node has room, and the blocks of ids
 * its submissions take. The database work runs on the store's thread (store-cluster.c); this is the
 * loop's side. Only with the MySQL store.
 */

#include <systemd/sd-event.h>

#include "front/dispatcher.h"
#include "front/ledger.h"
#include "front/store.h"
#include "shared/config.h"

typedef struct Cluster Cluster;

/* cfg is borrowed: cluster_set_config() replaces it. */
int cluster_new(sd_event *event, Store *store, Ledger *ledger, Dispatcher *dispatcher, const Config *cfg,
                Cluster **ret);
Cluster *cluster_free(Cluster *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Cluster *, cluster_free);

void cluster_set_config(Cluster *c, const Config *cfg);
