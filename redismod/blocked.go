package redismod

/*
#include "redismod.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
)

// Blocked is a client waiting for work done off the main thread. C holds
// only its handle; the Go value lives in the registry until Redis frees it.
type Blocked struct {
	bc           *C.RedisModuleBlockedClient
	handle       uint64
	writer       atomic.Pointer[func(Ctx)]
	onDisconnect atomic.Pointer[func()]
}

type blockedSet struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]*Blocked
	byBC map[*C.RedisModuleBlockedClient]*Blocked
}

var blocked = &blockedSet{m: map[uint64]*Blocked{}, byBC: map[*C.RedisModuleBlockedClient]*Blocked{}}

// Block blocks the client of c (no timeout). The background time counts in
// the command's duration, so a long RG.PYEXECUTE shows in SLOWLOG.
func Block(c Ctx) *Blocked {
	b := &Blocked{bc: C.gears_block(c.p)}
	blocked.mu.Lock()
	blocked.next++
	b.handle = blocked.next
	blocked.m[b.handle] = b
	blocked.byBC[b.bc] = b
	blocked.mu.Unlock()
	C.w_MeasureStart(b.bc)
	return b
}

// Unblock hands the reply writer to the main thread; any thread may call it,
// once.
func (b *Blocked) Unblock(write func(Ctx)) {
	b.writer.Store(&write)
	C.w_MeasureEnd(b.bc)
	C.gears_unblock(b.bc, C.uint64_t(b.handle))
}

func (b *Blocked) reply(c Ctx) {
	if w := b.writer.Load(); w != nil {
		(*w)(c)
		return
	}
	c.Error("ERR gears produced no reply")
}

func (s *blockedSet) get(h uint64) *Blocked {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[h]
}

// OnDisconnect makes fn what happens when the client leaves (or is killed)
// before its reply: the work it waits for is stopped. Any thread may set it.
func (b *Blocked) OnDisconnect(fn func()) { b.onDisconnect.Store(&fn) }

// disconnected runs on the main thread when the client of bc left.
func (s *blockedSet) disconnected(bc *C.RedisModuleBlockedClient) {
	s.mu.Lock()
	b := s.byBC[bc]
	s.mu.Unlock()
	if b == nil {
		return
	}
	if fn := b.onDisconnect.Load(); fn != nil {
		(*fn)()
	}
}

func (s *blockedSet) finish(h uint64) {
	s.mu.Lock()
	b := s.m[h]
	delete(s.m, h)
	if b != nil {
		delete(s.byBC, b.bc)
	}
	s.mu.Unlock()
}
