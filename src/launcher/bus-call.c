/* SPDX-License-Identifier: MIT */
#include <stdarg.h>

#include "launcher/bus-call.h"
#include "shared/util.h"

/* PID 1 may be busy (many units starting at once); a call that gets no answer in this time fails
 * here rather than being waited for forever. */
#define BUS_CALL_TIMEOUT_USEC (60 * USEC_PER_SEC)

struct BusCall {
        BusCallQueue *q;
        BusCall *prev, *next; /* in q's queue while not sent */
        BusCall **owner;      /* the pointer that refers to us, cleared when we are done */
        sd_bus_message *m;
        sd_bus_message_handler_t callback;
        void *userdata;
        sd_bus_slot *slot; /* while in flight */
};

/* Frees c once it is out of the queue and not in flight. */
static void call_forget(BusCall *c) {
        if (c->owner)
                *c->owner = NULL;
        sd_bus_message_unref(c->m);
        free(c);
}

static void queue_unlink(BusCall *c) {
        BusCallQueue *q = c->q;

        if (c->prev)
                c->prev->next = c->next;
        else if (q->head == c)
                q->head = c->next;
        if (c->next)
                c->next->prev = c->prev;
        else if (q->tail == c)
                q->tail = c->prev;
        c->prev = c->next = NULL;
}

BusCall *bus_call_free(BusCall *c) {
        if (!c)
                return NULL;
        if (c->slot) {
                /* Cancelled in flight: dbus-daemon counts it until PID 1 answers, which BUS_CALLS_MAX's
                 * headroom absorbs. */
                c->slot = sd_bus_slot_unref(c->slot);
                c->q->n_in_flight--;
        } else
                queue_unlink(c);
        call_forget(c);
        return NULL;
}

void bus_call_queue_done(BusCallQueue *q) {
        while (q->head)
                bus_call_free(q->head);
}

static void queue_pump(BusCallQueue *q);

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        BusCall *c = userdata;
        BusCallQueue *q = c->q;
        sd_bus_message_handler_t callback = c->callback;
        void *data = c->userdata;

        /* Our slot reference is dropped here; sd-bus holds its own while dispatching. */
        c->slot = sd_bus_slot_unref(c->slot);
        q->n_in_flight--;
        call_forget(c);

        (void) callback(m, data, ret_error);
        queue_pump(q);
        return 0;
}

static int call_send(BusCall *c) {
        int r;

        r = sd_bus_call_async(c->q->bus, &c->slot, c->m, on_reply, c, BUS_CALL_TIMEOUT_USEC);
        if (r < 0)
                return r;
        c->q->n_in_flight++;
        return 0;
}

/* Sends what is queued while there is room. A call that cannot be sent gets its callback with NULL. */
static void queue_pump(BusCallQueue *q) {
        while (q->head && q->n_in_flight < BUS_CALLS_MAX) {
                BusCall *c = q->head;

                queue_unlink(c);
                if (call_send(c) < 0) {
                        sd_bus_message_handler_t callback = c->callback;
                        void *data = c->userdata;

                        call_forget(c);
                        (void) callback(NULL, data, NULL);
                }
        }
}

int bus_call_start(BusCallQueue *q, sd_bus_message *m, sd_bus_message_handler_t callback, void *userdata,
                   BusCall **owner) {
        BusCall *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (BusCall){.q = q, .m = sd_bus_message_ref(m), .callback = callback, .userdata = userdata};
        if (q->n_in_flight < BUS_CALLS_MAX && !q->head) {
                r = call_send(c);
                if (r < 0) {
                        call_forget(c);
                        return r;
                }
        } else {
                c->prev = q->tail;
                if (q->tail)
                        q->tail->next = c;
                else
                        q->head = c;
                q->tail = c;
        }
        c->owner = owner;
        if (owner)
                *owner = c;
        return 0;
}

int bus_call_manager(BusCallQueue *q, const char *method, sd_bus_message_handler_t callback, void *userdata,
                     BusCall **owner, const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(q->bus, &m, SYSTEMD_SERVICE, SYSTEMD_PATH, SYSTEMD_MANAGER,
                                           method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return r;
        return bus_call_start(q, m, callback, userdata, owner);
}

const char *bus_call_reply_error(sd_bus_message *m) {
        const sd_bus_error *e;

        if (!m)
                return "could not send the request to systemd";
        e = sd_bus_message_get_error(m);
        if (!e)
                return NULL;
        return e->message ?: e->name;
}

bool bus_call_reply_has_error(sd_bus_message *m, const char *name) {
        return m && sd_bus_message_is_method_error(m, name);
}

bool bus_call_reply_peer_left(sd_bus_message *m) {
        return bus_call_reply_has_error(m, "org.freedesktop.DBus.Error.NoReply") &&
               streq_ptr(sd_bus_message_get_sender(m), "org.freedesktop.DBus");
}
