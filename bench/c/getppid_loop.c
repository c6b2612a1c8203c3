/* A syscall-heavy loop: getppid for the given seconds; prints calls per second. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "now.h"

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 5;
    long calls = 0;
    double start = now();
    while (now() - start < secs) {
        for (int i = 0; i < 1000; i++) syscall(SYS_getppid);
        calls += 1000;
    }
    printf("%.0f\n", calls / (now() - start));
    return 0;
}
