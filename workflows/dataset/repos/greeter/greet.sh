#!/bin/sh
# greet NAME: prints a greeting for NAME
greet() { echo "Hello, world!"; }
