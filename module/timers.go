package main

import (
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"gears/interp"
	"gears/redismod"
	"gears/session"
)

var timerIDs atomic.Int64

// hostRegisterTimer is registerTE's host half: callback `token` of the
// calling session runs every `seconds` seconds on a Python thread, never
// overlapping itself, until it raises. With a key name the event is kept in
// that key (saved with the data, stopped by deleting it); False when the key
// exists already. The timer keeps the session alive.
func hostRegisterTimer(c *interp.Call) (any, error) {
	sess := sessionOf(c)
	if sess == nil {
		return nil, noSession("registerTE")
	}
	// The timer holds the session; a Python thread may outlive it.
	if !sess.Acquire() {
		return nil, errSessionEnded
	}
	started := false
	defer func() {
		if !started {
			sess.Release(g.threads.Go)
		}
	}()
	if len(c.Args) < 3 {
		return nil, errors.New("registerTE is not available here")
	}
	token, _ := c.Args[0].(int64)
	seconds := max(int64Of(c.Args[1]), 1)
	key, keyed := c.Args[2].(string)
	var id int64
	if keyed {
		for id = timerIDs.Add(1); !redismod.ClaimTimer(id); id = timerIDs.Add(1) {
		}
		restoring := redismod.CurrentThread().Restoring()
		l := redismod.Lock()
		ok := redismod.CreateTimerKey(l, key, seconds, id, restoring)
		l.Unlock()
		if !ok {
			redismod.ReleaseTimer(id)
			return false, nil
		}
		sess.Keep(1)
	}
	started = true
	go runTimer(sess, token, time.Duration(seconds)*time.Second, id)
	return true, nil
}

// runTimer fires a time event until it stops: its callback raised, or its
// key (id != 0) was deleted. It fires on masters only.
func runTimer(sess *session.Session, token int64, period time.Duration, id int64) {
	// isMaster and saveSnapshot take the Redis lock, and a lock taken on one
	// OS thread must be released on the same one.
	runtime.LockOSThread()
	defer func() {
		if id != 0 {
			redismod.ReleaseTimer(id)
			if sess.Keep(-1) == 0 && len(g.regs.OfSession(sess)) == 0 {
				g.sessions.Remove(sess)
			}
			saveSnapshot()
		}
		sess.Release(g.threads.Go)
	}()
	for {
		time.Sleep(period)
		if id != 0 && !redismod.TimerAlive(id) {
			return
		}
		if !isMaster() {
			continue
		}
		keep := make(chan bool, 1)
		g.threads.Go(func() {
			ok := false
			defer func() {
				if r := recover(); r != nil {
					logPanic("time event", r)
				}
				keep <- ok
			}()
			withSession(sess, func(t *interp.Thread) error {
				v, err := t.Call("redisgears", "_fire_timer", token)
				ok = err == nil && v == true
				return nil
			})
		})
		if !<-keep {
			return
		}
	}
}

func isMaster() bool {
	l := redismod.Lock()
	defer l.Unlock()
	return redismod.IsMaster(l)
}
