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
