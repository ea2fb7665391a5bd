#!/usr/bin/env bash
# Installs what rho-flow needs on a fresh Debian/Ubuntu machine, then the npm
# dependencies, then builds. Safe to run again.
#   - bubblewrap (bwrap): the local backend's jail (apt-get; sudo when not root)
#   - npm ci, npm run build
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v bwrap >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
      if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "setup: bubblewrap is missing and sudo is not available; install it as root: apt-get install -y bubblewrap" >&2
        exit 1
      fi
    fi
    echo "setup: installing bubblewrap (apt-get)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null
  else
    echo "setup: bubblewrap is missing; install it with your package manager (the local backend runs unjailed without it)" >&2
  fi
fi

npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
