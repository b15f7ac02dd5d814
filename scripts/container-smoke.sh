#!/usr/bin/env bash
# Build the image and run `pulse-agent validate` and `pulse-agent healthcheck` inside it, where no
# Docker engine runs: Debian's buildah with chroot isolation. With no registry reachable, a stand-in
# base image is made with debootstrap (set PYTHON_IMAGE to use a real one, e.g. python:3.12-slim).
#   sudo scripts/container-smoke.sh
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need buildah buildah
need podman podman

base="${PYTHON_IMAGE:-}"
if [ -z "$base" ]; then
  base=localhost/pybase:bookworm
  if ! podman image exists "$base"; then
    need debootstrap debootstrap
    rootfs="$(mktemp -d)"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
    rm -rf "$rootfs"
  fi
fi

# pip inside the build trusts this machine's CA bundle (a TLS-intercepting proxy, if any).
pipconf="$(mktemp)"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' > "$pipconf"
buildah bud --format docker --isolation chroot --build-arg PYTHON_IMAGE="$base" \
  -v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  -v "$pipconf":/etc/pip.conf:ro -t pulse-agent:smoke . >/dev/null

c="$(buildah from pulse-agent:smoke)"
trap 'buildah rm "$c" >/dev/null' EXIT
echo "image: $(buildah images --format '{{.Size}}' pulse-agent:smoke) (base $base), agent venv: $(buildah run --isolation chroot "$c" -- du -sh /opt/pulse | cut -f1)"
buildah run --isolation chroot "$c" -- pulse-agent validate
buildah run --isolation chroot "$c" -- id -u | grep -qx 10001 && echo "runs as uid 10001"
# No agent runs in a `buildah run`: the healthcheck must say so with exit 1.
if buildah run --isolation chroot "$c" -- pulse-agent healthcheck --timeout 1; then
  echo "healthcheck passed with no agent running" >&2; exit 1
fi
# Listening on 0.0.0.0 without an API token, the agent refuses to start.
if buildah run --isolation chroot "$c" -- pulse-agent run 2>/tmp/pulse-no-token.err; then
  echo "the agent started on 0.0.0.0 without an API token" >&2; exit 1
fi
grep -q "agent.api_token is not set" /tmp/pulse-no-token.err
# The agent as the image runs it: healthy while running, exit 0 on SIGTERM, data in the volume.
buildah run --isolation chroot --env PULSE_API_TOKEN=smoke-token-0123456789abcdef "$c" -- sh -c '
  pulse-agent run & agent=$!
  for i in 1 2 3 4 5 6 7 8 9 10; do pulse-agent healthcheck --timeout 1 >/dev/null 2>&1 && break; sleep 1; done
  pulse-agent healthcheck || exit 1
  kill -TERM $agent; wait $agent; code=$?
  test -s /var/lib/pulse/pulse.duckdb || { echo "no database in /var/lib/pulse"; exit 1; }
  echo "agent exit code on SIGTERM: $code"; exit $code'
echo "container smoke test passed"
