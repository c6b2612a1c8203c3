#!/bin/sh
# Rebuilds faults.bpf.o from faults.bpf.c (needs clang and libbpf-dev) and records the
# source's sha256 beside it, which a unit test checks: the object is committed so that
# a cargo build needs no clang, and the test catches a source edited without a rebuild.
set -eu
cd "$(dirname "$0")"
clang -O2 -g -target bpf -I/usr/include/"$(uname -m)"-linux-gnu -c faults.bpf.c -o faults.bpf.o
llvm-strip -g faults.bpf.o 2>/dev/null || llvm-strip-14 -g faults.bpf.o
sha256sum faults.bpf.c | cut -d' ' -f1 > faults.bpf.c.sha256
