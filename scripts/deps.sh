#!/bin/sh
# Install the Debian packages sonde needs to build, test, benchmark and demo.
# Idempotent and non-interactive: packages already present are not touched, and
# apt is only called when something is missing. Uses sudo when not root.
set -eu

PKGS="
build-essential meson ninja-build pkg-config clang-format
libpcap-dev libndpi-dev libldns-dev clang libclang-rt-14-dev protobuf-c-compiler libprotobuf-c-dev
libssl-dev libjansson-dev libcmocka-dev libnghttp2-dev libevent-dev
tshark tcpdump tcpreplay softflowd libndpi-bin
python3 python3-pytest python3-scapy time python3-grpcio python3-protobuf protobuf-compiler
curl dnsutils dnsmasq-base iproute2 iputils-ping openssl procps nghttp2-server busybox
"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

[ -z "$missing" ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing:$missing"
# wireshark-common asks whether non-root users may capture; answer for it.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
