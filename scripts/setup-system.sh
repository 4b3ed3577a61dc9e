#!/usr/bin/env bash
# The Debian packages and settings a make target needs, installed only when missing (the
# Makefile calls this; safe to re-run, a no-op on a machine that has them).
#   scripts/setup-system.sh venv        python3.11 and its venv module (every target's .venv)
#   scripts/setup-system.sh tests       chromium, for the report's browser tests
#   scripts/setup-system.sh containers  podman, runc and podman's settings for the container
#                                       tests, debootstrap for `make base-image`
# With --check it only lists what is missing and exits 1 if anything is.
# Installing needs root (or sudo). Other systems than Debian/Ubuntu: install the same yourself.
set -euo pipefail

profile=${1:?usage: scripts/setup-system.sh venv|tests|containers [--check]}
check_only=${2:-}
case "$profile" in
  venv) packages=(python3.11 python3.11-venv) ;;
  tests) packages=(chromium) ;;
  containers) packages=(podman runc debootstrap) ;;
  *) echo "setup-system: unknown profile '$profile' (venv, tests or containers)" >&2; exit 2 ;;
esac

if ! command -v dpkg-query >/dev/null; then
  echo "setup-system: not a Debian system; make sure these are installed: ${packages[*]}" >&2
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "setup-system: '$*' needs root (no sudo here): run it as root" >&2; exit 1
  fi
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

missing=()
if [ "$profile" = venv ] && python3.11 -c 'import ensurepip, venv' 2>/dev/null; then
  :  # a python3.11 that makes virtual environments, Debian's or another (python:3.11 images)
else
  for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
  done
fi

# podman on these machines: crun refuses their hybrid cgroups (use runc), and podman's default
# ulimits exceed the hard limits (set none).
conf=/etc/containers/containers.conf
conf_missing=
conf_lacking=
if [ "$profile" = containers ]; then
  if [ ! -e "$conf" ]; then
    conf_missing=1
  elif ! { grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=[[:space:]]*\[[[:space:]]*\]' "$conf" &&
           grep -Eq '^[[:space:]]*runtime[[:space:]]*=[[:space:]]*"runc"' "$conf"; }; then
    conf_lacking=1
  fi
fi

if [ "$check_only" = --check ]; then
  status=0
  if ((${#missing[@]})); then echo "missing packages: ${missing[*]}"; status=1; fi
  if [ -n "$conf_missing" ]; then echo "missing: $conf"; status=1; fi
  if [ -n "$conf_lacking" ]; then echo "$conf lacks podman's settings"; status=1; fi
  [ "$status" -ne 0 ] || echo "setup-system ($profile): nothing missing"
  exit "$status"
fi

if ((${#missing[@]})); then
  echo "setup-system: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ -n "$conf_missing" ]; then
  as_root mkdir -p "$(dirname "$conf")"
  printf '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n' \
    | as_root tee "$conf" >/dev/null
  echo "setup-system: wrote $conf"
elif [ -n "$conf_lacking" ]; then
  echo "setup-system: $conf exists but lacks 'default_ulimits = []' under [containers] and/or" \
       "'runtime = \"runc\"' under [engine]; add them" >&2
  exit 1
fi
