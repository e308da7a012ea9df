package redismod

/*
#include "redismod.h"
*/
import "C"

import "unsafe"

// Load-time registrations: what gears asks Redis to call it for.

// Subscribe registers everything but the commands: gears' data types (RDB
// aux data, keyed time events), server events, the command filter of hooks,
// keyspace events and INFO.
func Subscribe(c Ctx) error {
	for _, s := range []struct {
		what string
		rc   C.int
	}{
		{"the time event data type", C.gears_create_te_type(c.p)},
		{"the RDB aux data type", C.gears_create_aux_type(c.p)},
		{"server events", C.gears_subscribe_server_events(c.p)},
		{"the command filter", C.gears_register_hook_filter(c.p)},
		{"keyspace events", C.gears_subscribe_keyspace(c.p)},
		{"the INFO section", C.gears_register_info(c.p)},
	} {
		if s.rc != C.REDISMODULE_OK {
			return &subscribeError{s.what}
		}
	}
	C.gears_cluster_listen(c.p)
	return nil
}

type subscribeError struct{ what string }

func (e *subscribeError) Error() string { return "cannot register " + e.what }

// ServerEvent is a server event gears follows.
type ServerEvent int

const (
	LoadingStarted ServerEvent = iota + 1 // RDB, AOF or a master's data: the dataset is replaced
	LoadingEnded
	BecameMaster // a replica was promoted
	ForkedChild  // in the parent, right after a fork
)

func serverEventOf(event, sub C.int) (ServerEvent, bool) {
	switch {
	case event == C.REDISMODULE_EVENT_FORK_CHILD:
		return ForkedChild, sub == C.REDISMODULE_SUBEVENT_FORK_CHILD_BORN
	case event == C.REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED:
		return BecameMaster, sub == C.REDISMODULE_SUBEVENT_REPLROLECHANGED_NOW_MASTER
	case event != C.REDISMODULE_EVENT_LOADING:
		return 0, false
	}
	switch sub {
	case C.REDISMODULE_SUBEVENT_LOADING_RDB_START, C.REDISMODULE_SUBEVENT_LOADING_AOF_START, C.REDISMODULE_SUBEVENT_LOADING_REPL_START:
		return LoadingStarted, true
	case C.REDISMODULE_SUBEVENT_LOADING_ENDED:
		return LoadingEnded, true
	}
	return 0, false
}

// IsMaster reports whether this server is a master.
func IsMaster(Locked) bool { return C.gears_is_master() == 1 }

// SetSnapshot replaces the bytes aux_save writes (the snapshot, then the
// wheel files at paths): a fork never sees a half-made one.
func SetSnapshot(_ Locked, data []byte, paths []string) {
	buf := C.CBytes(data)
	var cpaths **C.char
	if len(paths) > 0 {
		cpaths = (**C.char)(C.calloc(C.size_t(len(paths)), C.size_t(unsafe.Sizeof((*C.char)(nil)))))
		cs := unsafe.Slice(cpaths, len(paths))
		for i, p := range paths {
			cs[i] = C.CString(p)
		}
	}
	C.gears_set_snapshot((*C.char)(buf), C.size_t(len(data)), cpaths, C.size_t(len(paths)))
}

// SetHooked gives the command filter the hooked command names.
func SetHooked(_ Locked, names []string) {
	cnames := make([]*C.char, len(names))
	for i, n := range names {
		cnames[i] = C.CString(n) // owned by C from here
	}
	var p **C.char
	if len(cnames) > 0 {
		p = &cnames[0]
	}
	C.gears_set_hooked(p, C.int(len(cnames)))
}

// HasKeyPrefix reports whether a key of the command argv (as Redis finds
// its keys) starts with prefix.
func HasKeyPrefix(_ Locked, argv []string, prefix string) (found bool) {
	cp := C.CString(prefix)
	withRedisStrings(argv, func(p **C.RedisModuleString, n C.int) {
		found = C.gears_command_has_key_prefix(C.gears_detached, p, n, cp, C.size_t(len(prefix))) == 1
	})
	C.free(unsafe.Pointer(cp))
	return found
}

// CommandKeys lists the keys of the command argv, as Redis finds them.
func CommandKeys(_ Locked, argv []string) (keys []string) {
	var pos [16]C.int
	withRedisStrings(argv, func(p **C.RedisModuleString, n C.int) {
		k := int(C.gears_command_key_positions(C.gears_detached, p, n, &pos[0], C.int(len(pos))))
		for i := 0; i < k && i < len(pos); i++ {
			keys = append(keys, argv[pos[i]])
		}
	})
	return keys
}

// Keyed time events (timers.c): a key of type rg_timeev holds a timer's
// period; deleting the key stops the timer.

// ClaimTimer reserves a slot for timer id; false: the slot is taken, try
// another id.
func ClaimTimer(id int64) bool { return C.gears_te_claim(C.int64_t(id)) == 1 }

// ReleaseTimer frees timer id's slot.
func ReleaseTimer(id int64) { C.gears_te_release(C.int64_t(id)) }

// TimerAlive reports whether timer id's key still holds it.
func TimerAlive(id int64) bool { return C.gears_te_alive(C.int64_t(id)) == 1 }

// CreateTimerKey makes key hold a time event of period seconds run by
// timer id, or with attach (restoring) gives an existing one that timer;
// false: the key exists.
func CreateTimerKey(_ Locked, key string, seconds, id int64, attach bool) bool {
	return C.gears_te_create(cData(key), C.size_t(len(key)), C.int64_t(seconds), C.int64_t(id), cBool(attach)) == 1
}
