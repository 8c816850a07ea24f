#!/bin/bash
# SPDX-License-Identifier: MIT
# Builds (once) a minimal Debian 12 root file system for the e2e suite and prints its path.
# The cache directory is keyed by a hash of the suite and package list, so changing the list
# builds a new tree and never reuses a stale one.
set -euo pipefail

E2E_SUITE=${E2E_SUITE:-bookworm}
E2E_CACHE=${E2E_CACHE:-/var/cache/asynctask-e2e}
# cockpit-ws, cockpit-bridge, cockpit-system and sudo: the Cockpit page's scenario (cockpit-page).
E2E_PACKAGES=(systemd systemd-sysv dbus libcjson1 libmariadb3 libsystemd0 iproute2 procps
        cockpit-ws cockpit-bridge cockpit-system sudo)

key=$(printf '%s\n' "$E2E_SUITE" "${E2E_PACKAGES[@]}" | sort | sha256sum | cut -c1-16)
root="$E2E_CACHE/rootfs-$key"

if [[ -f "$root/.complete" ]]; then
        echo "$root"
        exit 0
fi

mkdir -p "$E2E_CACHE"
tmp="$root.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
include=$(IFS=,; echo "${E2E_PACKAGES[*]}")
echo "e2e: building $E2E_SUITE rootfs ($include) in $root" >&2
mmdebstrap --variant=minbase --include="$include" "$E2E_SUITE" "$tmp" >&2
# A machine id makes journald persistent-capable and systemd quiet about first boot.
systemd-machine-id-setup --root="$tmp" >/dev/null 2>&1 || true
touch "$tmp/.complete"
rm -rf "$root"
mv "$tmp" "$root"
trap - EXIT
echo "$root"
