#!/bin/sh
. ./calc.sh
result=$(add 2 3)
if [ "$result" = 5 ]; then echo "ok: add 2 3 = 5"; else echo "FAIL: add 2 3 = $result, want 5"; exit 1; fi
