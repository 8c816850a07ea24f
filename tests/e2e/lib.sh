# shellcheck shell=bash
# SPDX-License-Identifier: MIT
# Helpers of the e2e suite: boot a container with a real systemd as PID 1, run commands in it, shut it
# down. Sourced by tests/e2e/run; needs root, systemd-nspawn (systemd-container) and nsenter.

E2E_BOOT_TIMEOUT=${E2E_BOOT_TIMEOUT:-90}
E2E_MACHINE=${E2E_MACHINE:-asynctask-e2e}

E2E_NSPAWN_PID=
E2E_PID1=

log() { printf 'e2e: %s\n' "$*" >&2; }

# Prepares $1/root as a private, writable copy of the cached rootfs $2: an overlay when the kernel has
# overlayfs (instant, the cache stays pristine), else a copy (reflinked where the file system can).
e2e_prepare_root() {
        local work=$1 cache=$2
        mkdir -p "$work/root" "$work/upper" "$work/ovlwork"
        if mount -t overlay overlay -o "lowerdir=$cache,upperdir=$work/upper,workdir=$work/ovlwork" \
                "$work/root" 2>/dev/null; then
                E2E_OVERLAY=1
        else
                E2E_OVERLAY=0
                cp -a --reflink=auto "$cache/." "$work/root/"
        fi
}

e2e_release_root() {
        local work=$1
        if [[ ${E2E_OVERLAY:-0} == 1 ]]; then
                umount -l "$work/root" 2>/dev/null || true
        fi
}

# Boots the container in the background and waits until systemd reports the system is up.
e2e_boot() {
        local root=$1 console_log=$2
        # --private-network: the container gets its own loopback, so 127.0.0.1:9501 inside cannot clash
        # with anything on the host. --register=no --keep-unit: there is no machined or systemd on the host.
        # A bound on the container's life, so that nothing outlives the suite: 30 minutes, times the
        # repeats asked for with E2E_REPEAT.
        # E2E_NSPAWN_ARGS: more options, split at spaces (tests/e2e/README.md).
        local -a extra
        read -r -a extra <<<"${E2E_NSPAWN_ARGS:-}"
        timeout --signal=TERM --kill-after=30 $((1800 * ${E2E_REPEAT:-1})) \
                systemd-nspawn -q -D "$root" -b --register=no --keep-unit -M "$E2E_MACHINE" --private-network \
                --console=pipe "${extra[@]}" </dev/null >"$console_log" 2>&1 &
        E2E_NSPAWN_PID=$!

        local deadline=$((SECONDS + E2E_BOOT_TIMEOUT)) pid
        while ((SECONDS < deadline)); do
                if ! kill -0 "$E2E_NSPAWN_PID" 2>/dev/null; then
                        log "systemd-nspawn exited during boot; console:"
                        cat "$console_log" >&2
                        return 1
                fi
                # PID 1 of the container: a process named systemd below systemd-nspawn whose pid
                # namespace differs from ours.
                for pid in $(pgrep -x systemd 2>/dev/null); do
                        if [[ $(readlink "/proc/$pid/ns/pid") != $(readlink /proc/self/ns/pid) ]] &&
                                _e2e_is_descendant "$pid" "$E2E_NSPAWN_PID"; then
                                E2E_PID1=$pid
                                break
                        fi
                done
                if [[ -n $E2E_PID1 ]]; then
                        local state
                        state=$(nsenter -t "$E2E_PID1" -a systemctl is-system-running 2>/dev/null || true)
                        case $state in
                        running | degraded) log "container up (PID 1 = $E2E_PID1, state $state)"; return 0 ;;
                        esac
                fi
                sleep 0.2
        done
        log "container did not come up within ${E2E_BOOT_TIMEOUT}s; console:"
        cat "$console_log" >&2
        return 1
}

_e2e_is_descendant() {
        local pid=$1 ancestor=$2 ppid
        while [[ $pid -gt 1 ]]; do
                [[ $pid == "$ancestor" ]] && return 0
                ppid=$(awk '/^PPid:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
                [[ -n $ppid ]] || return 1
                pid=$ppid
        done
        return 1
}

# Runs a command inside the container (all namespaces of its PID 1).
ct() {
        nsenter -t "$E2E_PID1" -a -- "$@"
}

# Shuts the container down: a clean poweroff first, SIGKILL to nspawn if that hangs.
e2e_shutdown() {
        [[ -n $E2E_NSPAWN_PID ]] || return 0
        if kill -0 "$E2E_NSPAWN_PID" 2>/dev/null; then
                if [[ -n $E2E_PID1 ]]; then
                        ct systemctl poweroff --no-block >/dev/null 2>&1 || true
                else
                        kill -TERM "$E2E_NSPAWN_PID" 2>/dev/null || true
                fi
                local i
                for ((i = 0; i < 150; i++)); do
                        kill -0 "$E2E_NSPAWN_PID" 2>/dev/null || break
                        sleep 0.2
                done
                if kill -0 "$E2E_NSPAWN_PID" 2>/dev/null; then
                        log "container did not power off in 30s; killing systemd-nspawn"
                        kill -KILL "$E2E_NSPAWN_PID" 2>/dev/null || true
                fi
        fi
        wait "$E2E_NSPAWN_PID" 2>/dev/null || true
        E2E_NSPAWN_PID=
        E2E_PID1=
}
