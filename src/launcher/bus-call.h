/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Method calls to PID 1 on one bus connection, asynchronous, with a bound on how many are in flight:
 * dbus-daemon allows a connection 128 pending method calls on the system bus
 * (max_replies_per_connection) and refuses the next with LimitsExceeded. The rest wait in a queue and
 * are sent as replies come in, so that any number of launches at once works.
 */

#include <stdbool.h>
#include <systemd/sd-bus.h>

#define SYSTEMD_SERVICE "org.freedesktop.systemd1"
#define SYSTEMD_PATH    "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"

/* Well below dbus-daemon's 128: what a cancelled call still holds there until PID 1 answers. */
#define BUS_CALLS_MAX 64

typedef struct BusCall BusCall;

typedef struct BusCallQueue {
        sd_bus *bus;
        BusCall *head, *tail; /* not sent yet */
        unsigned n_in_flight;
} BusCallQueue;

/* Sends m (taking a reference) now, or once fewer than BUS_CALLS_MAX calls are in flight. callback
 * gets the reply, or NULL as message when the call could not be sent after all. *owner (owner may be
 * NULL) points at the call until it is answered or freed. A negative return: nothing was queued. */
int bus_call_start(BusCallQueue *q, sd_bus_message *m, sd_bus_message_handler_t callback, void *userdata,
                   BusCall **owner);

/* A method call on PID 1's manager object, its arguments appended as sd_bus_message_append() does. */
int bus_call_manager(BusCallQueue *q, const char *method, sd_bus_message_handler_t callback, void *userdata,
                     BusCall **owner, const char *types, ...);

/* Cancels a call, queued or in flight: its callback is not called. Returns NULL. */
BusCall *bus_call_free(BusCall *c);

/* Cancels every queued call. */
void bus_call_queue_done(BusCallQueue *q);

/* The text of a failed reply, or NULL when m is a success. m == NULL: the call could not be sent. */
const char *bus_call_reply_error(sd_bus_message *m);

bool bus_call_reply_has_error(sd_bus_message *m, const char *name);

/* PID 1 left the bus without answering (systemctl daemon-reexec): dbus-daemon itself says so with
 * NoReply. Not a call that timed out here, which sd-bus reports with the same name but no sender. A
 * call sent again waits in dbus-daemon until PID 1 is back on the bus. */
bool bus_call_reply_peer_left(sd_bus_message *m);
