// fork + exit + wait (lmbench's lat_proc fork method) with a parent of N MiB touched
// anonymous memory. Prints the median in microseconds. Same as syslens's cow lab.
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    size_t len = (size_t)(argc > 1 ? atol(argv[1]) : 0) << 20;
    int trials = argc > 2 ? atoi(argv[2]) : 11;
    long ps = sysconf(_SC_PAGESIZE);
    if (len) {
        volatile char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        madvise((void *)p, len, MADV_NOHUGEPAGE);
        for (size_t o = 0; o < len; o += ps) p[o] = 1;
    }
    double us[256];
    for (int t = 0; t < trials + 1; t++) {
        long long t0 = now();
        pid_t pid = fork();
        if (pid == 0) _exit(0);
        waitpid(pid, 0, 0);
        if (t > 0) us[t - 1] = (now() - t0) / 1000.0;
    }
    qsort(us, trials, sizeof us[0], cmp);
    printf("%.1f\n", us[trials / 2]);
    return 0;
}
