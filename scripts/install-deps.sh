#!/bin/sh
# Install every Debian 12 package prozsec needs to build, test, fuzz and benchmark.
# Used by the README's Quick start and by .ci/run. Run as root.
set -eu

PACKAGES="
  build-essential autoconf automake libtool libltdl-dev pkg-config make
  libgnutls28-dev nettle-dev libgcrypt20-dev libyaml-dev libglib2.0-dev libcmocka-dev libjson-glib-dev libmicrohttpd-dev
  gnutls-bin openssl
  valgrind clang libclang-rt-14-dev
  ca-certificates git procps iproute2 psmisc
"

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps.sh: run as root (it installs Debian packages)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $PACKAGES
