package bench

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestBenchExecute measures one execute() call from Python against one
// redis.call() from Lua: a loop of n PINGs (and of n GETs of one key) in a
// script, less an empty script's time, divided by n. Target (issue 13):
// execute() <= 1.5x redis.call.
func TestBenchExecute(t *testing.T) {
	guard(t)
	const n = 200_000
	r := newReport(t, "execute")
	s := startServer(t)
	c := s.Client
	if err := c.Set(bg(), "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	gears := func(body string) func() error {
		script := fmt.Sprintf("for i in range(%d):\n    %s\n", n, body)
		if body == "" {
			script = "pass"
		}
		if strings.HasPrefix(body, "atomic:") {
			script = fmt.Sprintf("with atomic():\n    for i in range(%d):\n        %s\n", n, strings.TrimPrefix(body, "atomic:"))
		}
		return func() error {
			res, err := c.Do(bg(), "RG.PYEXECUTE", script).Result()
			if err != nil {
				return err
			}
			if res != "OK" {
				return fmt.Errorf("RG.PYEXECUTE replied %#v", res)
			}
			return nil
		}
	}
	lua := func(body string) func() error {
		script := fmt.Sprintf("for i = 1, %d do %s end return 1", n, body)
		if body == "" {
			script = "return 1"
		}
		return func() error { return c.Eval(bg(), script, nil).Err() }
	}
	const runs = 7
	perCall := func(loop, empty func() error) time.Duration {
		full, _ := bestOf(t, runs, loop)
		base, _ := bestOf(t, runs, empty)
		return (full - base) / n
	}
	r.line("each: best of %d runs of a script looping %d calls, less the best of %d empty scripts, / %d", runs, n, runs, n)
	r.line("")
	for _, cmd := range []struct{ name, py, lua string }{
		{"PING", "execute('PING')", "redis.call('PING')"},
		{"GET k", "execute('GET', 'k')", "redis.call('GET', 'k')"},
	} {
		g := perCall(gears(cmd.py), gears(""))
		l := perCall(lua(cmd.lua), lua(""))
		// Inside atomic() the script holds the Redis lock, as Lua does.
		a := perCall(gears("atomic:"+cmd.py), gears(""))
		r.line("%-6s  gears execute() %7.0f ns   in atomic() %7.0f ns   Lua redis.call %7.0f ns", cmd.name, float64(g), float64(a), float64(l))
		r.verdict(fmt.Sprintf("%s: execute() / redis.call", cmd.name), float64(g)/float64(l), "<=", 1.5)
		r.verdict(fmt.Sprintf("%s: in atomic() / redis.call", cmd.name), float64(a)/float64(l), "<=", 1.5)
	}
	r.save()
}
