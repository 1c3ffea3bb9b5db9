/*
 * ranker.h: the C ABI of ranker-sdk (libranker.so).
 *
 * A C or C++ search service links libranker.so and ranks candidates in-process with the same
 * Ranker as the Python SDK: same package, same scores. Build the library and this header with
 *
 *     ranker bindings build --out DIR          (writes DIR/libranker.so and DIR/ranker.h)
 *     cc app.c -I DIR -L DIR -lranker -Wl,-rpath,DIR -o app
 *
 * How it works. libranker.so embeds CPython (cffi embedding mode). The first rk_open() starts
 * the interpreter the library was built with, from the environment (venv) it was built in:
 * both are recorded in the library at build time and checked at start-up, so the host needs no
 * PYTHONHOME, PYTHONPATH or LD_LIBRARY_PATH, and neither a different python3 on PATH nor a
 * different libpython on the loader path is ever silently used (the start fails with
 * RK_E_INTERNAL and says why). Rebuild the library if that environment moves or changes.
 *
 * Conventions (as in sqlite3.h and onnxruntime_c_api.h):
 *   - every name starts with rk_ / RK_; the handle rk_ranker is opaque;
 *   - every function that can fail returns an int status: RK_OK (0) or an RK_E_* code, and
 *     then rk_last_error() says what went wrong; results go through out-parameters;
 *   - no function aborts, exits, or writes to the host's stdout (diagnostics of a failed
 *     interpreter start-up may go to stderr);
 *   - texts (query, documents) are NUL-terminated UTF-8; the library never keeps or modifies
 *     the caller's buffers after a call returns;
 *   - rk_close(NULL) is a no-op.
 *
 * Check the ABI at start-up:  if (rk_abi_version() != RK_ABI_VERSION) { ... refuse ... }
 */
#ifndef RANKER_H
#define RANKER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of this header's contract. A library whose rk_abi_version() differs is not
   compatible with code compiled against this header. */
#define RK_ABI_VERSION 1

/* Status codes. */
enum {
    RK_OK = 0,          /* success */
    RK_E_ARGUMENT = 1,  /* API misuse: a NULL pointer, n_docs == 0, top_k == 0, a closed handle */
    RK_E_PACKAGE = 2,   /* the model package is missing, corrupt, unsafe or of an unknown format */
    RK_E_INPUT = 3,     /* the query or a document is not accepted: empty query, invalid UTF-8 */
    RK_E_INTERNAL = 4   /* the embedded runtime failed (interpreter start-up, a backend error): a bug
                           or a broken installation; the message says which */
};

/* A loaded, verified ranking package. Opaque: create with rk_open(), free with rk_close().
   One handle may be shared by any number of threads (see rk_score()). */
typedef struct rk_ranker rk_ranker;

/* The library's version (the ranker-sdk version it was built from, e.g. "0.1.0").
   Never NULL, even if the interpreter cannot start. The string is static: do not free it.
   Thread-safe; does not start the interpreter. */
const char *rk_version(void);

/* RK_ABI_VERSION of the built library. Thread-safe; does not start the interpreter. */
int rk_abi_version(void);

/* Load and verify the package at package_path (a package directory or .tar.gz; a file-system
   path, passed to the OS as is) and store a new handle in *out.
     package_path  NULL loads the default package bundled with ranker-sdk (RK_E_PACKAGE if this
                   install bundles none).
     threads       onnxruntime intra-op threads used by each call on this handle; <= 0 picks the
                   library default (onnxruntime's: one per core). Services that run many
                   requests in parallel usually want 1.
     out           must not be NULL. Set to the handle on success, to NULL on failure.
   The first call starts the embedded interpreter (typically a second or two); if that fails,
   this and every later call return RK_E_INTERNAL with the reason.
   Returns RK_OK, RK_E_ARGUMENT (out is NULL), RK_E_PACKAGE or RK_E_INTERNAL.
   Ownership: the caller owns the handle and must pass it to rk_close() exactly once.
   Thread-safe: may be called from any thread, concurrently. */
int rk_open(const char *package_path, int threads, rk_ranker **out);

/* Score n_docs documents for query; writes n_docs floats to out_scores, in the order of docs.
   Higher is more relevant (a raw score or a calibrated probability, as the package says).
     r           a handle from rk_open(), not yet closed.
     query       non-empty UTF-8 text (not only white space).
     docs        n_docs pointers to UTF-8 texts, none NULL.
     n_docs      >= 1.
     out_scores  room for n_docs floats, owned by the caller. Undefined on failure.
   Returns RK_OK, RK_E_ARGUMENT (a NULL pointer, n_docs == 0, a closed handle), RK_E_INPUT
   (empty query, invalid UTF-8; the message names the offending text) or RK_E_INTERNAL.
   Thread-safe: any number of threads may call rk_score() and rk_rank() on the same handle at
   once; results do not depend on what other threads do. */
int rk_score(rk_ranker *r, const char *query, const char *const *docs, size_t n_docs, float *out_scores);

/* Rank n_docs documents for query, best first, keeping at most top_k.
   Writes *out_count = min(top_k, n_docs) pairs: out_indices[i] is an index into docs and
   out_scores[i] its score (as rk_score() gives it), i = 0 .. *out_count - 1, best first;
   equal scores keep input order.
     r, query, docs, n_docs   as for rk_score().
     top_k        >= 1; a value above n_docs keeps all.
     out_indices  room for min(top_k, n_docs) size_t, owned by the caller.
     out_scores   room for min(top_k, n_docs) floats, owned by the caller.
     out_count    must not be NULL; set to 0 on failure.
   Returns the codes of rk_score(); top_k == 0 or a NULL out pointer is RK_E_ARGUMENT.
   Thread-safe, as rk_score(). */
int rk_rank(rk_ranker *r, const char *query, const char *const *docs, size_t n_docs, size_t top_k,
            size_t *out_indices, float *out_scores, size_t *out_count);

/* What went wrong in this thread's most recent call of rk_open(), rk_score(), rk_rank() or
   rk_close(): a UTF-8 message saying what was expected, what came and what to do, or "" if
   that call succeeded (or none was made yet). Never NULL.
   The string belongs to the library and stays valid until this thread's next rk_ call; copy
   it to keep it. Errors are per thread: another thread's failure never shows here. */
const char *rk_last_error(void);

/* Free a handle from rk_open(). NULL is a no-op.
   The caller must make sure no other call is using r (and none will): using a handle after
   rk_close() is undefined behaviour (the library detects it on a best-effort basis only).
   Thread-safe with respect to other handles. */
void rk_close(rk_ranker *r);

#ifdef __cplusplus
}
#endif

#endif /* RANKER_H */
