# SPDX-License-Identifier: MIT
"""The memory store across a clean restart: with a state directory (StateDirectory= in the unit,
--state-dir by hand) the front saves its ledger when it stops and loads it when it starts, so an
upgrade or `systemctl restart` loses no queued, running or failed task."""

import os

from conftest import Daemons, standard_config


def start_with_state_dir(env):
    main, tasks = standard_config(env)
    env.write_config(main, tasks)
    state = os.path.join(env.dir, "state")
    os.makedirs(state, exist_ok=True)
    d = Daemons(env)
    d.daemon_env["STATE_DIRECTORY"] = state
    return d.start(), state


def test_clean_restart_keeps_queued_running_and_failed_tasks(env):
    d, state = start_with_state_dir(env)
    try:
        with env.client() as c:
            delayed = c.submit("touch", ["after-restart"], delay=3, key="k1")
            failed = c.submit("exit", ["5"])
            assert c.wait_final(failed)["state"] == "failed"
            running = c.submit("sleeper", ["across", "3"])
            c.wait_state(running, "running")
        assert d.stop_front() == 0
        assert os.path.exists(os.path.join(state, "ledger.snapshot"))
        d.start_front()
        assert not os.path.exists(os.path.join(state, "ledger.snapshot")), "the snapshot is loaded once"
        with env.client() as c:
            assert c.status(failed)["state"] == "failed"
            assert c.status(failed)["exit_status"] == 5
            again = c.call({"op": "submit", "task": "touch", "args": ["after-restart"], "key": "k1"})
            assert again["id"] == delayed and again.get("existing") is True
            assert c.wait_final(running)["state"] == "succeeded", "the run that went on meanwhile is recorded"
            assert c.wait_final(delayed)["state"] == "succeeded"
            assert c.submit("touch", ["new"]) > running, "ids continue"
        assert env.ev_exists("after-restart")
    finally:
        d.stop()


def test_without_a_state_dir_nothing_is_kept(env):
    main, tasks = standard_config(env)
    env.write_config(main, tasks)
    d = Daemons(env).start()
    try:
        with env.client() as c:
            tid = c.submit("touch", ["never"], delay=60)
        d.stop_front()
        d.start_front()
        with env.client() as c:
            assert c.status(tid)["code"] == "not_found"
    finally:
        d.stop()
