#!/usr/bin/env bash
# Installs Mesa's lavapipe (a Vulkan driver that runs on the CPU) from bookworm-backports, so that
# Dawn finds a WebGPU adapter on a machine without a GPU. The mirror comes from this machine's own
# apt configuration. Stock bookworm Mesa (22.3) is too old for current Dawn.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
src=/etc/apt/sources.list.d/debian.sources
uri=$(awk '/^URIs:/{print $2; exit}' "$src")
[ -n "$uri" ] || { echo "install-lavapipe: no Debian mirror found in $src" >&2; exit 1; }
printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
  | $SUDO tee /etc/apt/sources.list.d/backports.sources >/dev/null
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
echo "install-lavapipe: $(dpkg-query -W -f='${Package} ${Version}' mesa-vulkan-drivers)"
