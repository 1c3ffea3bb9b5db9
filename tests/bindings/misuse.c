/*
 * misuse: drives every error path of ranker.h in one process, for test_cabi.py.
 *
 *     misuse PACKAGE MISSING_PACKAGE CORRUPT_PACKAGE
 *
 * Prints one line per case: NAME <tab> STATUS <tab> rk_last_error() (newlines and tabs as
 * spaces). Cases after a failed rk_open(PACKAGE) are skipped. Exit status 0 unless PACKAGE
 * fails to open.
 */
#include <stdio.h>
#include <string.h>

#include "ranker.h"

static void report(const char *name, int status, const char *msg)
{
    printf("%s\t%d\t", name, status);
    for (; msg != NULL && *msg; msg++)
        putchar(*msg == '\n' || *msg == '\t' ? ' ' : *msg);
    putchar('\n');
    fflush(stdout);
}

#define CASE(name, call) report(name, (call), rk_last_error())

int main(int argc, char **argv)
{
    const char *docs[] = {"Paris is the capital and largest city of France.",
                          "Bananas are rich in potassium.", "The Eiffel Tower is in Paris."};
    const char *bad_doc[] = {"fine", "caf\xc3 \xff\xfe broken", "fine"};
    const char *null_doc[] = {"fine", NULL, "fine"};
    const char *query = "what is the capital of france";
    float scores[3];
    size_t idx[3], count = 99;
    rk_ranker *r = NULL, *other = (rk_ranker *)1;

    if (argc != 4) {
        fprintf(stderr, "usage: %s PACKAGE MISSING_PACKAGE CORRUPT_PACKAGE\n", argv[0]);
        return 2;
    }
    report("version", rk_version() == NULL ? -1 : 0, rk_version() ? rk_version() : "");
    report("abi", rk_abi_version() == RK_ABI_VERSION ? 0 : -1, "");
    report("initial_error", 0, rk_last_error());

    CASE("open_null_out", rk_open(argv[1], 1, NULL));
    CASE("open_missing", rk_open(argv[2], 1, &other));
    report("open_missing_sets_null", other == NULL ? 0 : -1, "");
    CASE("open_corrupt", rk_open(argv[3], 1, &other));
    CASE("open_default", rk_open(NULL, 1, &other));
    rk_close(other);
    other = NULL;
    CASE("open_negative_threads", rk_open(argv[1], -3, &other));
    rk_close(other);
    CASE("open", rk_open(argv[1], 1, &r));
    if (r == NULL)
        return 1;

    CASE("score", rk_score(r, query, docs, 3, scores));
    CASE("score_null_handle", rk_score(NULL, query, docs, 3, scores));
    CASE("score_null_query", rk_score(r, NULL, docs, 3, scores));
    CASE("score_null_docs", rk_score(r, query, NULL, 3, scores));
    CASE("score_null_doc", rk_score(r, query, null_doc, 3, scores));
    CASE("score_zero_docs", rk_score(r, query, docs, 0, scores));
    CASE("score_null_out", rk_score(r, query, docs, 3, NULL));
    CASE("score_invalid_utf8_query", rk_score(r, "caf\xc3\x28", docs, 3, scores));
    CASE("score_invalid_utf8_doc", rk_score(r, query, bad_doc, 3, scores));
    CASE("score_empty_query", rk_score(r, "", docs, 3, scores));
    CASE("score_blank_query", rk_score(r, " \t ", docs, 3, scores));
    CASE("score_after_failure", rk_score(r, query, docs, 3, scores));

    CASE("rank_zero_top_k", rk_rank(r, query, docs, 3, 0, idx, scores, &count));
    report("rank_zero_top_k_count", (int)count, "");
    CASE("rank_null_count", rk_rank(r, query, docs, 3, 2, idx, scores, NULL));
    CASE("rank_null_indices", rk_rank(r, query, docs, 3, 2, NULL, scores, &count));
    CASE("rank_empty_query", rk_rank(r, "", docs, 3, 2, idx, scores, &count));
    CASE("rank_top_k_above_n", rk_rank(r, query, docs, 3, 100, idx, scores, &count));
    report("rank_top_k_above_n_count", (int)count, "");

    rk_close(NULL);
    report("close_null", 0, rk_last_error());
    rk_close(r);
    report("close", 0, rk_last_error());
    return 0;
}
