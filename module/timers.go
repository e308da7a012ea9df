package main

import (
	"errors"
	"time"

	"gears/interp"
)

// hostRegisterTimer is registerTE's host half: callback `token` of the
// calling session runs every `seconds` seconds on a Python thread, never
// overlapping itself, until it raises. The timer keeps the session alive.
func hostRegisterTimer(c *interp.Call) (any, error) {
	sess := sessionOf(c.Interp)
	token, _ := c.Args[0].(int64)
	seconds, _ := c.Args[1].(int64)
	if sess == nil {
		return nil, errors.New("registerTE is not available here")
	}
	if seconds < 1 {
		seconds = 1
	}
	sess.Hold()
	go func() {
		defer sess.Release(g.threads.Go)
		for {
			time.Sleep(time.Duration(seconds) * time.Second)
			keep := make(chan bool, 1)
			g.threads.Go(func() {
				ok := false
				defer func() {
					if r := recover(); r != nil {
						logPanic("time event", r)
					}
					keep <- ok
				}()
				withInterp(sess.Interp, func(t *interp.Thread) error {
					v, err := t.Call("redisgears", "_fire_timer", token)
					ok = err == nil && v == true
					return nil
				})
			})
			if !<-keep {
				return
			}
		}
	}()
	return nil, nil
}
