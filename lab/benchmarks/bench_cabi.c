/*
 * bench_cabi: times the C ABI from a C host, for bench_cabi.py.
 *
 *     bench_cabi PACKAGE QUERY DOCS_FILE REPEATS
 *
 * DOCS_FILE: one document per line. Prints "key value ..." lines (milliseconds):
 *   start_ms        the first call: rk_open() of a missing package, which starts the embedded
 *                   interpreter (and imports ranker_sdk, numpy, onnxruntime) and then fails fast
 *   open_ms         rk_open(PACKAGE, threads = 1): read, verify and load the package
 *   first_score_ms  the first rk_score() (onnxruntime's warm-up)
 *   score_ms        REPEATS further rk_score() calls, one value each
 *   scores          the scores of the last call
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ranker.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    char *docs[4096], *line = NULL;
    size_t n = 0, cap = 0, i;
    ssize_t len;
    float *scores;
    rk_ranker *r = NULL;
    FILE *fh;
    double t;
    int repeats, k, rc;

    if (argc != 5) {
        fprintf(stderr, "usage: %s PACKAGE QUERY DOCS_FILE REPEATS\n", argv[0]);
        return 2;
    }
    repeats = atoi(argv[4]);
    if ((fh = fopen(argv[3], "r")) == NULL) {
        perror(argv[3]);
        return 1;
    }
    while (n < 4096 && (len = getline(&line, &cap, fh)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        docs[n++] = strdup(line);
    }
    fclose(fh);
    scores = malloc(n * sizeof *scores);

    t = now_ms();
    rc = rk_open("/nonexistent/ranker-package", 1, &r);
    printf("start_ms %.3f\n", now_ms() - t);
    if (rc != RK_E_PACKAGE) {
        fprintf(stderr, "start: expected RK_E_PACKAGE, got %d: %s\n", rc, rk_last_error());
        return 1;
    }
    t = now_ms();
    rc = rk_open(argv[1], 1, &r);
    printf("open_ms %.3f\n", now_ms() - t);
    if (rc != RK_OK) {
        fprintf(stderr, "rk_open: error %d: %s\n", rc, rk_last_error());
        return 1;
    }
    t = now_ms();
    rc = rk_score(r, argv[2], (const char *const *)docs, n, scores);
    printf("first_score_ms %.3f\n", now_ms() - t);
    printf("score_ms");
    for (k = 0; k < repeats && rc == RK_OK; k++) {
        t = now_ms();
        rc = rk_score(r, argv[2], (const char *const *)docs, n, scores);
        printf(" %.3f", now_ms() - t);
    }
    printf("\n");
    if (rc != RK_OK) {
        fprintf(stderr, "rk_score: error %d: %s\n", rc, rk_last_error());
        return 1;
    }
    printf("scores");
    for (i = 0; i < n; i++)
        printf(" %.9g", scores[i]);
    printf("\n");
    rk_close(r);
    return 0;
}
