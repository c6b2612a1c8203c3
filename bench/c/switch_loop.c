/* A context-switch-heavy loop: a parent and a child pinned to one CPU pass a byte back
 * and forth over two pipes for the given seconds; prints round trips per second (each
 * is two wake-ups and two switches). */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "now.h"

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 5;
    int ping[2], pong[2];
    char b = 0;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    if (sched_setaffinity(0, sizeof one, &one) || pipe(ping) || pipe(pong)) return 1;
    pid_t child = fork();
    if (child < 0) return 1;
    if (child == 0) {
        close(ping[1]);
        close(pong[0]);
        while (read(ping[0], &b, 1) == 1 && write(pong[1], &b, 1) == 1) {}
        _exit(0);
    }
    close(ping[0]);
    close(pong[1]);
    long trips = 0;
    double start = now();
    while (now() - start < secs) {
        for (int i = 0; i < 1000; i++) {
            if (write(ping[1], &b, 1) != 1 || read(pong[0], &b, 1) != 1) return 1;
        }
        trips += 1000;
    }
    double rate = trips / (now() - start);
    close(ping[1]);
    waitpid(child, NULL, 0);
    printf("%.0f\n", rate);
    return 0;
}
