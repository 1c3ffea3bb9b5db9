/*
 * threads: several host threads score on one handle at once, for test_cabi.py.
 *
 *     threads LIBRANKER_SO PACKAGE QUERY DOCS_FILE N_THREADS ITERATIONS
 *
 * Loads the library the way plugin hosts do (dlopen with RTLD_LOCAL), scores the documents
 * once on the main thread, then has N_THREADS threads score them ITERATIONS times each, every
 * other time after a call that fails on purpose (an empty query): each thread checks that its
 * scores equal the single-threaded ones and that rk_last_error() tracks its own calls only.
 * Prints "scores S0 S1 ..." (the single-threaded scores) and "max_diff D", exits 0 if all agree.
 */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranker.h"

typedef int (*open_fn)(const char *, int, rk_ranker **);
typedef int (*score_fn)(rk_ranker *, const char *, const char *const *, size_t, float *);
typedef const char *(*error_fn)(void);
typedef void (*close_fn)(rk_ranker *);

static open_fn p_open;
static score_fn p_score;
static error_fn p_error;
static close_fn p_close;

static rk_ranker *ranker;
static const char *query;
static char *docs[256];
static size_t n_docs;
static float reference[256];
static int iterations;

struct result { double max_diff; int failures; };

static void *work(void *arg)
{
    struct result *res = arg;
    float scores[256];
    int it;
    size_t i;
    for (it = 0; it < iterations; it++) {
        if (it % 2 == 1) {
            if (p_score(ranker, "", (const char *const *)docs, n_docs, scores) != RK_E_INPUT
                || strstr(p_error(), "empty") == NULL) {
                fprintf(stderr, "an empty query did not fail with its own message: %s\n", p_error());
                res->failures++;
            }
        }
        if (p_score(ranker, query, (const char *const *)docs, n_docs, scores) != RK_OK) {
            fprintf(stderr, "rk_score failed in a thread: %s\n", p_error());
            res->failures++;
            continue;
        }
        if (p_error()[0] != '\0') {
            fprintf(stderr, "rk_last_error() not cleared after success: %s\n", p_error());
            res->failures++;
        }
        for (i = 0; i < n_docs; i++) {
            double d = fabs((double)scores[i] - (double)reference[i]);
            if (d > res->max_diff)
                res->max_diff = d;
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    void *lib;
    FILE *fh;
    char *line = NULL;
    size_t cap = 0, i;
    ssize_t len;
    pthread_t tids[64];
    struct result results[64];
    int n_threads, t, failures = 0, rc;
    double max_diff = 0;

    if (argc != 7) {
        fprintf(stderr, "usage: %s LIBRANKER_SO PACKAGE QUERY DOCS_FILE N_THREADS ITERATIONS\n", argv[0]);
        return 2;
    }
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    p_open = (open_fn)dlsym(lib, "rk_open");
    p_score = (score_fn)dlsym(lib, "rk_score");
    p_error = (error_fn)dlsym(lib, "rk_last_error");
    p_close = (close_fn)dlsym(lib, "rk_close");
    query = argv[3];
    n_threads = atoi(argv[5]);
    iterations = atoi(argv[6]);
    if (!p_open || !p_score || !p_error || !p_close || n_threads < 1 || n_threads > 64) {
        fprintf(stderr, "bad library or arguments\n");
        return 2;
    }
    if ((fh = fopen(argv[4], "r")) == NULL) {
        perror(argv[4]);
        return 1;
    }
    while (n_docs < 256 && (len = getline(&line, &cap, fh)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        docs[n_docs++] = strdup(line);
    }
    fclose(fh);
    free(line);

    if ((rc = p_open(argv[2], 1, &ranker)) != RK_OK
        || (rc = p_score(ranker, query, (const char *const *)docs, n_docs, reference)) != RK_OK) {
        fprintf(stderr, "error %d: %s\n", rc, p_error());
        return 1;
    }
    printf("scores");
    for (i = 0; i < n_docs; i++)
        printf(" %.9g", reference[i]);
    printf("\n");

    memset(results, 0, sizeof results);
    for (t = 0; t < n_threads; t++)
        pthread_create(&tids[t], NULL, work, &results[t]);
    for (t = 0; t < n_threads; t++) {
        pthread_join(tids[t], NULL);
        failures += results[t].failures;
        if (results[t].max_diff > max_diff)
            max_diff = results[t].max_diff;
    }
    printf("max_diff %g\nfailures %d\n", max_diff, failures);
    p_close(ranker);
    return failures == 0 ? 0 : 1;
}
