/* SPDX-License-Identifier: MIT */
#include "front/on-failure.h"
#include "front/response.h"
#include "shared/util.h"

const char *on_failure_task(const Config *cfg, const TaskDef *def, const TaskRecord *failed) {
        if (!failed->submitter || streq(failed->submitter, ON_FAILURE_SUBMITTER))
                return NULL;
        /* A task that has left the config still alerts through the main file's default. */
        return config_on_failure(cfg, def);
}

char *on_failure_stdin(const TaskRecord *failed, size_t *ret_len) {
        cJSON *obj = cJSON_CreateObject();

        if (!obj)
                return NULL;
        if (response_add_task(obj, failed) < 0) {
                cJSON_Delete(obj);
                return NULL;
        }
        return response_finish(obj, ret_len);
}
