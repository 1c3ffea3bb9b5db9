/*
 * rank: rank a query's candidates with libranker (the C ABI of ranker-sdk).
 *
 *     rank PACKAGE QUERY DOCS_FILE [TOP_K]
 *
 * PACKAGE is a package directory or .tar.gz ("-" for the default package bundled with
 * ranker-sdk); DOCS_FILE holds one document per line (UTF-8; empty lines are skipped, as
 * `ranker rank --format text` does). Prints the best TOP_K (default: all) as
 * tab-separated lines: rank, index of the document in DOCS_FILE (0-based, empty lines not
 * counted), score, document.
 *
 * Build (see Makefile):
 *     ranker bindings build --out build
 *     gcc -O2 -Wall rank.c -I build -L build -lranker -Wl,-rpath,"$PWD/build" -o rank
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ranker.h"

/* Read the non-empty lines of path into *docs; returns their number, or -1 (errno set). */
static long read_lines(const char *path, char ***docs)
{
    FILE *fh = fopen(path, "r");
    char *line = NULL, **v = NULL;
    size_t cap = 0, n = 0, vcap = 0;
    ssize_t len;
    if (fh == NULL)
        return -1;
    while ((len = getline(&line, &cap, fh)) != -1) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (strspn(line, " \t\f\v") == (size_t)len)
            continue; /* blank */
        if (n == vcap) {
            char **grown = realloc(v, (vcap = vcap ? 2 * vcap : 64) * sizeof *v);
            if (grown == NULL)
                goto fail;
            v = grown;
        }
        if ((v[n] = strdup(line)) == NULL)
            goto fail;
        n++;
    }
    free(line);
    fclose(fh);
    *docs = v;
    return (long)n;
fail:
    while (n > 0)
        free(v[--n]);
    free(v);
    free(line);
    fclose(fh);
    return -1;
}

int main(int argc, char **argv)
{
    rk_ranker *ranker = NULL;
    char **docs = NULL;
    size_t *indices = NULL, count = 0, top_k, i;
    float *scores = NULL;
    long n;
    int rc;

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s PACKAGE QUERY DOCS_FILE [TOP_K]\n", argv[0]);
        return 2;
    }
    if (rk_abi_version() != RK_ABI_VERSION) {
        fprintf(stderr, "error: libranker ABI %d, this program was built for %d\n",
                rk_abi_version(), RK_ABI_VERSION);
        return 1;
    }
    n = read_lines(argv[3], &docs);
    if (n < 0) {
        perror(argv[3]);
        return 1;
    }
    if (n == 0) {
        fprintf(stderr, "error: %s holds no documents\n", argv[3]);
        return 1;
    }
    top_k = argc == 5 ? strtoul(argv[4], NULL, 10) : (size_t)n;
    if (top_k > (size_t)n)
        top_k = (size_t)n;

    /* threads = 1: one request, one core; a service scoring requests in parallel wants this too */
    rc = rk_open(strcmp(argv[1], "-") == 0 ? NULL : argv[1], 1, &ranker);
    if (rc == RK_OK) {
        indices = malloc((top_k ? top_k : 1) * sizeof *indices);
        scores = malloc((top_k ? top_k : 1) * sizeof *scores);
        if (indices == NULL || scores == NULL) {
            fprintf(stderr, "error: out of memory\n");
            return 1;
        }
        rc = rk_rank(ranker, argv[2], (const char *const *)docs, (size_t)n, top_k, indices, scores,
                     &count);
    }
    if (rc != RK_OK) {
        fprintf(stderr, "error %d: %s\n", rc, rk_last_error());
    } else {
        for (i = 0; i < count; i++)
            printf("%zu\t%zu\t%.9g\t%s\n", i + 1, indices[i], scores[i], docs[indices[i]]);
    }
    rk_close(ranker);
    for (i = 0; i < (size_t)n; i++)
        free(docs[i]);
    free(docs);
    free(indices);
    free(scores);
    return rc == RK_OK ? 0 : 1;
}
