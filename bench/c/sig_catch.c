// lmbench's lat_sig catch method: the cost of sending a signal to oneself and catching
// it, with the cost of sending an ignored signal (the send alone) subtracted.
// Prints the median net cost in ns.
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static volatile long caught;
static void handler(int s) { (void)s; caught++; }
static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }

static double per_kill(int n) {
    pid_t me = getpid();
    long long t0 = now();
    for (int i = 0; i < n; i++) kill(me, SIGUSR2);
    return (double)(now() - t0) / n;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10000, trials = argc > 2 ? atoi(argv[2]) : 9;
    double catch_ns[64], send_ns[64];
    signal(SIGUSR2, handler);
    for (int t = 0; t < trials + 2; t++) { double v = per_kill(n); if (t >= 2) catch_ns[t - 2] = v; }
    signal(SIGUSR2, SIG_IGN);
    for (int t = 0; t < trials + 2; t++) { double v = per_kill(n); if (t >= 2) send_ns[t - 2] = v; }
    qsort(catch_ns, trials, sizeof(double), cmp);
    qsort(send_ns, trials, sizeof(double), cmp);
    printf("%.1f\n", catch_ns[trials / 2] - send_ns[trials / 2]);
    return 0;
}
