// What the natives of module _gears (natives.c, events.c) need from the
// process that embeds Python: running its commands, reading its keys, writing
// a reply, and knowing when Python leaves for it. interp defines the table;
// the host's binding (redismod) fills it once, before the first interpreter.
// Every value crosses as plain C (pointers and lengths, opaque handles), so
// interp's C never sees the host's API and the host's C never sees CPython.
//
// `sess` is the session cell of an interpreter (Interp.SetSession), passed
// back as the host gave it; the host decides whose session runs (its own
// thread state first).
#ifndef GEARS_PYHOST_H
#define GEARS_PYHOST_H

#include <stddef.h>

// A command's reply, walked by the reply_* functions.
enum { PYHOST_STRING, PYHOST_ERROR, PYHOST_INTEGER, PYHOST_ARRAY, PYHOST_NULL };

// call's outcome.
enum { PYHOST_REPLY, PYHOST_NONE, PYHOST_FAILED };

// A key read for a reader: its type's name and, when asked, its value.
enum { PYHOST_VALUE_NONE, PYHOST_VALUE_STRING, PYHOST_VALUE_LIST, PYHOST_VALUE_HASH };
typedef struct {
    const char *name;
    size_t name_len;
    const char *type;  // RedisGears' name of its type
    int kind;          // PYHOST_VALUE_*
    const char *str;   // PYHOST_VALUE_STRING (NULL: none)
    size_t str_len;
    void *reply;       // PYHOST_VALUE_LIST/HASH: an array reply (NULL: none)
    void *owned;       // the host's, for free_key
} pyhost_key;

typedef struct {
    const char *next; // the next SCAN cursor
    size_t next_len;
    int read_value;   // the keys' values were read
    size_t n;
    pyhost_key *keys;
    void *owned;
} pyhost_keys;

typedef struct {
    // Runs command argv[0..argc) as sess's user; with the GIL released (it
    // may wait for the host's lock). PYHOST_REPLY sets *reply (free it),
    // PYHOST_NONE asks for None, PYHOST_FAILED fills err.
    int (*call)(void *sess, int argc, const char **argv, const size_t *lens, void **reply, char *err, size_t errlen);
    int (*reply_type)(void *r);
    const char *(*reply_str)(void *r, size_t *len);
    long long (*reply_int)(void *r);
    size_t (*reply_len)(void *r);
    void *(*reply_elem)(void *r, size_t i);
    void (*reply_free)(void *r);

    // atomic(): whether this thread is inside one; entering (GIL released)
    // and leaving it.
    int (*in_atomic)(void);
    void (*atomic_enter)(void *sess);
    void (*atomic_exit)(void);

    // The KeysReader: a whole SCAN, chunk by chunk, of the keys sess's user
    // may read, and one key (0: the user may not read it). scanner_open
    // returns NULL (err filled) when sess cannot be told; scanner_next (GIL
    // released) returns the next chunk, or NULL at the end (err empty) or on
    // failure; scanner_close (GIL held) waits for nothing.
    void *(*scanner_open)(void *sess, const char *pattern, long long count, int read_value, char *err, size_t errlen);
    pyhost_keys *(*scanner_next)(void *sess, void *scanner, char *err, size_t errlen);
    void (*scanner_close)(void *scanner);
    void (*free_keys)(pyhost_keys *k);
    int (*read_key)(void *sess, const char *name, size_t len, int read_value, pyhost_key *out);
    void (*free_key)(pyhost_key *k);

    // The key of the session this thread runs Python for now (0: none).
    long long (*session_key)(void);

    // A command's argument, and its client's reply (events.c's trigger).
    const char *(*arg)(void *argv, int i, size_t *len);
    void (*reply_with_int)(void *ctx, long long v);
    void (*reply_with_string)(void *ctx, const char *p, size_t n);
    void (*reply_with_array)(void *ctx, long n);
    void (*reply_with_status)(void *ctx, const char *s);

    // Around every call out of Python into the host (host functions, a
    // reply): the host may need to know (see redismod's busy.c).
    int (*leave_python)(void);
    void (*return_to_python)(int left);
} pyhost;

// Set once by interp.UseHost; NULL until then (interp's own tests).
extern const pyhost *py_host;

#endif
