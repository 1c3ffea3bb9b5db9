/*
 * libranker.c: the C half of libranker.so (the functions of ranker.h).
 *
 * This file is not compiled on its own: build.py pastes it into the cffi-generated module
 * source (after cffi's embedding support, so Python.h and cffi_start_python() are in scope),
 * preceded by a block of RK__BUILD_* macros that record the interpreter and environment the
 * library was built from. The Python half is _embedded.py, which cffi runs as the module's
 * embedding init code and which implements the four _rk_py_* functions declared below.
 *
 * Why the public functions are C and not `extern "Python"` exports:
 *   - cffi returns 0 (= RK_OK) from an exported Python function when the interpreter or the
 *     init code fails; a C wrapper checks the start-up state first, so a failure can never
 *     read as success;
 *   - rk_version(), rk_abi_version() and rk_last_error() must work when Python cannot start;
 *   - argument checks (NULL pointers, zero counts) cost no GIL round trip;
 *   - cffi's own start-up calls Py_InitializeEx(), which aborts the process if the standard
 *     library is missing; rk__start_python() initialises CPython itself with an isolated
 *     PyConfig that reports failure as a status instead, and then cffi finds it initialised.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ranker.h"

#define RK__EXPORT __attribute__((visibility("default")))
#define RK__ERR_MAX 2048
#define RK__MAGIC 0x726b6872u /* "rkhr" */
#define RK__DEAD 0xdeadbeefu

/* The opaque handle: the id of a Ranker kept in a dict by the Python half. */
struct rk_ranker {
    uint32_t magic;
    long long id;
};

/* --- the Python half (extern "Python" in the cdef; defined by _embedded.py) --------------- */
static int _rk_py_open(const char *package_path, int threads, long long *out_id);
static int _rk_py_score(long long id, const char *query, const char *const *docs, size_t n_docs,
                        float *out_scores);
static int _rk_py_rank(long long id, const char *query, const char *const *docs, size_t n_docs,
                       size_t top_k, size_t *out_indices, float *out_scores, size_t *out_count);
static int _rk_py_close(long long id);

/* --- per-thread error message -------------------------------------------------------------- */
static __thread char rk__err[RK__ERR_MAX];

/* Copy msg into this thread's error buffer, cutting at a UTF-8 character boundary. */
static void rk__set_error(const char *msg)
{
    size_t n;
    if (msg == NULL)
        msg = "";
    n = strlen(msg);
    if (n >= RK__ERR_MAX) {
        n = RK__ERR_MAX - 1;
        while (n > 0 && ((unsigned char)msg[n] & 0xC0) == 0x80)
            n--; /* msg[n] is a continuation byte: back up to the start of its character */
    }
    memcpy(rk__err, msg, n);
    rk__err[n] = '\0';
}

__attribute__((format(printf, 2, 3)))
static int rk__fail(int code, const char *fmt, ...)
{
    char buf[RK__ERR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    rk__set_error(buf);
    return code;
}

/* --- called by the Python half (declared in the cdef) -------------------------------------- */
static volatile int rk__py_ready = 0;  /* the init code finished and defined every function */
static char rk__py_start_error[RK__ERR_MAX];
static int rk__owns_python = 0;        /* we initialised CPython (the host did not) */

static void _rk_set_error(const char *msg) { rk__set_error(msg); }

static void _rk_started(int ok, const char *msg)
{
    if (!ok)
        snprintf(rk__py_start_error, sizeof rk__py_start_error, "%s", msg ? msg : "");
    rk__py_ready = ok;
}

static int _rk_owns_python(void) { return rk__owns_python; }

static const char *_rk_build_info(void) { return RK__BUILD_INFO_JSON; }

/* --- starting the embedded interpreter ------------------------------------------------------ */
static pthread_once_t rk__once = PTHREAD_ONCE_INIT;
static int rk__start_code = RK_E_INTERNAL;
static char rk__start_error[RK__ERR_MAX];

#define RK__REBUILD "; rebuild the library with `ranker bindings build` from the environment " \
                    "you want it to use"

__attribute__((format(printf, 1, 2)))
static int rk__start_fail(const char *fmt, ...)
{
    int n;
    va_list ap;
    n = snprintf(rk__start_error, sizeof rk__start_error, "libranker could not start Python: ");
    va_start(ap, fmt);
    vsnprintf(rk__start_error + n, sizeof rk__start_error - (size_t)n, fmt, ap);
    va_end(ap);
    return RK_E_INTERNAL;
}

static int rk__is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int rk__status_fail(PyStatus st, const char *step)
{
    return rk__start_fail("%s failed: %s%s%s" RK__REBUILD, step, st.func ? st.func : "",
                          st.func ? ": " : "", st.err_msg ? st.err_msg : "(no message)");
}

/* Initialise CPython as the recorded interpreter of the recorded environment, ignoring the
   host's environment variables (isolated config) and its locale. */
static int rk__init_python(void)
{
    static const char *const search_paths[] = {RK__BUILD_SEARCH_PATHS, NULL};
    PyPreConfig pre;
    PyConfig cfg;
    PyStatus st;
    size_t i;

    PyPreConfig_InitIsolatedConfig(&pre);
    pre.utf8_mode = 1; /* UTF-8 whatever the host's locale is, and leave that locale alone */
    st = Py_PreInitialize(&pre);
    if (PyStatus_Exception(st))
        return rk__status_fail(st, "Py_PreInitialize");

    PyConfig_InitIsolatedConfig(&cfg); /* no PYTHON* variables, no user site, no argv */
    cfg.install_signal_handlers = 0;   /* the host's signals are the host's */
    cfg.site_import = 1;               /* site-packages .pth files (editable installs) */
#define RK__SET(field, value)                                                    \
    do {                                                                         \
        st = PyConfig_SetBytesString(&cfg, &cfg.field, value);                   \
        if (PyStatus_Exception(st))                                              \
            goto fail;                                                           \
    } while (0)
    /* sys.executable is the venv's python, so nothing looks for `python3` on PATH */
    RK__SET(program_name, RK__BUILD_EXECUTABLE);
    RK__SET(executable, RK__BUILD_EXECUTABLE);
    RK__SET(prefix, RK__BUILD_PREFIX);
    RK__SET(exec_prefix, RK__BUILD_EXEC_PREFIX);
    RK__SET(base_prefix, RK__BUILD_BASE_PREFIX);
    RK__SET(base_exec_prefix, RK__BUILD_BASE_EXEC_PREFIX);
#undef RK__SET
    cfg.module_search_paths_set = 1;
    for (i = 0; search_paths[i] != NULL; i++) {
        wchar_t *w = Py_DecodeLocale(search_paths[i], NULL);
        if (w == NULL) {
            PyConfig_Clear(&cfg);
            return rk__start_fail("cannot decode the search path %s", search_paths[i]);
        }
        st = PyWideStringList_Append(&cfg.module_search_paths, w);
        PyMem_RawFree(w);
        if (PyStatus_Exception(st))
            goto fail;
    }
    st = Py_InitializeFromConfig(&cfg);
    PyConfig_Clear(&cfg);
    if (PyStatus_Exception(st))
        return rk__status_fail(st, "Py_InitializeFromConfig");
    rk__owns_python = 1;
    PyEval_SaveThread(); /* release the GIL: every call takes it with PyGILState_Ensure */
    return RK_OK;
fail:
    PyConfig_Clear(&cfg);
    return rk__status_fail(st, "configuring Python");
}

static int rk__start(void)
{
    const char *version = Py_GetVersion(); /* safe before initialisation */

    if (strcmp(version, RK__BUILD_PY_VERSION) != 0)
        return rk__start_fail("the library was built for Python %s but the loaded libpython is "
                              "Python %s" RK__REBUILD,
                              RK__BUILD_PY_VERSION, version);
    if (!Py_IsInitialized()) {
        Dl_info info;
        char real[PATH_MAX];
        void *self;
        if (!dladdr((void *)&Py_GetVersion, &info) || info.dli_fname == NULL
            || realpath(info.dli_fname, real) == NULL)
            return rk__start_fail("cannot tell which libpython the loader picked");
        if (strcmp(real, RK__BUILD_LIBPYTHON) != 0)
            return rk__start_fail("the library was built against %s but the loader picked %s "
                                  "(an LD_PRELOAD, or a host already linked to another Python?)"
                                  RK__REBUILD,
                                  RK__BUILD_LIBPYTHON, real);
        if (!rk__is_dir(RK__BUILD_STDLIB))
            return rk__start_fail("the standard library %s of the Python it was built with is "
                                  "gone" RK__REBUILD, RK__BUILD_STDLIB);
        if (!rk__is_dir(RK__BUILD_SITE_PACKAGES))
            return rk__start_fail("the environment it was built from is gone (%s does not "
                                  "exist)" RK__REBUILD, RK__BUILD_SITE_PACKAGES);
        /* A host that dlopen()ed us with RTLD_LOCAL would hide libpython's symbols from the
           extension modules Python loads (numpy, onnxruntime): make them global. */
        self = dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
        if (self == NULL)
            return rk__start_fail("cannot make %s global: %s", info.dli_fname, dlerror());
        if (rk__init_python() != RK_OK)
            return RK_E_INTERNAL;
    }
    /* Runs cffi's start-up: registers this module and runs _embedded.py, which calls
       _rk_started(). A Python traceback, if any, goes to stderr (never stdout). */
    if (cffi_start_python() != 0)
        return rk__start_fail("the embedded start-up code raised (its traceback went to stderr)");
    if (!rk__py_ready)
        return rk__start_fail("%s", rk__py_start_error[0] ? rk__py_start_error
                                                           : "the start-up code did not finish");
    return RK_OK;
}

static void rk__start_once(void)
{
    rk__start_code = rk__start();
}

/* Start Python on the first call (once per process, whichever thread comes first). */
static int rk__ensure_started(void)
{
    pthread_once(&rk__once, rk__start_once);
    if (rk__start_code != RK_OK) {
        rk__set_error(rk__start_error);
        return RK_E_INTERNAL;
    }
    return RK_OK;
}

/* A non-zero code from the Python half always comes with a message. */
static int rk__checked(int code)
{
    if (code != RK_OK && rk__err[0] == '\0')
        rk__set_error("libranker: a call failed without a message (a bug; please report it)");
    return code;
}

static int rk__check_handle(const rk_ranker *r)
{
    if (r == NULL)
        return rk__fail(RK_E_ARGUMENT, "the rk_ranker handle is NULL; pass one from rk_open()");
    if (r->magic != RK__MAGIC)
        return rk__fail(RK_E_ARGUMENT, "the rk_ranker handle is not open (closed already, or not "
                                       "from rk_open())");
    return RK_OK;
}

static int rk__check_texts(const char *query, const char *const *docs, size_t n_docs)
{
    size_t i;
    if (query == NULL)
        return rk__fail(RK_E_ARGUMENT, "query is NULL; pass the query as UTF-8 text");
    if (docs == NULL)
        return rk__fail(RK_E_ARGUMENT, "docs is NULL; pass an array of n_docs UTF-8 texts");
    if (n_docs == 0)
        return rk__fail(RK_E_ARGUMENT, "n_docs is 0; pass at least one document");
    for (i = 0; i < n_docs; i++)
        if (docs[i] == NULL)
            return rk__fail(RK_E_ARGUMENT, "docs[%zu] is NULL; every document must be a UTF-8 "
                                           "text (\"\" for an empty one)", i);
    return RK_OK;
}

/* --- the public API (ranker.h) -------------------------------------------------------------- */
RK__EXPORT const char *rk_version(void) { return RK__BUILD_VERSION; }

RK__EXPORT int rk_abi_version(void) { return RK_ABI_VERSION; }

RK__EXPORT const char *rk_last_error(void) { return rk__err; }

RK__EXPORT int rk_open(const char *package_path, int threads, rk_ranker **out)
{
    long long id = 0;
    int code;
    rk__err[0] = '\0';
    if (out == NULL)
        return rk__fail(RK_E_ARGUMENT, "out is NULL; pass the address of an rk_ranker pointer");
    *out = NULL;
    if ((code = rk__ensure_started()) != RK_OK)
        return code;
    if ((code = rk__checked(_rk_py_open(package_path, threads, &id))) != RK_OK)
        return code;
    *out = (rk_ranker *)malloc(sizeof **out);
    if (*out == NULL) {
        _rk_py_close(id);
        return rk__fail(RK_E_INTERNAL, "out of memory allocating an rk_ranker");
    }
    (*out)->magic = RK__MAGIC;
    (*out)->id = id;
    return RK_OK;
}

RK__EXPORT int rk_score(rk_ranker *r, const char *query, const char *const *docs, size_t n_docs,
                        float *out_scores)
{
    int code;
    rk__err[0] = '\0';
    if ((code = rk__check_handle(r)) != RK_OK || (code = rk__check_texts(query, docs, n_docs)) != RK_OK)
        return code;
    if (out_scores == NULL)
        return rk__fail(RK_E_ARGUMENT, "out_scores is NULL; pass room for n_docs floats");
    if ((code = rk__ensure_started()) != RK_OK)
        return code;
    return rk__checked(_rk_py_score(r->id, query, docs, n_docs, out_scores));
}

RK__EXPORT int rk_rank(rk_ranker *r, const char *query, const char *const *docs, size_t n_docs,
                       size_t top_k, size_t *out_indices, float *out_scores, size_t *out_count)
{
    int code;
    rk__err[0] = '\0';
    if (out_count == NULL)
        return rk__fail(RK_E_ARGUMENT, "out_count is NULL; pass the address of a size_t");
    *out_count = 0;
    if ((code = rk__check_handle(r)) != RK_OK || (code = rk__check_texts(query, docs, n_docs)) != RK_OK)
        return code;
    if (top_k == 0)
        return rk__fail(RK_E_ARGUMENT, "top_k is 0; pass how many results to keep (>= 1)");
    if (out_indices == NULL || out_scores == NULL)
        return rk__fail(RK_E_ARGUMENT, "out_indices and out_scores must not be NULL; pass room "
                                       "for min(top_k, n_docs) entries each");
    if ((code = rk__ensure_started()) != RK_OK)
        return code;
    return rk__checked(_rk_py_rank(r->id, query, docs, n_docs, top_k, out_indices, out_scores,
                                   out_count));
}

RK__EXPORT void rk_close(rk_ranker *r)
{
    rk__err[0] = '\0';
    if (r == NULL || rk__check_handle(r) != RK_OK)
        return;
    r->magic = RK__DEAD;
    if (rk__ensure_started() == RK_OK)
        rk__checked(_rk_py_close(r->id));
    free(r);
}
