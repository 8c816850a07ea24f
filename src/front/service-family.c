/* SPDX-License-Identifier: MIT */
/*
 * Status and wait of an "every_host" submission's parent (docs/cluster.md): the parent and its runs,
 * one per node, as one answer. No host holds a parent in memory (its runs end on several hosts, and
 * the host that ends the last one finishes the parent in the database), so each status and each
 * poll of a wait reads the parent and its runs from the database again.
 */
#include <errno.h>
#include <cjson/cJSON.h>

#include "front/response.h"
#include "front/service-internal.h"
#include "shared/json-util.h"
#include "shared/util.h"

const TaskRecord *service_family_parent(const Request *req, const StoreRead *result) {
        for (size_t i = 0; i < result->n_records; i++) {
                const TaskRecord *t = result->records[i];

                if (t && t->id == req->id && t->parent_id == t->id)
                        return t;
        }
        return NULL;
}

/* The parent's record, with "children": [{"id", "node", "state", "result"}, ...] in id order. */
static cJSON *family_obj(const TaskRecord *parent, const StoreRead *result) {
        _cleanup_(cjson_deletep) cJSON *obj = response_ok_task(parent);
        cJSON *children = obj ? cJSON_AddArrayToObject(obj, "children") : NULL;

        if (!children)
                return NULL;
        for (size_t i = 0; i < result->n_records; i++) {
                const TaskRecord *t = result->records[i];
                cJSON *child;

                if (!t || t->parent_id != parent->id || t->id == parent->id)
                        continue;
                child = cJSON_CreateObject();
                if (!child)
                        return NULL;
                if (!cJSON_AddItemToArray(children, child)) {
                        cJSON_Delete(child);
                        return NULL;
                }
                if (!cJSON_AddNumberToObject(child, "id", (double) t->id) ||
                    !cJSON_AddStringToObject(child, "node", t->node ? t->node : "") ||
                    !cJSON_AddStringToObject(child, "state", task_state_to_string(t->state)) ||
                    (t->last.result[0] && !cJSON_AddStringToObject(child, "result", t->last.result)))
                        return NULL;
        }
        return TAKE_PTR(obj);
}

int service_family_answer(Service *s, ServiceCall *c, const Identity *id, const Request *req,
                          const StoreRead *result, bool wait_over) {
        const TaskRecord *parent = service_family_parent(req, result);
        char what[64], message[256], *line;
        size_t len = 0;

        if (!parent)
                return -ENOENT;
        if (!policy_owns(id, parent->submitter) && !service_is_admin(s, id)) {
                snprintf(what, sizeof(what), "of task %llu", (unsigned long long) parent->id);
                service_log_refusal(id, req->op, what);
                snprintf(message, sizeof(message), "task %llu belongs to another submitter",
                         (unsigned long long) parent->id);
                service_answer_call_error(c, ERR_FORBIDDEN, message);
                return 0;
        }
        if (req->op != OP_STATUS && req->op != OP_WAIT) {
                snprintf(message, sizeof(message),
                         "task %llu is the parent of one run on each host; '%s' applies to its runs (their "
                         "ids are in its status)",
                         (unsigned long long) parent->id, request_op_to_string(req->op));
                service_answer_call_error(c, ERR_BAD_REQUEST, message);
                return 0;
        }
        if (req->op == OP_WAIT && !task_state_is_final(parent->state) && !wait_over && !s->shutting_down &&
            !(req->has_timeout && req->timeout_usec == 0))
                return 1;
        line = response_finish(family_obj(parent, result), &len);
        service_call_answer(c, line, len);
        return 0;
}
