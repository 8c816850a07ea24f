# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Scenario cockpit-page of the e2e suite (sourced by tests/e2e/run, which has the helpers): the
# cockpit-asynctask package in the container's real Cockpit (cockpit-ws, cockpit-bridge and
# cockpit-system are in the rootfs), driven from Debian's Chromium by tests/e2e/cockpit/page-test.mjs.
#
# The container has a network namespace of its own (--private-network). The browser runs on the
# host, in that namespace (nsenter -n): it reaches Cockpit at 127.0.0.1:9090 as a local browser
# would, with no port forwarded and nothing of the browser installed in the container.

E2E_COCKPIT_ADMIN=e2e-admin  # in group sudo: Cockpit's administrative access makes it root
E2E_COCKPIT_USER=e2e-web     # may submit page-hello, nothing more
E2E_COCKPIT_PASSWORD=e2e-Cockpit-7q
E2E_COCKPIT_MARKER=page-fail-marker

# The screenshots of the overview and of a task's page stay in the build tree, whatever becomes of
# the work directory.
E2E_COCKPIT_SHOTS=${E2E_COCKPIT_SHOTS:-$BUILDDIR/e2e/cockpit-page}

s_cockpit_page() {
        ensure_front || return 1
        local chromium=${CHROMIUM:-/usr/bin/chromium}
        command -v node >/dev/null || fail "node is missing (scripts/install-deps all)" || return 1
        [[ -x $chromium ]] || fail "$chromium is missing (scripts/install-deps all)" || return 1
        [[ -f $HERE/cockpit/node_modules/playwright-core/package.json ]] ||
                fail "playwright-core is missing: make e2e-build (npm ci in tests/e2e/cockpit)" || return 1

        pkg dpkg -i "/var/tmp/${E2E_COCKPIT_DEB##*/}" >"$WORK/dpkg-cockpit.log" 2>&1 ||
                fail "dpkg -i ${E2E_COCKPIT_DEB##*/}: $(cat "$WORK/dpkg-cockpit.log")" || return 1
        cti test -f /usr/share/cockpit/asynctask/manifest.json || fail "the page is not installed" || return 1

        # An admin (sudo) and a submitter, both with a password to log in to Cockpit with.
        local user
        for user in "$E2E_COCKPIT_ADMIN" "$E2E_COCKPIT_USER"; do
                cti getent passwd "$user" >/dev/null ||
                        cti useradd --create-home --shell /bin/bash "$user" || fail "useradd $user" || return 1
        done
        cti usermod -a -G sudo "$E2E_COCKPIT_ADMIN" || fail "usermod" || return 1
        printf '%s:%s\n' "$E2E_COCKPIT_ADMIN" "$E2E_COCKPIT_PASSWORD" "$E2E_COCKPIT_USER" "$E2E_COCKPIT_PASSWORD" |
                cti chpasswd || fail "chpasswd" || return 1

        # A task that fails with a line of output, and one the submitter may submit.
        cat >"$ROOT/etc/asynctask/tasks.d/80-page-fail.json" <<EOF
{"name": "page-fail", "exec": ["/bin/sh", "-c", "echo $E2E_COCKPIT_MARKER; exit 4"], "user": "nobody"}
EOF
        cat >"$ROOT/etc/asynctask/tasks.d/81-page-hello.json" <<EOF
{"name": "page-hello", "exec": ["/bin/echo", "hello"], "max_args": 2, "user": "nobody",
 "allow": {"users": ["$E2E_COCKPIT_USER"]}}
EOF
        # A task that says how far it is (STATUS=, again each second: a message whose sender has
        # already exited may not be matched to its unit) until the test lets it end.
        mkdir -p "$ROOT/usr/local/lib/asynctask-e2e"
        cat >"$ROOT/usr/local/lib/asynctask-e2e/page-progress" <<'EOF'
#!/bin/sh
n=0
while [ ! -e "/run/e2e-page-progress-$ASYNCTASK_ID.go" ] && [ "$n" -lt 300 ]; do
        systemd-notify STATUS="40% halfway there"
        sleep 1
        n=$((n + 1))
done
EOF
        chmod 0755 "$ROOT/usr/local/lib/asynctask-e2e/page-progress"
        cat >"$ROOT/etc/asynctask/tasks.d/82-page-progress.json" <<'EOF'
{"name": "page-progress", "exec": ["/usr/local/lib/asynctask-e2e/page-progress"], "user": "nobody"}
EOF
        cti systemctl reload asynctask.service || fail "reload with the page's tasks" || return 1
        local id rec
        id=$(submit page-fail) || fail "submit page-fail" || return 1
        rec=$(wait_final "$id" 30)
        [[ $(json_get state <<<"$rec") == failed ]] || fail "page-fail (task $id): $rec" || return 1

        cti systemctl start cockpit.socket || fail "cannot start cockpit.socket" || return 1
        wait_ct 30 sh -c 'ss -tlnH "sport = :9090" | grep -q .' || fail "nothing listens on port 9090" || return 1

        rm -rf "$E2E_COCKPIT_SHOTS"
        local rc=0
        timeout --kill-after=10 600 nsenter -t "$E2E_PID1" -n -- env COCKPIT_URL=http://127.0.0.1:9090 \
                CT_PID1="$E2E_PID1" ADMIN_USER="$E2E_COCKPIT_ADMIN" WEB_USER="$E2E_COCKPIT_USER" \
                E2E_PASSWORD="$E2E_COCKPIT_PASSWORD" FAILED_ID="$id" FAIL_MARKER="$E2E_COCKPIT_MARKER" \
                WEB_TASK=page-hello PROGRESS_TASK=page-progress SHOT_DIR="$WORK/cockpit-page" CHROMIUM="$chromium" \
                node "$HERE/cockpit/page-test.mjs" || rc=$?
        if [[ -d $WORK/cockpit-page ]]; then
                mkdir -p "$E2E_COCKPIT_SHOTS" && cp "$WORK"/cockpit-page/*.png "$E2E_COCKPIT_SHOTS/" 2>/dev/null
                echo "    screenshots: $E2E_COCKPIT_SHOTS (and $WORK/cockpit-page with E2E_KEEP=1)"
        fi
        ((rc == 0)) || fail "the browser test failed (exit $rc)" || return 1

        # Removing the page takes it out of Cockpit and leaves asynctask alone.
        pkg dpkg -r cockpit-asynctask >>"$WORK/dpkg-cockpit.log" 2>&1 || fail "dpkg -r cockpit-asynctask" || return 1
        cti test ! -e /usr/share/cockpit/asynctask || fail "/usr/share/cockpit/asynctask left after dpkg -r" || return 1
        cti asynctask ping >/dev/null || fail "asynctask does not answer after the page's removal" || return 1
        cti systemctl stop cockpit.socket cockpit.service 2>/dev/null
        return 0
}
