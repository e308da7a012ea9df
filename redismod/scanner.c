// The KeysReader's SCAN, read one chunk ahead: while Python works on a chunk,
// a helper thread of the scanner reads the next one under the Redis lock, so
// a big read uses two cores (Redis's work and Python's) instead of taking
// turns on one.
//
// Deadlock freedom: the helper waits only for the Redis lock, and the reader
// (the Python thread) waits for the helper only when it does not hold that
// lock itself; one that holds it (the main thread, atomic()) takes back a
// request the helper has not started and reads the chunk itself. The reader
// never waits holding its GIL either: SCAN may expire keys, and the events
// of that may run a sync registration's Python on the helper. Lock order:
// the Redis lock, then the scanner's mutex; the reader never waits for the
// Redis lock while holding the mutex.
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "redismod.h"

// Helper threads alive at once, over every scanner: a script that keeps many
// scans open reads the rest without one (as a scan of one chunk does).
#define MAX_HELPERS 16
static atomic_int helpers;

enum { IDLE, REQUESTED, READING, READY };

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int state;
    int refs;          // the reader's and the helper's
    int closed;        // the reader is gone: the helper exits
    int helper;        // a helper thread runs
    int done;          // the last chunk was returned
    int consuming;     // a reader is in gears_scanner_next (one at a time)
    char cursor[32];   // of the next chunk
    pyhost_keys *ahead; // READY: the chunk read ahead (NULL: failed, see err)
    char err[256];
    gears_session sess; // a copy: the scanner may outlive the session's half
    char *pattern;
    long long count;
    int read_value;
} scanner;

static void unref(scanner *sc) {
    // Called with sc->mu held; frees sc when its last user leaves.
    if (--sc->refs > 0) {
        pthread_mutex_unlock(&sc->mu);
        return;
    }
    pthread_mutex_unlock(&sc->mu);
    if (sc->ahead) gears_free_keys(sc->ahead);
    if (sc->sess.user) rm.FreeString(NULL, sc->sess.user);
    free(sc->pattern);
    pthread_cond_destroy(&sc->cond);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
}

// Waits (sc->mu held) for a request; 0 when none came for HELPER_IDLE_MS:
// a scan its reader stopped reading gives its helper's place back.
#define HELPER_IDLE_MS 200
static int wait_request(scanner *sc) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += HELPER_IDLE_MS * 1000000L;
    until.tv_sec += until.tv_nsec / 1000000000L;
    until.tv_nsec %= 1000000000L;
    while (sc->state != REQUESTED && !sc->closed) {
        if (pthread_cond_timedwait(&sc->cond, &sc->mu, &until) != 0 && sc->state != REQUESTED) return 0;
    }
    return 1;
}

static void *helper(void *arg) {
    scanner *sc = arg;
    gears_thread *t = gears_thread_state();
    pthread_mutex_lock(&sc->mu);
    for (;;) {
        if (!wait_request(sc)) {
            sc->helper = 0; // the next request starts another
            break;
        }
        if (sc->closed) break;
        pthread_mutex_unlock(&sc->mu);
        int locked = gears_lock(t);
        pthread_mutex_lock(&sc->mu);
        if (sc->closed || sc->state != REQUESTED) { // taken back meanwhile
            pthread_mutex_unlock(&sc->mu);
            gears_unlock(t, locked);
            pthread_mutex_lock(&sc->mu);
            continue;
        }
        sc->state = READING;
        char cursor[sizeof sc->cursor];
        memcpy(cursor, sc->cursor, sizeof cursor);
        pthread_mutex_unlock(&sc->mu);
        char err[sizeof sc->err] = {0};
        pyhost_keys *keys = gears_scan_chunk(&sc->sess, cursor, sc->pattern, sc->count, sc->read_value, err, sizeof err);
        gears_unlock(t, locked);
        pthread_mutex_lock(&sc->mu);
        sc->ahead = keys;
        memcpy(sc->err, err, sizeof err);
        sc->state = READY;
        pthread_cond_broadcast(&sc->cond);
    }
    unref(sc);
    atomic_fetch_sub(&helpers, 1);
    return NULL;
}

void *gears_scanner_open(void *cell, const char *pattern, long long count, int read_value, char *err,
                         size_t errlen) {
    gears_session *s = gears_session_at(cell);
    // Without its session there is no ACL user to check the keys against.
    if (!s && gears_shared_mode) {
        snprintf(err, errlen, "the KeysReader is not available on threads started by Python under "
                              "IsolationMode shared (gears cannot tell their session)");
        return NULL;
    }
    scanner *sc = calloc(1, sizeof *sc);
    char *pat = strdup(pattern);
    if (!sc || !pat) {
        free(sc);
        free(pat);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cond, NULL);
    sc->refs = 1;
    strcpy(sc->cursor, "0");
    sc->pattern = pat;
    sc->count = count;
    sc->read_value = read_value;
    if (s) {
        sc->sess.key = s->key;
        if (s->user) {
            size_t n;
            const char *name = rm.StringPtrLen(s->user, &n);
            sc->sess.user = rm.CreateString(NULL, name, n);
        }
    }
    return sc;
}

// Asks the helper for the chunk at sc->cursor, starting it the first time;
// with sc->mu held. Without a helper (MAX_HELPERS are busy, or no thread
// could be made), the reader reads each chunk itself.
static void request_ahead(scanner *sc) {
    if (!sc->helper) {
        if (atomic_fetch_add(&helpers, 1) >= MAX_HELPERS) {
            atomic_fetch_sub(&helpers, 1);
            return;
        }
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        sc->refs++;
        if (pthread_create(&th, &attr, helper, sc) != 0) {
            sc->refs--;
            atomic_fetch_sub(&helpers, 1);
            pthread_attr_destroy(&attr);
            return;
        }
        pthread_attr_destroy(&attr);
        sc->helper = 1;
    }
    sc->state = REQUESTED;
    pthread_cond_broadcast(&sc->cond);
}

pyhost_keys *gears_scanner_next(void *cell, void *p, char *err, size_t errlen) {
    scanner *sc = p;
    // Another session's scanner reads as its user: never handed over.
    gears_session *s = gears_session_at(cell);
    if ((s ? s->key : 0) != sc->sess.key) {
        snprintf(err, errlen, "this KeysReader scan belongs to another session");
        return NULL;
    }
    gears_thread *t = gears_thread_state();
    pthread_mutex_lock(&sc->mu);
    if (sc->done) {
        pthread_mutex_unlock(&sc->mu);
        return NULL;
    }
    // Python threads may share a scanner; their reads take turns, or two
    // could read the same chunk and ask the helper for one more.
    if (sc->consuming) {
        pthread_mutex_unlock(&sc->mu);
        snprintf(err, errlen, "this KeysReader scan is being read by another thread");
        return NULL;
    }
    sc->consuming = 1;
    if (sc->state == REQUESTED && t->lock_held) sc->state = IDLE; // the helper could not have it before we let go
    while (sc->state == REQUESTED || sc->state == READING) pthread_cond_wait(&sc->cond, &sc->mu);
    pyhost_keys *keys = NULL;
    if (sc->state == READY) {
        keys = sc->ahead;
        sc->ahead = NULL;
        snprintf(err, errlen, "%s", sc->err);
        sc->state = IDLE;
    } else {
        char cursor[sizeof sc->cursor];
        memcpy(cursor, sc->cursor, sizeof cursor);
        pthread_mutex_unlock(&sc->mu);
        keys = gears_scan_chunk(&sc->sess, cursor, sc->pattern, sc->count, sc->read_value, err, errlen);
        pthread_mutex_lock(&sc->mu);
    }
    if (!keys || keys->next_len >= sizeof sc->cursor || (keys->next_len == 1 && keys->next[0] == '0')) {
        sc->done = 1;
        if (keys && keys->next_len >= sizeof sc->cursor) { // never a SCAN cursor
            gears_free_keys(keys);
            keys = NULL;
            snprintf(err, errlen, "SCAN returned a malformed cursor");
        }
    } else {
        memcpy(sc->cursor, keys->next, keys->next_len);
        sc->cursor[keys->next_len] = 0;
        if (!t->lock_held) request_ahead(sc);
    }
    sc->consuming = 0;
    pthread_mutex_unlock(&sc->mu);
    return keys;
}

void gears_scanner_close(void *p) {
    scanner *sc = p;
    pthread_mutex_lock(&sc->mu);
    // Nothing is waited for: the reader holds its GIL here, and a chunk being
    // read may need it (see above). The helper needs nothing the reader
    // owns, and the last of the two to leave frees the scanner.
    sc->closed = 1;
    pthread_cond_broadcast(&sc->cond);
    unref(sc);
}
