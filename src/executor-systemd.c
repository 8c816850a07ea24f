/* SPDX-License-Identifier: MIT */
/* Placeholder until the systemd executor lands: refuses clearly. */
#include "executor.h"

int executor_systemd_new(sd_event *event, const ExecutorEvents *events, void *userdata, Executor **ret) {
        return -EOPNOTSUPP;
}
