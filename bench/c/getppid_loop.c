/* A syscall-heavy loop: getppid for the given seconds; prints calls per second. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

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
