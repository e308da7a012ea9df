package main

import "gears/redismod"

// Ctx is a command's context: it writes the reply (redismod.Ctx).
type Ctx = redismod.Ctx

// call and callReplicated run a Redis command from Go (redismod.Call): they
// take the Redis lock unless this thread holds it, so never call them
// holding a GIL.
var (
	call           = redismod.Call
	callReplicated = redismod.CallReplicated
	replicate      = redismod.Replicate
	logf           = redismod.Log
)

// lowestOwnedSlot is the first slot of the ranges this cluster node serves as
// master (0 when it cannot tell).
func lowestOwnedSlot() int {
	id, err := call("CLUSTER", "MYID")
	if err != nil {
		return 0
	}
	ranges, err := call("CLUSTER", "SLOTS")
	if err != nil {
		return 0
	}
	lowest := -1
	for _, rv := range ranges.([]any) {
		r, ok := rv.([]any)
		if !ok || len(r) < 3 {
			continue
		}
		start, _ := r[0].(int64)
		master, _ := r[2].([]any)
		if len(master) >= 3 && master[2] == id && (lowest < 0 || int(start) < lowest) {
			lowest = int(start)
		}
	}
	if lowest < 0 {
		return 0
	}
	return lowest
}
