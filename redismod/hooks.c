// Command hooks: a command filter turns a hooked command into
// `RG.INNERHOOK <command> <args...>`, which runs the hook registrations.
// The filter runs for every command, so it is C only: a short list of hooked
// names, replaced by Go with the Redis lock held (the filter holds it too).
//
// The name the filter inserts is always the same string object, which gears
// holds for the process's life: RG.INNERHOOK knows it was made by the filter
// when its argv[0] is that object. A client that sends RG.INNERHOOK itself
// has an argv[0] of its own, and is refused.
#include <strings.h>
#include <string.h>
#include "redismod.h"

#define MAX_HOOKED 64
static char *hooked[MAX_HOOKED];
static int nhooked;
static RedisModuleString *marker;

void gears_set_hooked(char **names, int n) {
    for (int i = 0; i < nhooked; i++) free(hooked[i]);
    nhooked = n < MAX_HOOKED ? n : MAX_HOOKED;
    for (int i = 0; i < nhooked; i++) hooked[i] = names[i]; // takes ownership
}

static void hook_filter(RedisModuleCommandFilterCtx *f) {
    if (nhooked == 0 || rm.CommandFilterArgsCount(f) < 1) return;
    size_t n;
    const char *cmd = rm.StringPtrLen(rm.CommandFilterArgGet(f, 0), &n);
    for (int i = 0; i < nhooked; i++) {
        if (strlen(hooked[i]) == n && strncasecmp(hooked[i], cmd, n) == 0) {
            rm.RetainString(NULL, marker); // the filter's reference, dropped with the command's argv
            rm.CommandFilterArgInsert(f, 0, marker);
            return;
        }
    }
}

int gears_is_hook_marker(RedisModuleString **argv) { return argv[0] == marker; }

int gears_register_hook_filter(RedisModuleCtx *ctx) {
    marker = rm.CreateString(NULL, "RG.INNERHOOK", 12); // never freed
    return rm.RegisterCommandFilter(ctx, hook_filter, REDISMODULE_CMDFILTER_NOSELF) ? REDISMODULE_OK : REDISMODULE_ERR;
}

// Whether any key of the command argv[0..argc) starts with prefix.
int gears_command_has_key_prefix(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, const char *prefix, size_t plen) {
    int nkeys = 0;
    int *pos = rm.GetCommandKeys(ctx, argv, argc, &nkeys);
    if (!pos) return 0;
    int found = 0;
    for (int i = 0; i < nkeys && !found; i++) {
        size_t n;
        const char *k = rm.StringPtrLen(argv[pos[i]], &n);
        found = n >= plen && memcmp(k, prefix, plen) == 0;
    }
    rm.Free(pos);
    return found;
}

// The positions of the keys of command argv[0..argc), at most max of them
// in out; returns how many there are (-1: Redis cannot tell).
int gears_command_key_positions(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int *out, int max) {
    int nkeys = 0;
    int *pos = rm.GetCommandKeys(ctx, argv, argc, &nkeys);
    if (!pos) return -1;
    for (int i = 0; i < nkeys && i < max; i++) out[i] = pos[i];
    rm.Free(pos);
    return nkeys;
}
