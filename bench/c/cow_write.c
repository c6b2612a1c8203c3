// Copy-on-write: the parent writes N MiB and forks; the child times writing every page
// (one CoW fault each). Prints the median ns per page. Same as syslens's cow lab.
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000LL + t.tv_nsec; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return (x > y) - (x < y); }

int main(int argc, char **argv) {
    size_t len = (argc > 1 ? atol(argv[1]) : 64) << 20;
    int trials = argc > 2 ? atoi(argv[2]) : 7;
    long ps = sysconf(_SC_PAGESIZE);
    volatile char *p = mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    madvise((void *)p, len, MADV_NOHUGEPAGE);
    for (size_t o = 0; o < len; o += ps) p[o] = 1;
    double per[64];
    int fd[2];
    for (int t = 0; t < trials; t++) {
        pipe(fd);
        pid_t pid = fork();
        if (pid == 0) {
            long long t0 = now();
            for (size_t o = 0; o < len; o += ps) p[o] = 2;
            double v = (double)(now() - t0) / (len / ps);
            write(fd[1], &v, sizeof v);
            _exit(0);
        }
        read(fd[0], &per[t], sizeof per[t]);
        waitpid(pid, 0, 0);
        close(fd[0]);
        close(fd[1]);
    }
    qsort(per, trials, sizeof per[0], cmp);
    printf("%.1f\n", per[trials / 2]);
    return 0;
}
