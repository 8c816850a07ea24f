/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * MESSAGE_ID= of the daemons' important events: fixed forever (alerts and saved journal queries name
 * them), each explained in catalog/asynctask.catalog, which journalctl -x shows under the message.
 * A new event gets a new id (systemd-id128 new) and a catalog entry; an id is never reused.
 */

/* A task failed for good: its last attempt failed (or was lost), no attempt is left. */
#define MESSAGE_ID_TASK_FAILED "240bac297c9043d2ba28b4a257a9d216"
/* A run was lost: the launcher no longer knew it, or the launch could not be sent. */
#define MESSAGE_ID_TASK_LOST "98101e05bc9442c1971d2a4f819bb3ed"
/* The durable store (MySQL) became unavailable: submissions are refused until it is back. */
#define MESSAGE_ID_STORE_DOWN "957aa5e3886244629b59db22d99e3dae"
/* The durable store is available again. */
#define MESSAGE_ID_STORE_UP "f79e984cf49347e89a5ba84b46c54bc1"
/* The front lost its connection to the launcher: nothing starts, submissions are refused. */
#define MESSAGE_ID_LAUNCHER_DOWN "368afd28b997401faef25b44b5111e5e"
/* The front is connected to the launcher again (also at startup). */
#define MESSAGE_ID_LAUNCHER_UP "7b88e4d56a3540a7a2515f7517b6a578"
/* A reload failed: the previous configuration stays in effect. */
#define MESSAGE_ID_RELOAD_FAILED "572cab92a4de4a38a021c4cb66efebf2"
/* A node of a multi-host setup stopped answering (for the multi-host work; not logged yet). */
#define MESSAGE_ID_NODE_DEAD "5ef4e03ced6a4d96938b7f21a4d84b75"
