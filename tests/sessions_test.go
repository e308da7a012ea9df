package tests

// Sessions: RG.PYEXECUTE ID / DESCRIPTION / UPGRADE / REPLACE_WITH, the
// rollback of a failing script, RG.PYDUMPSESSIONS and the end of a session
// with its last registration (reference §1.1, §2.2).

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// ssSession is one RG.PYDUMPSESSIONS entry.
type ssSession struct {
	Raw    []any
	ID     string
	Desc   any
	Regs   []any
	Fields map[string]any
}

// ssDump is RG.PYDUMPSESSIONS args...; entries that are not sessions (the
// "does not exists" strings of SESSIONS) come back as Raw == nil, ID = text.
func ssDump(t testing.TB, c *redis.Client, args ...any) []ssSession {
	t.Helper()
	res, err := c.Do(bg(), append([]any{"RG.PYDUMPSESSIONS"}, args...)...).Result()
	require.NoError(t, err, "RG.PYDUMPSESSIONS %v", args)
	l, ok := res.([]any)
	require.True(t, ok, "RG.PYDUMPSESSIONS replied %#v", res)
	out := make([]ssSession, 0, len(l))
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, ssSession{ID: s})
			continue
		}
		raw, ok := v.([]any)
		require.True(t, ok, "session entry %#v", v)
		require.Len(t, raw, 16, "session entry %#v", raw)
		f := regPairs(t, raw, "session entry")
		e := ssSession{Raw: raw, Fields: f, Desc: f["sessionDescription"]}
		e.ID, _ = f["ID"].(string)
		e.Regs, ok = f["registrations"].([]any)
		require.True(t, ok, "registrations of %#v", raw)
		out = append(out, e)
	}
	return out
}

// ssOnly is the one session there is.
func ssOnly(t testing.TB, c *redis.Client) ssSession {
	t.Helper()
	l := ssDump(t, c)
	require.Len(t, l, 1, "sessions: %#v", l)
	return l[0]
}

// ssIDs are the ids of the sessions listed.
func ssIDs(t testing.TB, c *redis.Client) []string {
	t.Helper()
	var out []string
	for _, s := range ssDump(t, c) {
		out = append(out, s.ID)
	}
	return out
}

// ssRegIDs are the ids of the registrations listed.
func ssRegIDs(t testing.TB, c *redis.Client) []string {
	t.Helper()
	var out []string
	for _, e := range regDump(t, c) {
		out = append(out, e.ID)
	}
	return out
}

// ssRequireSame checks a session entry did not change, apart from refCount
// (which executions of its registrations hold too).
func ssRequireSame(t testing.TB, want, got ssSession) {
	t.Helper()
	for k, v := range want.Fields {
		if k != "refCount" {
			require.Equal(t, v, got.Fields[k], "session field %s", k)
		}
	}
}

func TestSessionDump(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB('CommandReader').count().register(trigger='test')", "ID", "test", "DESCRIPTION", "desc")
	rid := regOnly(t, c).ID

	t.Run("entry", func(t *testing.T) {
		e := ssOnly(t, c)
		require.Equal(t, []any{"ID", "test", "sessionDescription", "desc", "refCount", int64(1), "linked", "primary",
			"dead", "false", "requirementInstallationNeeded", int64(0), "requirements", []any{}, "registrations", []any{rid}}, e.Raw)
		pd, _ := regOnly(t, c).PD.(string)
		require.Contains(t, pd, "'sessionName':'test'")
		require.Contains(t, pd, "'sessionDescription':'desc'")
	})

	t.Run("VERBOSE", func(t *testing.T) {
		for _, opt := range []string{"VERBOSE", "verbose"} {
			e := ssDump(t, c, opt)
			require.Len(t, e, 1)
			require.Len(t, e[0].Regs, 1)
			reg, ok := e[0].Regs[0].([]any)
			require.True(t, ok, "a VERBOSE registration is not a dump: %#v", e[0].Regs[0])
			require.Len(t, reg, 10, "registration without PD: %#v", reg)
			require.Equal(t, []any{"id", rid, "reader", "CommandReader", "desc", nil}, reg[:6])
			require.Equal(t, "RegistrationData", reg[6])
			require.Equal(t, []any{"ExecutionThreadPool", "DefaultPool"}, reg[8:])
		}
	})

	t.Run("SESSIONS", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').register(trigger='other')", "ID", "other")
		require.ElementsMatch(t, []string{"test", "other"}, ssIDs(t, c))
		l := ssDump(t, c, "SESSIONS", "other", "nosuch", "test")
		require.Len(t, l, 3)
		require.Equal(t, "other", l[0].ID)
		require.Nil(t, l[1].Raw)
		require.Equal(t, "Session nosuch does not exists", l[1].ID)
		require.Equal(t, "test", l[2].ID)
		require.Empty(t, ssDump(t, c, "SESSIONS"))
		l = ssDump(t, c, "verbose", "sessions", "test")
		require.Len(t, l, 1)
		require.IsType(t, []any{}, l[0].Regs[0])
	})

	t.Run("unknown option", func(t *testing.T) {
		_, err := c.Do(bg(), "RG.PYDUMPSESSIONS", "foo").Result()
		requireErrText(t, "Unknown option foo", err)
		_, err = c.Do(bg(), "RG.PYDUMPSESSIONS", "VERBOSE", "bar", "SESSIONS", "test").Result()
		requireErrText(t, "Unknown option bar", err)
	})

	t.Run("a script without registrations leaves no session", func(t *testing.T) {
		requirePyOK(t, c, "x = 1", "ID", "plain", "DESCRIPTION", "d")
		require.NotContains(t, ssIDs(t, c), "plain")
		requirePyOK(t, c, "x = 2", "ID", "plain") // the id is free: no "already exists"
		require.NotContains(t, ssIDs(t, c), "plain")
	})
}

func TestSessionGeneratedID(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB('CommandReader').register(trigger='t1')")
	requirePyOK(t, c, "GB('CommandReader').register(trigger='t2')")
	l := ssDump(t, c)
	require.Len(t, l, 2)
	for _, e := range l {
		require.Regexp(t, `^[0-9a-fA-F]{40}$`, e.ID)
		require.Nil(t, e.Desc)
		require.Len(t, e.Regs, 1)
	}
	require.NotEqual(t, l[0].ID, l[1].ID)
	for _, r := range regDump(t, c) {
		pd, _ := r.PD.(string)
		require.Contains(t, pd, "'sessionDescription':null")
	}
}

func TestSessionAlreadyExists(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB('CommandReader').count().register(trigger='test')", "ID", "test")
	regRequireTrigger(t, c, []any{"1"}, "test")
	before := ssRegIDs(t, c)

	_, err := pyexec(c, "GB('CommandReader').map(lambda x: 'new').register(trigger='other', mode='sync')", "ID", "test")
	requireErrText(t, "Session test already exists", err)
	_, err = pyexec(c, "x = 1", "ID", "test")
	requireErrText(t, "Session test already exists", err)
	require.Equal(t, before, ssRegIDs(t, c))
	require.Equal(t, []string{"test"}, ssIDs(t, c))
	_, err = regTrigger(c, "other")
	require.EqualError(t, err, "ERR subcommand not found")
	regRequireTrigger(t, c, []any{"1"}, "test")
}

func TestSessionUpgrade(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("replaces the registrations", func(t *testing.T) {
		requirePyOK(t, c, py(
			"GB('CommandReader').map(lambda x: 'old a').register(trigger='a')",
			"GB('CommandReader').register(trigger='b')",
			"GB().foreach(lambda x: execute('incr', 'old_hits')).register('k*', mode='sync')",
		), "ID", "s", "DESCRIPTION", "first")
		old := ssRegIDs(t, c)
		require.Len(t, old, 3)
		regRequireTrigger(t, c, []any{"old a"}, "a")

		requirePyOK(t, c, py(
			"GB('CommandReader').map(lambda x: 'new a').register(trigger='a', mode='sync')",
			"GB().foreach(lambda x: execute('incr', 'new_hits')).register('k*', mode='sync')",
		), "ID", "s", "DESCRIPTION", "second", "UPGRADE")
		regs := regDump(t, c)
		require.Len(t, regs, 2)
		for _, r := range regs {
			require.NotContains(t, old, r.ID, "an old registration survived the upgrade")
			require.Equal(t, "sync", r.Data["mode"])
		}
		regRequireTrigger(t, c, []any{"new a"}, "a")
		_, err := regTrigger(c, "b")
		require.EqualError(t, err, "ERR subcommand not found")
		require.NoError(t, c.Set(bg(), "k1", "1", 0).Err())
		require.Equal(t, int64(0), regCount(t, c, "old_hits"))
		require.Equal(t, int64(1), regCount(t, c, "new_hits"))

		e := ssOnly(t, c)
		require.Equal(t, "s", e.ID)
		require.Equal(t, "second", e.Desc)
		require.ElementsMatch(t, gbAnyStrings(ssRegIDs(t, c)), e.Regs)
		// the old session's interpreter ends with it
		eventually(t, 10*time.Second, func() bool { return infoRG(t, c, "rg_sessions") == 1 }, "old session still counted")
	})

	t.Run("mode changed", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').count().register(trigger='test')", "ID", "test")
		regRequireTrigger(t, c, []any{"1"}, "test")
		_, err := pyexec(c, "GB('CommandReader').count().register(trigger='test', mode='sync')", "ID", "test")
		require.ErrorContains(t, err, "Session test already exists")
		requirePyOK(t, c, "GB('CommandReader').count().register(trigger='test', mode='sync')", "ID", "test", "UPGRADE")
		regRequireTrigger(t, c, []any{"1"}, "test")
		r := regOnlyWhere(t, c, func(e regEntry) bool { return e.Args["trigger"] == "test" })
		require.Equal(t, "sync", r.Data["mode"])
	})

	t.Run("of a session that does not exist", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'fresh').register(trigger='fresh')", "ID", "fresh", "UPGRADE")
		regRequireTrigger(t, c, []any{"fresh"}, "fresh")
		require.Contains(t, ssIDs(t, c), "fresh")
	})
}

func TestSessionReplaceWith(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB('CommandReader').count().register(trigger='test')", "ID", "test")
	old := ssRegIDs(t, c)

	t.Run("unknown old session", func(t *testing.T) {
		_, err := pyexec(c, "GB('CommandReader').register(trigger='x')", "ID", "b", "REPLACE_WITH", "nosuch")
		requireErrText(t, "Can not replace with nosuch, session does not exists.", err)
		require.Equal(t, []string{"test"}, ssIDs(t, c))
		require.Equal(t, old, ssRegIDs(t, c))
	})

	t.Run("new id exists", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'a').register(trigger='ta')", "ID", "a")
		before := ssRegIDs(t, c)
		_, err := pyexec(c, "GB('CommandReader').register(trigger='y')", "ID", "a", "REPLACE_WITH", "test")
		requireErrText(t, "Can not replace an existing session a with test", err)
		require.ElementsMatch(t, []string{"test", "a"}, ssIDs(t, c))
		require.Equal(t, before, ssRegIDs(t, c))
		regRequireTrigger(t, c, []any{"a"}, "ta")
		regRequireTrigger(t, c, []any{"1"}, "test")
	})

	t.Run("replaces", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').count().register(trigger='test', mode='sync')", "ID", "test1", "REPLACE_WITH", "test")
		regRequireTrigger(t, c, []any{"1"}, "test")
		require.ElementsMatch(t, []string{"a", "test1"}, ssIDs(t, c))
		e := ssDump(t, c, "SESSIONS", "test1")[0]
		r := regOnlyWhere(t, c, func(e regEntry) bool { return e.Args["trigger"] == "test" })
		require.NotContains(t, old, r.ID)
		require.Equal(t, "sync", r.Data["mode"])
		require.Equal(t, []any{r.ID}, e.Regs)
		pd, _ := r.PD.(string)
		require.Contains(t, pd, "'sessionName':'test1'")
		// the old id is free again
		requirePyOK(t, c, "GB('CommandReader').register(trigger='again')", "ID", "test")
		require.ElementsMatch(t, []string{"a", "test", "test1"}, ssIDs(t, c))
	})
}

func TestSessionRollback(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("failing script registers nothing", func(t *testing.T) {
		msg := requirePyErr(t, c, py(
			"GB('CommandReader').count().register(trigger='test1')",
			"GB('CommandReader').count().register(trigger='test2')",
			"GB().foreach(lambda x: execute('incr', 'hits')).register('k*', mode='sync')",
			"failure()",
		), "ID", "test", "DESCRIPTION", "desc")
		require.Contains(t, msg, "is not defined")
		require.Empty(t, ssDump(t, c))
		require.Empty(t, ssDump(t, c, "SESSIONS"))
		require.Equal(t, "Session test does not exists", ssDump(t, c, "SESSIONS", "test")[0].ID)
		require.Empty(t, regDump(t, c))
		_, err := regTrigger(c, "test1")
		require.EqualError(t, err, "ERR subcommand not found")
		require.NoError(t, c.Set(bg(), "k1", "1", 0).Err())
		require.Equal(t, int64(0), regCount(t, c, "hits"))
		// neither the id nor the trigger names are taken
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'ok').register(trigger='test1')", "ID", "test")
		regRequireTrigger(t, c, []any{"ok"}, "test1")
	})

	t.Run("same trigger twice in one session", func(t *testing.T) {
		msg := requirePyErr(t, c, py(
			"GB('CommandReader').register(trigger='twice')",
			"GB('CommandReader').register(trigger='twice')",
		), "ID", "twice")
		require.Contains(t, msg, "trigger already registered in this session")
		require.NotContains(t, ssIDs(t, c), "twice")
		_, err := regTrigger(c, "twice")
		require.EqualError(t, err, "ERR subcommand not found")
	})

	t.Run("failing upgrade keeps the old registrations", func(t *testing.T) {
		requirePyOK(t, c, py(
			"GB('CommandReader').map(lambda x: 'old').register(trigger='up')",
			"GB().foreach(lambda x: execute('incr', 'hits_up')).register('u*', mode='sync')",
		), "ID", "up", "DESCRIPTION", "v1")
		before := ssDump(t, c, "SESSIONS", "up")[0]
		regsBefore := ssRegIDs(t, c)

		msg := requirePyErr(t, c, py(
			"GB('CommandReader').map(lambda x: 'new').register(trigger='up', mode='sync')",
			"GB().foreach(lambda x: execute('incr', 'hits_new')).register('u*', mode='sync')",
			"raise Exception('upgrade failed here')",
		), "ID", "up", "DESCRIPTION", "v2", "UPGRADE")
		require.Contains(t, msg, "upgrade failed here")
		regRequireTrigger(t, c, []any{"old"}, "up")
		require.NoError(t, c.Set(bg(), "u1", "1", 0).Err())
		require.Equal(t, int64(1), regCount(t, c, "hits_up"))
		require.Equal(t, int64(0), regCount(t, c, "hits_new"))
		require.Equal(t, regsBefore, ssRegIDs(t, c))
		ssRequireSame(t, before, ssDump(t, c, "SESSIONS", "up")[0])

		// an upgrade refused at commit (a trigger another session owns)
		requirePyOK(t, c, "GB('CommandReader').register(trigger='owned')", "ID", "owner")
		msg = requirePyErr(t, c, py(
			"GB('CommandReader').map(lambda x: 'new').register(trigger='up')",
			"GB('CommandReader').register(trigger='owned')",
		), "ID", "up", "UPGRADE")
		require.Contains(t, msg, "trigger already registered")
		regRequireTrigger(t, c, []any{"old"}, "up")
		require.NoError(t, c.Set(bg(), "u2", "1", 0).Err())
		require.Equal(t, int64(2), regCount(t, c, "hits_up"))
		ssRequireSame(t, before, ssDump(t, c, "SESSIONS", "up")[0])

		// and REPLACE_WITH the same way
		msg = requirePyErr(t, c, py(
			"GB('CommandReader').map(lambda x: 'new').register(trigger='up')",
			"undefined_name",
		), "ID", "up2", "REPLACE_WITH", "up")
		require.Contains(t, msg, "undefined_name")
		regRequireTrigger(t, c, []any{"old"}, "up")
		require.NotContains(t, ssIDs(t, c), "up2")
		require.Contains(t, ssIDs(t, c), "up")
	})
}

// A session lives as long as its registrations: the last UNREGISTER ends it
// (RG.PYDUMPSESSIONS no longer lists it, its id is free) and frees its
// interpreter.
func TestSessionEndsWithLastRegistration(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	// the pool of ready interpreters fills in the background: wait for it
	last, stable := int64(-1), 0
	eventually(t, 30*time.Second, func() bool {
		r := infoRG(t, c, "rg_live_interpreters")
		if r == last && infoRG(t, c, "rg_scripts_running") == 0 {
			stable++
		} else {
			stable, last = 0, r
		}
		return stable >= 5
	}, "rg_live_interpreters never settled")
	// Interpreters in use: live ones not ready in the pool (which may grow).
	inUse := func() int64 { return infoRG(t, c, "rg_live_interpreters") - infoRG(t, c, "rg_ready_interpreters") }
	baseline := inUse()
	require.Equal(t, int64(0), infoRG(t, c, "rg_sessions"))

	requireEnded := func(t *testing.T, id string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			listed := ssIDs(t, c)
			sessions, live := infoRG(t, c, "rg_sessions"), inUse()
			if len(listed) == 0 && sessions == 0 && live == baseline {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("session %s not ended by its last UNREGISTER: RG.PYDUMPSESSIONS lists %q, rg_sessions=%d, interpreters in use=%d (baseline %d), RG.DUMPEXECUTIONS has %d entries",
					id, listed, sessions, live, baseline, len(gbDumpExecutions(t, c)))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	t.Run("registrations that never ran", func(t *testing.T) {
		requirePyOK(t, c, py(
			"GB('CommandReader').register(trigger='t')",
			"GB().register('k*', mode='async_local')",
		), "ID", "idle")
		require.Equal(t, int64(1), infoRG(t, c, "rg_sessions"))
		regs := regDump(t, c)
		require.Len(t, regs, 2)
		_, err := c.Do(bg(), "RG.UNREGISTER", regs[0].ID).Result()
		require.NoError(t, err)
		require.Equal(t, []string{"idle"}, ssIDs(t, c), "the session ended with registrations left")
		_, err = c.Do(bg(), "RG.UNREGISTER", regs[1].ID).Result()
		require.NoError(t, err)
		requireEnded(t, "idle")
		requirePyOK(t, c, "GB('CommandReader').register(trigger='t')", "ID", "idle") // the id is free
		_, err = c.Do(bg(), "RG.UNREGISTER", regOnly(t, c).ID).Result()
		require.NoError(t, err)
		requireEnded(t, "idle")
	})

	t.Run("registrations that ran", func(t *testing.T) {
		requirePyOK(t, c, py(
			"n = 0",
			"def bump(x):",
			"    global n",
			"    n += 1",
			"    return n",
			"GB('CommandReader').map(bump).register(trigger='t', mode='sync', convertToStr=False)",
			"GB().foreach(lambda x: execute('incr', 'hits')).register('k*', mode='async_local')",
		), "ID", "life")
		require.Equal(t, int64(1), infoRG(t, c, "rg_sessions"))
		eventually(t, 10*time.Second, func() bool { return inUse() == baseline+1 },
			"a live session should hold one interpreter beyond the pool")
		regRequireTrigger(t, c, []any{int64(1)}, "t")
		require.NoError(t, c.Set(bg(), "k1", "1", 0).Err())
		eventually(t, 10*time.Second, func() bool { return regCount(t, c, "hits") == 1 }, "async_local did not run")
		eventually(t, 10*time.Second, func() bool { return len(regUnfinished(t, c)) == 0 }, "executions still running")

		keys := regOnlyWhere(t, c, func(e regEntry) bool { return e.Reader == "KeysReader" })
		_, err := c.Do(bg(), "RG.UNREGISTER", keys.ID).Result()
		require.NoError(t, err)
		// one registration left: the session and its globals live on
		e := ssOnly(t, c)
		require.Equal(t, "life", e.ID)
		require.Len(t, e.Regs, 1)
		require.Equal(t, int64(1), infoRG(t, c, "rg_sessions"))
		regRequireTrigger(t, c, []any{int64(2)}, "t")

		_, err = c.Do(bg(), "RG.UNREGISTER", regOnly(t, c).ID).Result()
		require.NoError(t, err)
		require.Empty(t, regDump(t, c))
		requireEnded(t, "life")
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'again').register(trigger='t')", "ID", "life")
		regRequireTrigger(t, c, []any{"again"}, "t")
	})
}
