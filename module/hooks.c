// Command hooks: a command filter turns a hooked command into
// `RG.INNERHOOK <command> <args...>`, which runs the hook registrations.
// The filter runs for every command, so it is C only: a short list of hooked
// names, replaced by Go with the Redis lock held (the filter holds it too).
#include <strings.h>
#include <string.h>
#include "module.h"

#define MAX_HOOKED 64
static char *hooked[MAX_HOOKED];
static int nhooked;

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
            rm.CommandFilterArgInsert(f, 0, rm.CreateString(NULL, "RG.INNERHOOK", 12));
            return;
        }
    }
}

int gears_register_hook_filter(RedisModuleCtx *ctx) {
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
