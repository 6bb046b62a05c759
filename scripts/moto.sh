#!/usr/bin/env bash
# Wire-compatibility tests against moto, a third-party AWS emulator.
#
# Installs a pinned moto into a venv under .cache/ (once), starts moto_server
# on a free loopback port, exports PATCHGATE_MOTO_ENDPOINT and runs the
# tests built with the `integration` tag. The server is always stopped.
#
#   scripts/moto.sh                          # go test -race -count=1 -tags=integration ./...
#   scripts/moto.sh -run Moto -v ./internal/lock   # flags and packages pass through
#
# Needs python3 with venv, and PyPI. See docs/simulator.md, "Wire compatibility (moto)".
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_VERSION="5.2.5"
VENV=".cache/moto-venv"
LOG=".cache/moto-server.log"
PYTHON="${PYTHON:-python3}"
GO="${GO:-go}"

installed_version() {
	"$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' 2>/dev/null || true
}

if [ ! -x "$VENV/bin/moto_server" ] || [ "$(installed_version)" != "$MOTO_VERSION" ]; then
	command -v "$PYTHON" >/dev/null || { echo "moto.sh: $PYTHON not found: moto needs Python 3" >&2; exit 1; }
	echo "moto.sh: installing moto[server]==$MOTO_VERSION into $VENV"
	rm -rf "$VENV"
	mkdir -p "$(dirname "$VENV")"
	"$PYTHON" -m venv "$VENV"
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi

MOTO_PID=""
stop_moto() {
	if [ -n "$MOTO_PID" ]; then
		kill "$MOTO_PID" 2>/dev/null || true
		wait "$MOTO_PID" 2>/dev/null || true
		MOTO_PID=""
	fi
}
trap stop_moto EXIT
trap 'stop_moto; exit 130' INT
trap 'stop_moto; exit 143' TERM

free_port() {
	"$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

answers() {
	"$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1).read()' "$1" 2>/dev/null
}

# A port found free can be taken before moto binds it: try a few.
started=""
for attempt in 1 2 3; do
	PORT="$(free_port)"
	"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 &
	MOTO_PID=$!
	for _ in $(seq 1 150); do # up to 30 s
		if answers "http://127.0.0.1:$PORT/moto-api/data.json"; then
			started=1
			break
		fi
		kill -0 "$MOTO_PID" 2>/dev/null || break
		sleep 0.2
	done
	[ -n "$started" ] && break
	echo "moto.sh: moto_server did not start on port $PORT (attempt $attempt):" >&2
	tail -n 20 "$LOG" >&2 || true
	stop_moto
done
[ -n "$started" ] || { echo "moto.sh: could not start moto_server" >&2; exit 1; }

export PATCHGATE_MOTO_ENDPOINT="http://127.0.0.1:$PORT"
export PATCHGATE_MOTO_VERSION="$MOTO_VERSION"
echo "moto.sh: moto $MOTO_VERSION at $PATCHGATE_MOTO_ENDPOINT (log: $LOG)"

# Without a package among the arguments, test every package.
args=("$@")
has_pkg=""
for a in "$@"; do
	case "$a" in ./* | github.com/*) has_pkg=1 ;; esac
done
[ -n "$has_pkg" ] || args+=("./...")

set +e
"$GO" test -race -count=1 -tags=integration "${args[@]}"
status=$?
set -e
exit "$status"
