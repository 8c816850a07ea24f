# SPDX-License-Identifier: MIT
"""The journal catalog: every MESSAGE_ID of src/shared/message-ids.h has an entry in
catalog/asynctask.catalog that systemd's own parser reads; and the front's events carry their
MESSAGE_ID= in the journal (captured through journald's native socket: JournalCapture). The store's
outage and return are in test_mysql.py, which has a database to stop."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import REPO, Daemons, JournalCapture, standard_config

MESSAGE_IDS_H = os.path.join(REPO, "src", "shared", "message-ids.h")
CATALOG = os.path.join(REPO, "catalog", "asynctask.catalog")


def message_ids():
    """{NAME: id} of message-ids.h."""
    with open(MESSAGE_IDS_H) as f:
        return dict(re.findall(r'^#define MESSAGE_ID_(\w+) "([0-9a-f]{32})"$', f.read(), re.M))


MESSAGE_ID = message_ids()

needs_capture = pytest.mark.skipif(not JournalCapture.available,
                                   reason="needs root and /run/systemd (a mount namespace for the journal socket)")


def test_every_message_id_has_a_catalog_entry_systemd_reads(tmp_path):
    ids = MESSAGE_ID.values()
    assert len(MESSAGE_ID) == 8 and len(set(ids)) == len(MESSAGE_ID), MESSAGE_ID
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        pytest.skip("journalctl not installed")
    catalog_dir = tmp_path / "usr" / "lib" / "systemd" / "catalog"
    catalog_dir.mkdir(parents=True)
    shutil.copy(CATALOG, catalog_dir)
    subprocess.run([journalctl, f"--root={tmp_path}", "--update-catalog"], check=True, timeout=60)
    p = subprocess.run([journalctl, f"--root={tmp_path}", "--list-catalog"], capture_output=True, text=True,
                       check=True, timeout=60)
    listed = {line.split()[0] for line in p.stdout.splitlines()}
    assert listed == set(ids), f"catalog entries {sorted(listed)}, message-ids.h {sorted(ids)}"


@needs_capture
def test_launcher_outage_reload_failure_and_failed_task_carry_their_message_ids(env):
    main, tasks = standard_config(env)
    env.write_config(main, tasks)
    journal = JournalCapture(env)
    d = Daemons(env, log_level="info", front_journal=journal)
    try:
        d.start()
        journal.wait(MESSAGE_ID=MESSAGE_ID["LAUNCHER_UP"])

        with env.client() as c:
            tid = c.submit("exit", ["3"])
            assert c.wait_final(tid)["state"] == "failed"
        e = journal.wait(MESSAGE_ID=MESSAGE_ID["TASK_FAILED"])
        assert e["ASYNCTASK_ID"] == str(tid) and e["ASYNCTASK_TASK"] == "exit", e
        assert "failed for good" in e["MESSAGE"] and e["PRIORITY"] == "4", e

        d.stop_launcher()
        e = journal.wait(MESSAGE_ID=MESSAGE_ID["LAUNCHER_DOWN"])
        assert e["PRIORITY"] == "4" and "reconnecting" in e["MESSAGE"], e
        d.start_launcher()
        d.wait_ready()
        e = journal.wait(count=2, MESSAGE_ID=MESSAGE_ID["LAUNCHER_UP"])
        assert e["PRIORITY"] == "6" and e["MESSAGE"].startswith("Connected to the launcher"), e

        env.write_task_file("zz-broken.json", '{"name": "broken", "exec": ["/bin/true"], "timeout_sec": "soon"}')
        with env.client() as c:
            r = c.call({"op": "reload"}, timeout=20)
        assert r["ok"] is False and r["code"] == "bad_request", r
        e = journal.wait(MESSAGE_ID=MESSAGE_ID["RELOAD_FAILED"])
        assert e["PRIORITY"] == "3" and "zz-broken.json" in e["MESSAGE"], e

        # Ordinary messages carry none; the others one of the catalog's.
        accepted = [x for x in journal.find(ASYNCTASK_ID=str(tid)) if x["MESSAGE"].startswith("Accepted task")]
        assert accepted and "MESSAGE_ID" not in accepted[0], accepted
        assert {x["MESSAGE_ID"] for x in journal.find() if "MESSAGE_ID" in x} <= set(MESSAGE_ID.values())
        # The code location is the caller's (the front's), not the logging function's.
        assert not journal.find(CODE_FILE="src/shared/log.c"), journal.find(CODE_FILE="src/shared/log.c")[0]
        listening = [x for x in journal.find() if x["MESSAGE"].startswith("Listening on")]
        assert listening and listening[0]["CODE_FILE"].startswith("src/front/") and \
            int(listening[0]["CODE_LINE"]) > 0, listening
        d.stop()
    finally:
        d.kill_all()
        journal.close()
