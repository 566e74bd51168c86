#!/usr/bin/env bash
# Installs the system packages the test suite needs on a bare Debian bookworm machine:
# Mesa 25 lavapipe (Vulkan, from bookworm-backports) for Dawn, GLES/EGL as a fallback, and Chromium.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
src=/etc/apt/sources.list.d/debian.sources
if [ -f "$src" ] && ! grep -q "bookworm-backports" "$src"; then
  # Reuse the URI of the existing Debian entry (the first stanza) and add the backports suite to it.
  sed -i '0,/^Suites: bookworm bookworm-updates$/s//Suites: bookworm bookworm-updates bookworm-backports/' "$src"
fi
if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
  uri=$(grep -rhoE "https?://[^ ]+/debian/?( |$)" /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null | head -1 | tr -d ' ')
  echo "deb ${uri:-http://deb.debian.org/debian} bookworm-backports main" > /etc/apt/sources.list.d/backports.list
fi
apt-get update -qq
apt-get install -y -qq -t bookworm-backports libvulkan1 mesa-vulkan-drivers >/dev/null
apt-get install -y -qq libegl1 libegl-mesa0 libgles2 chromium >/dev/null
