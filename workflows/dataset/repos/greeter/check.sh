#!/bin/sh
. ./greet.sh
result=$(greet Ada)
if [ "$result" = "Hello, Ada!" ]; then echo "ok: $result"; else echo "FAIL: got '$result', want 'Hello, Ada!'"; exit 1; fi
