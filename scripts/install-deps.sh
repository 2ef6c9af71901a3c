#!/bin/sh
# Installs the Debian packages that building, testing and the demo need. Idempotent: does
# nothing (and touches no network) when everything is present.
set -eu

PKGS="
build-essential pkg-config
libpam0g-dev libcurl4-openssl-dev libjansson-dev libssl-dev libsystemd-dev libsqlite3-dev
libinih-dev libseccomp-dev libcmocka-dev libpam-wrapper libpamtest0-dev
clang libclang-rt-14-dev
python3 python3-jwcrypto python3-cryptography python3-pytest python3-pytest-xdist python3-dbusmock python3-pypamtest libnss-wrapper
dbus openssl mandoc e2fsprogs util-linux mount
systemd-container debootstrap iproute2 openssh-client
debhelper dpkg-dev lintian
"

missing=""
for p in $PKGS; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$st" in
        "install ok installed") ;;
        *) missing="$missing $p" ;;
        esac
done

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing packages:$missing (run as root, or install them)" >&2
        exit 1
fi

echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
