package tests

// Sessions, registrations and interpreters ending while other commands
// race them: an interpreter is ended only when nothing can attach to it any
// more, and a lookup racing an unregister or an upgrade gets either a live
// session or registration or a clean "not found".

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RG.PYPROFILE of a session whose only registration was just unregistered,
// in one pipeline: the profile command finds no session (it used to attach
// to the interpreter being ended, and crash within a few hundred rounds).
func TestProfileOfJustUnregisteredSession(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	const rounds = 300
	cmds, err := c.Pipelined(bg(), func(p redis.Pipeliner) error {
		for i := 1; i <= rounds; i++ {
			p.Do(bg(), "RG.PYEXECUTE", "GB().register('x:*', mode='sync')", "ID", fmt.Sprintf("s%d", i))
			// Each script's registering plan takes an id, then its registration.
			p.Do(bg(), "RG.UNREGISTER", fmt.Sprintf("%s-%d", shardZero, 2*i-1))
			p.Do(bg(), "RG.PYPROFILE", "RESET", fmt.Sprintf("s%d", i))
		}
		return nil
	})
	require.Error(t, err) // the profile commands fail
	for i := 0; i < rounds; i++ {
		require.NoError(t, cmds[3*i].Err(), "round %d: RG.PYEXECUTE", i+1)
		require.NoError(t, cmds[3*i+1].Err(), "round %d: RG.UNREGISTER", i+1)
		requireErrText(t, "session does not exists", cmds[3*i+2].Err())
	}
	requireAlive(t, s)
	eventually(t, 10*time.Second, func() bool { return infoRG(t, c, "rg_live_interpreters") <= infoRG(t, c, "rg_ready_interpreters") },
		"the interpreters of the unregistered sessions were not destroyed")
}

const shardZero = "0000000000000000000000000000000000000000"

// `ID k UPGRADE` racing `REPLACE_WITH k` while SETs fire the session's sync
// registration: every reply is a result or a clean error, and afterwards
// every registration belongs to a listed session.
func TestUpgradeRacesReplaceWithWhileEventsFire(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	script := "GB().foreach(lambda r: execute('INCR','cnt')).register('k:*', mode='sync')"
	requirePyOK(t, s.Client, script, "ID", "k")
	deadline := time.Now().Add(4 * time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	run := func(fn func(c *redis.Client, i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.NewClient()
			defer c.Close()
			for i := 0; time.Now().Before(deadline); i++ {
				if err := fn(c, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	run(func(c *redis.Client, i int) error {
		_, err := pyexec(c, script, "ID", "k", "UPGRADE")
		return err
	})
	run(func(c *redis.Client, i int) error {
		_, err := pyexec(c, script, "ID", fmt.Sprintf("r%d", i), "REPLACE_WITH", "k")
		if err != nil && strings.Contains(err.Error(), "session does not exists") {
			return nil // k was replaced already and not yet upgraded back
		}
		if err == nil {
			// The replacement's registration is dropped again so the SETs stay cheap.
			_, err = c.Do(bg(), "RG.PYEXECUTE", "GB().register('none:*')", "ID", fmt.Sprintf("r%d", i), "UPGRADE").Result()
		}
		return err
	})
	run(func(c *redis.Client, i int) error {
		_, err := c.Pipelined(bg(), func(p redis.Pipeliner) error {
			for range 50 {
				p.Set(bg(), "k:1", "v", 0)
			}
			return nil
		})
		return err
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	requireAlive(t, s)
	sessions := map[string]bool{}
	for _, id := range ssIDs(t, s.Client) {
		sessions[id] = true
	}
	for _, r := range regDump(t, s.Client) {
		require.Contains(t, r.PD, "'sessionName':'", "registration %s", r.ID)
		name := strings.SplitN(strings.SplitN(r.PD.(string), "'sessionName':'", 2)[1], "'", 2)[0]
		require.True(t, sessions[name], "registration %s belongs to session %s, which RG.PYDUMPSESSIONS does not list", r.ID, name)
	}
}

// RG.TRIGGER while its session is being upgraded: every trigger runs either
// the old or the new registration (it used to fail with KeyError from
// _run_event when it ran a plan that the upgrade had just dropped).
func TestTriggerDuringUpgrade(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"sync", "async_local"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := startServer(t)
			script := fmt.Sprintf("GB('CommandReader').map(lambda a: 'pong').register(trigger='T', mode='%s')", mode)
			requirePyOK(t, s.Client, script, "ID", "T")
			stop := make(chan struct{})
			upgrades := make(chan error, 1)
			go func() {
				c := s.NewClient()
				defer c.Close()
				for {
					select {
					case <-stop:
						upgrades <- nil
						return
					default:
					}
					if _, err := pyexec(c, script, "ID", "T", "UPGRADE"); err != nil {
						upgrades <- err
						return
					}
				}
			}()
			triggers := 0
			for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
				cmds, _ := s.Client.Pipelined(bg(), func(p redis.Pipeliner) error {
					for range 20 {
						p.Do(bg(), "RG.TRIGGER", "T")
					}
					return nil
				})
				for _, cmd := range cmds {
					v, err := cmd.(*redis.Cmd).Result()
					require.NoError(t, err, "trigger %d", triggers)
					require.Equal(t, []any{"pong"}, v)
					triggers++
				}
			}
			close(stop)
			require.NoError(t, <-upgrades)
			t.Logf("%d triggers during upgrades", triggers)
			requireAlive(t, s)
		})
	}
}

// DEBUG RELOAD while a StreamReader registration has a backlog: the server
// lives (it used to crash, 3 times out of 3), and after the reload every
// entry is processed.
func TestDebugReloadWithStreamBacklog(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB('StreamReader').foreach(lambda r: execute('INCR','c')).register('cs:*')")
	const entries = 3000
	// One at a time, as redis-cli sends them: batches run in between, so
	// some are running and some queued when the reload comes.
	for i := range entries {
		require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "cs:1", Values: []any{"n", i}}).Err())
	}
	require.NoError(t, c.Do(bg(), "DEBUG", "RELOAD").Err())
	requireAlive(t, s)
	eventually(t, 30*time.Second, func() bool {
		groups, err := c.XInfoGroups(bg(), "cs:1").Result()
		return err == nil && len(groups) == 1 && groups[0].Lag == 0 && groups[0].Pending == 0
	}, "the stream's backlog was not processed after DEBUG RELOAD")
	n, err := c.Get(bg(), "c").Int()
	require.NoError(t, err)
	require.GreaterOrEqual(t, n, entries, "entries were lost")
	time.Sleep(2 * time.Second) // the crash came after the backlog, when the old registration's interpreter ended
	requireAlive(t, s)
}

// A call's session ends (its interpreter is destroyed) once the server is
// idle, off the path of the calls that follow; under a steady stream of
// calls no more than 4 per pooled interpreter wait, and once calls stop
// every one ends. A pool that ran dry keeps more interpreters ready.
func TestPyexecuteSessionsEndWhenIdle(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("InterpreterPoolSize", "1"))
	c := s.Client
	stop := time.Now().Add(2 * time.Second)
	most := int64(0)
	for time.Now().Before(stop) {
		_, err := c.Do(bg(), "RG.PYEXECUTE", "GB('ShardsIDReader').count().run()").Result()
		require.NoError(t, err)
		most = max(most, infoRG(t, c, "rg_ending_sessions"))
	}
	assert.Greater(t, most, int64(0), "while calls come, sessions wait for an idle moment to end")
	assert.LessOrEqual(t, most, int64(4), "ending sessions stay within 4 x InterpreterPoolSize")
	eventually(t, 10*time.Second, func() bool {
		return infoRG(t, c, "rg_ending_sessions") == 0 && infoRG(t, c, "rg_live_interpreters") <= infoRG(t, c, "rg_ready_interpreters")
	}, "the ended sessions' interpreters were not destroyed once idle")
	// The pool ran dry: it grew, up to 4 x InterpreterPoolSize.
	eventually(t, 10*time.Second, func() bool { return infoRG(t, c, "rg_ready_interpreters") > 1 }, "the drained pool did not grow")
	assert.LessOrEqual(t, infoRG(t, c, "rg_ready_interpreters"), int64(4))
}

// InterpreterPoolSize 0 keeps no interpreter ready, however fast calls come.
func TestNoInterpreterPool(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("InterpreterPoolSize", "0"))
	c := s.Client
	for range 20 {
		res, err := pyexec(c, "GB('ShardsIDReader').count().run()")
		require.NoError(t, err)
		require.Equal(t, []any{[]any{"1"}, []any{}}, res)
	}
	eventually(t, 10*time.Second, func() bool { return infoRG(t, c, "rg_live_interpreters") == 0 }, "interpreters left alive")
	assert.Equal(t, int64(0), infoRG(t, c, "rg_ready_interpreters"))
}
