#!/usr/bin/env bash
# Prints the number of words in each file given.
set -eo pipefail
for f in "$@"; do
  printf '%s %s\n' "$(wc -w < "$f" | tr -d ' ')" "$f"
done
