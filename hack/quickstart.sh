#!/usr/bin/env bash
# Quick start on Debian: installs what is missing (containerd, runc,
# busybox-static), builds warren, starts a one-node cluster in the
# background and runs a demo web service on port 8080, all without internet.
#
#   sudo hack/quickstart.sh          # bring it up
#   sudo hack/quickstart.sh --stop   # remove the demo and stop the manager
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

DATA_DIR=${WARREN_DATA_DIR:-/var/lib/warren}
LOG=${WARREN_LOG:-/var/log/warren.log}
PIDFILE=/run/warren/quickstart.pid
warren=bin/warren

[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (containers need it): sudo $0" >&2; exit 1; }

if [ "${1:-}" = "--stop" ]; then
	$warren service rm demo >/dev/null 2>&1 || true
	if [ -f "$PIDFILE" ]; then
		kill -TERM "$(cat "$PIDFILE")" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.1; done
		rm -f "$PIDFILE"
	fi
	echo "quickstart: stopped (state kept in $DATA_DIR)"
	exit 0
fi

missing=()
for pkg in containerd runc busybox-static; do
	dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "quickstart: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "quickstart: Go 1.26 is needed to build warren (https://go.dev/dl)" >&2; exit 1; }

echo "quickstart: building bin/warren"
make -s build

if ! $warren cluster info >/dev/null 2>&1; then
	echo "quickstart: starting the manager (log: $LOG)"
	mkdir -p /run/warren "$(dirname "$LOG")"
	setsid $warren cluster init --data-dir "$DATA_DIR" >>"$LOG" 2>&1 < /dev/null &
	echo $! > "$PIDFILE"
	for _ in $(seq 600); do
		$warren cluster info >/dev/null 2>&1 && break
		kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { echo "quickstart: the manager exited:" >&2; tail -20 "$LOG" >&2; exit 1; }
		sleep 0.1
	done
	$warren cluster info >/dev/null
fi

echo "quickstart: building and importing the demo image (no registry needed)"
tar=$(mktemp --suffix=.tar)
go run ./hack/mkimage -o "$tar" -ref warren.local/demo:latest
$warren image import "$tar"
rm -f "$tar"

if ! $warren service inspect demo >/dev/null 2>&1; then
	$warren service create demo --image warren.local/demo:latest --replicas 2 --publish 8080:80 \
		-- httpd -f -p 80 -h /www
fi
$warren service ls
echo
echo "quickstart: the demo answers at http://127.0.0.1:8080/ — try: curl 127.0.0.1:8080"
echo "quickstart: see it with: $warren service ps demo"
