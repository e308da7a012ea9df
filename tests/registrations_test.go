package tests

// register(): KeysReader and CommandReader registrations, RG.TRIGGER,
// RG.TRIGGERONKEY, RG.DUMPREGISTRATIONS, RG.UNREGISTER and
// RG.CLEARREGISTRATIONSSTATS (reference §1.1, §3.2, §3.3).

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

var regIDPattern = regexp.MustCompile(`^0{40}-[0-9]+$`)

// regEntry is one RG.DUMPREGISTRATIONS entry.
type regEntry struct {
	Raw    []any
	ID     string
	Reader string
	Desc   any
	Data   map[string]any // RegistrationData, field -> value
	Args   map[string]any // RegistrationData's args, field -> value
	PD     any
}

// regPairs reads a flat [name, value, name, value ...] list.
func regPairs(t testing.TB, v any, what string) map[string]any {
	t.Helper()
	l, ok := v.([]any)
	require.True(t, ok, "%s is not an array: %#v", what, v)
	require.Zero(t, len(l)%2, "%s has an odd length: %#v", what, l)
	out := map[string]any{}
	for i := 0; i < len(l); i += 2 {
		k, ok := l[i].(string)
		require.True(t, ok, "%s: field name %#v is not a string", what, l[i])
		out[k] = l[i+1]
	}
	return out
}

// regParse checks one 12-field RG.DUMPREGISTRATIONS entry and reads it.
func regParse(t testing.TB, v any) regEntry {
	t.Helper()
	raw, ok := v.([]any)
	require.True(t, ok, "registration entry is not an array: %#v", v)
	require.Len(t, raw, 12, "registration entry: %#v", raw)
	for i, name := range []string{"id", "reader", "desc", "RegistrationData", "PD", "ExecutionThreadPool"} {
		require.Equal(t, name, raw[2*i], "field %d of %#v", 2*i, raw)
	}
	require.Equal(t, "DefaultPool", raw[11])
	e := regEntry{Raw: raw, Desc: raw[5], PD: raw[9]}
	e.ID, _ = raw[1].(string)
	e.Reader, _ = raw[3].(string)
	require.Regexp(t, regIDPattern, e.ID)
	data, ok := raw[7].([]any)
	require.True(t, ok, "RegistrationData is not an array: %#v", raw[7])
	require.Len(t, data, 20, "RegistrationData: %#v", data)
	e.Data = regPairs(t, data, "RegistrationData")
	e.Args = regPairs(t, e.Data["args"], "RegistrationData args")
	return e
}

// regDump is RG.DUMPREGISTRATIONS.
func regDump(t testing.TB, c *redis.Client) []regEntry {
	t.Helper()
	res, err := c.Do(bg(), "RG.DUMPREGISTRATIONS").Result()
	require.NoError(t, err)
	l, ok := res.([]any)
	require.True(t, ok, "RG.DUMPREGISTRATIONS replied %#v", res)
	out := make([]regEntry, 0, len(l))
	for _, v := range l {
		out = append(out, regParse(t, v))
	}
	return out
}

// regOnly is the one registration there is.
func regOnly(t testing.TB, c *redis.Client) regEntry {
	t.Helper()
	regs := regDump(t, c)
	require.Len(t, regs, 1, "registrations: %#v", regs)
	return regs[0]
}

// regByID is the registration with that id.
func regByID(t testing.TB, c *redis.Client, id string) regEntry {
	t.Helper()
	for _, e := range regDump(t, c) {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("registration %s is not in RG.DUMPREGISTRATIONS", id)
	return regEntry{}
}

// regStat reads an integer field of RegistrationData.
func regStat(t testing.TB, e regEntry, field string) int64 {
	t.Helper()
	v, ok := e.Data[field].(int64)
	require.True(t, ok, "RegistrationData %s is not an integer: %#v", field, e.Data[field])
	return v
}

// regTrigger is RG.TRIGGER name args...
func regTrigger(c *redis.Client, name string, args ...any) (any, error) {
	return c.Do(bg(), append([]any{"RG.TRIGGER", name}, args...)...).Result()
}

// regRequireTrigger triggers and requires a reply equal to want.
func regRequireTrigger(t testing.TB, c *redis.Client, want any, name string, args ...any) {
	t.Helper()
	res, err := regTrigger(c, name, args...)
	require.NoError(t, err, "RG.TRIGGER %s %v", name, args)
	require.Equal(t, want, res, "RG.TRIGGER %s %v", name, args)
}

// regList is LRANGE key 0 -1.
func regList(t testing.TB, c *redis.Client, key string) []string {
	t.Helper()
	l, err := c.LRange(bg(), key, 0, -1).Result()
	require.NoError(t, err)
	return l
}

// regCount is the integer in a string key, 0 when it is missing.
func regCount(t testing.TB, c *redis.Client, key string) int64 {
	t.Helper()
	v, err := c.Get(bg(), key).Result()
	if err == redis.Nil {
		return 0
	}
	require.NoError(t, err)
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err, "%s = %q", key, v)
	return n
}

// regLogger is a sync registration on prefix that appends repr(record) to
// the list 'log' (outside the prefix), plus extra register() arguments.
func regLogger(prefix, extra string) string {
	return fmt.Sprintf("GB().foreach(lambda x: execute('rpush', 'log', repr(x))).register('%s', mode='sync'%s)", prefix, extra)
}

func TestRegisterKeysPrefix(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, py(
		"GB().foreach(lambda x: execute('incr', 'c_exact')).register('user', mode='sync', eventTypes=['set'])",
		"GB().foreach(lambda x: execute('incr', 'c_prefix')).register('user*', mode='sync', eventTypes=['set'])",
	))
	counts := func() []any {
		v, err := c.MGet(bg(), "c_exact", "c_prefix").Result()
		require.NoError(t, err)
		return v
	}
	require.NoError(t, c.Set(bg(), "user", "1", 0).Err())
	require.Equal(t, []any{"1", "1"}, counts(), "exact key: both match")
	require.NoError(t, c.Set(bg(), "user2", "1", 0).Err())
	require.Equal(t, []any{"1", "2"}, counts(), "user2: only the prefix matches")
	require.NoError(t, c.Set(bg(), "use", "1", 0).Err())
	require.NoError(t, c.Set(bg(), "other", "1", 0).Err())
	require.NoError(t, c.Set(bg(), "xuser", "1", 0).Err())
	require.Equal(t, []any{"1", "2"}, counts(), "keys outside both")

	t.Run("star matches every key", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'all', x['key'])).register(mode='sync', eventTypes=['hset'])")
		require.NoError(t, c.HSet(bg(), "a", "f", "v").Err())
		require.NoError(t, c.HSet(bg(), "zz:1", "f", "v").Err())
		require.Equal(t, []string{"a", "zz:1"}, regList(t, c, "all"))
	})
}

// The record a registration gets: read when its execution runs, so a sync
// one sees the value the command just wrote.
func TestRegisterKeysRecords(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, regLogger("k*", ""))

	steps := []struct {
		name string
		do   func() error
		want string
	}{
		{"set", func() error { return c.Set(bg(), "k1", "v", 0).Err() },
			"{'key': 'k1', 'value': 'v', 'type': 'string', 'event': 'set'}"},
		{"hset", func() error { return c.HSet(bg(), "kh", "f", "v", "g", "w").Err() },
			"{'key': 'kh', 'value': {'f': 'v', 'g': 'w'}, 'type': 'hash', 'event': 'hset'}"},
		{"lpush", func() error { return c.LPush(bg(), "kl", "a", "b").Err() },
			"{'key': 'kl', 'value': ['b', 'a'], 'type': 'list', 'event': 'lpush'}"},
		{"del", func() error { return c.Del(bg(), "k1").Err() },
			"{'key': 'k1', 'value': None, 'type': 'empty', 'event': 'del'}"},
		{"sadd", func() error { return c.SAdd(bg(), "ks", "m").Err() },
			"{'key': 'ks', 'value': None, 'type': 'set', 'event': 'sadd'}"},
	}
	var want []string
	for _, st := range steps {
		require.NoError(t, st.do(), st.name)
		want = append(want, st.want)
		// sync: the record is there as soon as the command replied.
		require.Equal(t, want, regList(t, c, "log"), "after %s", st.name)
	}

	t.Run("readValue=False has only key and event", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'log2', repr(x))).register('r*', mode='sync', readValue=False)")
		require.NoError(t, c.Set(bg(), "r1", "v", 0).Err())
		require.NoError(t, c.HSet(bg(), "rh", "f", "v").Err())
		require.NoError(t, c.Del(bg(), "r1").Err())
		require.Equal(t, []string{
			"{'key': 'r1', 'event': 'set'}",
			"{'key': 'rh', 'event': 'hset'}",
			"{'key': 'r1', 'event': 'del'}",
		}, regList(t, c, "log2"))
	})

	t.Run("default conversion of the records", func(t *testing.T) {
		// No map(): the registration's own results are str(record); the
		// execution still succeeds.
		requirePyOK(t, c, "GB().register('d1', mode='sync')")
		require.NoError(t, c.Set(bg(), "d1", "x", 0).Err())
		var e regEntry
		for _, r := range regDump(t, c) {
			if r.Args["regex"] == "d1" {
				e = r
			}
		}
		require.Equal(t, int64(1), regStat(t, e, "numTriggered"))
		require.Equal(t, int64(1), regStat(t, e, "numSuccess"))
	})
}

func TestRegisterKeysEventTypes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("whitelist", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'log1', x['key'] + ':' + x['event'])).register('w*', mode='sync', eventTypes=['lpush', 'rpush'])")
		require.NoError(t, c.LPush(bg(), "wl", "1").Err())
		require.NoError(t, c.RPush(bg(), "wl", "2").Err())
		require.NoError(t, c.Set(bg(), "wx", "1", 0).Err())
		require.NoError(t, c.LPop(bg(), "wl").Err())
		require.Equal(t, []string{"wl:lpush", "wl:rpush"}, regList(t, c, "log1"))
	})

	t.Run("case-insensitive", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'log2', x['key'] + ':' + x['event'])).register('c*', mode='sync', eventTypes=['SET', 'HsEt', 'DEL'])")
		require.NoError(t, c.Set(bg(), "c1", "1", 0).Err())
		require.NoError(t, c.HSet(bg(), "c2", "f", "v").Err())
		require.NoError(t, c.LPush(bg(), "c3", "v").Err())
		require.NoError(t, c.Del(bg(), "c1").Err())
		require.Equal(t, []string{"c1:set", "c2:hset", "c1:del"}, regList(t, c, "log2"))
	})

	t.Run("keymiss", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'log3', repr(x))).register('m*', mode='sync', eventTypes=['keymiss'], readValue=False)")
		v, err := c.Get(bg(), "missing").Result()
		require.ErrorIs(t, err, redis.Nil, "GET missing replied %q", v)
		require.Equal(t, []string{"{'key': 'missing', 'event': 'keymiss'}"}, regList(t, c, "log3"))
		require.NoError(t, c.Set(bg(), "mkey", "1", 0).Err())
		require.Equal(t, "1", getKey(t, c, "mkey")) // a hit is no keymiss
		_, err = c.Get(bg(), "other").Result()      // outside the prefix
		require.ErrorIs(t, err, redis.Nil)
		require.Equal(t, []string{"{'key': 'missing', 'event': 'keymiss'}"}, regList(t, c, "log3"))
	})

	t.Run("keymiss record with value", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'log4', repr(x))).register('n1', mode='sync', eventTypes=['keymiss'])")
		_, err := c.Get(bg(), "n1").Result()
		require.ErrorIs(t, err, redis.Nil)
		require.Equal(t, []string{"{'key': 'n1', 'value': None, 'type': 'empty', 'event': 'keymiss'}"}, regList(t, c, "log4"))
	})

	t.Run("expired", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'log5', x['key'] + ':' + x['event'])).register('e*', mode='sync', eventTypes=['expired'])")
		require.NoError(t, c.Set(bg(), "e1", "v", 50*time.Millisecond).Err())
		eventually(t, 10*time.Second, func() bool {
			c.Exists(bg(), "e1") // expires it lazily if the active cycle did not yet
			l := regList(t, c, "log5")
			return len(l) == 1 && l[0] == "e1:expired"
		}, "no expired event: log5 = %v", regList(t, c, "log5"))
	})
}

func TestRegisterKeysKeyTypes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'log', x['key'] + ':' + x['type'])).register('t*', mode='sync', keyTypes=['hash', 'list'])")
	requirePyOK(t, c, "GB().foreach(lambda x: execute('rpush', 'logs', x['key'] + ':' + x['type'])).register('t*', mode='sync', keyTypes=['string', 'zset'])")
	require.NoError(t, c.Set(bg(), "ts", "v", 0).Err())
	require.NoError(t, c.HSet(bg(), "th", "f", "v").Err())
	require.NoError(t, c.LPush(bg(), "tl", "a").Err())
	require.NoError(t, c.SAdd(bg(), "tset", "m").Err())
	require.NoError(t, c.ZAdd(bg(), "tz", redis.Z{Score: 1, Member: "m"}).Err())
	require.NoError(t, c.Append(bg(), "ts", "w").Err())
	require.Equal(t, []string{"th:hash", "tl:list"}, regList(t, c, "log"))
	require.Equal(t, []string{"ts:string", "tz:zset", "ts:string"}, regList(t, c, "logs"))
}

func TestRegisterKeysModes(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("sync effects are visible with the reply", func(t *testing.T) {
		requirePyOK(t, c, "GB().filter(lambda x: x['key'] != 'NumOfKeys').foreach(lambda x: execute('incrby', 'NumOfKeys', ('1' if 'value' in x.keys() else '-1'))).register('s*', mode='sync')")
		for i := 1; i <= 10; i++ {
			require.NoError(t, c.Set(bg(), fmt.Sprintf("s%d", i), i, 0).Err())
			require.Equal(t, strconv.Itoa(i), getKey(t, c, "NumOfKeys"), "right after SET %d", i)
		}
	})

	for _, mode := range []string{"async_local", "async"} {
		t.Run(mode+" effects eventually", func(t *testing.T) {
			prefix := "a_" + mode + ":"
			cnt := "cnt_" + mode
			requirePyOK(t, c, fmt.Sprintf("GB().foreach(lambda x: execute('rpush', '%s', x['key'] + '=' + x['value'])).register('%s*', mode='%s')", cnt, prefix, mode))
			for i := 1; i <= 3; i++ {
				require.NoError(t, c.Set(bg(), prefix+strconv.Itoa(i), i, 0).Err())
			}
			eventually(t, 10*time.Second, func() bool { return len(regList(t, c, cnt)) == 3 },
				"%s registration did not run 3 times: %v", mode, regList(t, c, cnt))
			require.ElementsMatch(t, []string{prefix + "1=1", prefix + "2=2", prefix + "3=3"}, regList(t, c, cnt))
			e := regOnlyWhere(t, c, func(e regEntry) bool { return e.Args["regex"] == prefix+"*" })
			require.Equal(t, mode, e.Data["mode"])
			eventually(t, 10*time.Second, func() bool {
				e := regOnlyWhere(t, c, func(e regEntry) bool { return e.Args["regex"] == prefix+"*" })
				return regStat(t, e, "numTriggered") == 3 && regStat(t, e, "numSuccess") == 3
			}, "stats of the %s registration", mode)
		})
	}

	t.Run("sync registration writing keys it matches", func(t *testing.T) {
		// Every execution writes a key the registration matches: the chain
		// must stop somewhere and leave the server serving.
		requirePyOK(t, c, "GB().foreach(lambda x: execute('incr', 'rec:counter')).register('rec:*', mode='sync', readValue=False)")
		ctx, cancel := context.WithTimeout(bg(), 10*time.Second)
		defer cancel()
		require.NoError(t, c.Set(ctx, "rec:start", "1", 0).Err())
		requireAlive(t, s)
		n := regCount(t, c, "rec:counter")
		require.Positive(t, n)
		require.NoError(t, c.Set(ctx, "rec:start", "2", 0).Err())
		require.Greater(t, regCount(t, c, "rec:counter"), n)
		requireAlive(t, s)
		// the other registrations still work
		require.NoError(t, c.Set(bg(), "s11", "1", 0).Err())
		require.Equal(t, "11", getKey(t, c, "NumOfKeys"))
	})
}

// regUnfinished lists the RG.DUMPEXECUTIONS entries that are not done.
func regUnfinished(t testing.TB, c *redis.Client) []string {
	t.Helper()
	var out []string
	for _, v := range gbDumpExecutions(t, c) {
		f := regPairs(t, v, "RG.DUMPEXECUTIONS entry")
		if f["status"] != "done" {
			out = append(out, fmt.Sprintf("%v:%v", f["executionId"], f["status"]))
		}
	}
	return out
}

// regOnlyWhere is the one registration for which match holds.
func regOnlyWhere(t testing.TB, c *redis.Client, match func(regEntry) bool) regEntry {
	t.Helper()
	var found []regEntry
	for _, e := range regDump(t, c) {
		if match(e) {
			found = append(found, e)
		}
	}
	require.Len(t, found, 1, "registrations matching")
	return found[0]
}

func TestRegisterDumpEntries(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	requirePyOK(t, c, "GB('KeysReader', desc='mydesc').register('foo*', eventTypes=['set'], keyTypes=['string'], mode='async_local')", "ID", "keyssess")
	e := regOnly(t, c)
	require.Equal(t, "KeysReader", e.Reader)
	require.Equal(t, "mydesc", e.Desc)
	raw := e.Raw[7].([]any)
	names := []any{}
	for i := 0; i < len(raw); i += 2 {
		names = append(names, raw[i])
	}
	require.Equal(t, []any{"mode", "numTriggered", "numSuccess", "numFailures", "numAborted", "lastRunDurationMS",
		"totalRunDurationMS", "avgRunDurationMS", "lastError", "args"}, names)
	require.Equal(t, "async_local", e.Data["mode"])
	for _, f := range []string{"numTriggered", "numSuccess", "numFailures", "numAborted", "lastRunDurationMS", "totalRunDurationMS"} {
		require.Equal(t, int64(0), e.Data[f], f)
	}
	require.IsType(t, "", e.Data["avgRunDurationMS"])
	require.Nil(t, e.Data["lastError"])
	require.Equal(t, []any{"regex", "foo*", "eventTypes", []any{"set"}, "keyTypes", []any{"string"}, "hookCommands", nil}, e.Data["args"])
	pd, ok := e.PD.(string)
	require.True(t, ok, "PD is not a string: %#v", e.PD)
	require.Contains(t, pd, "'sessionName':'keyssess'")
	require.Contains(t, pd, "'registrationsList':['"+e.ID+"']")
	require.Equal(t, int64(1), infoRG(t, c, "rg_nregistrations"))

	requirePyOK(t, c, "GB().register()", "ID", "defaults")
	d := regOnlyWhere(t, c, func(x regEntry) bool { return x.ID != e.ID })
	require.Nil(t, d.Desc)
	require.Equal(t, "async", d.Data["mode"], "mode defaults to async")
	require.Equal(t, []any{"regex", "*", "eventTypes", nil, "keyTypes", nil, "hookCommands", nil}, d.Data["args"])
	require.Equal(t, int64(2), infoRG(t, c, "rg_nregistrations"))

	requirePyOK(t, c, "GB('CommandReader', desc='cdesc').register(trigger='mytrig', mode='sync')")
	cr := regOnlyWhere(t, c, func(x regEntry) bool { return x.Reader == "CommandReader" })
	require.Equal(t, "cdesc", cr.Desc)
	require.Equal(t, "sync", cr.Data["mode"])
	require.Equal(t, []any{"trigger", "mytrig", "inorder", int64(0)}, cr.Data["args"])
	require.Contains(t, cr.PD, "sessionName")
	require.Equal(t, int64(3), infoRG(t, c, "rg_nregistrations"))

	t.Run("register returns the registration id", func(t *testing.T) {
		requirePyOK(t, c, py(
			"regId = GB('CommandReader').register(trigger='a')",
			"GB('CommandReader').map(lambda x: regId).register(trigger='b')",
		))
		res, err := regTrigger(c, "b")
		require.NoError(t, err)
		l, ok := res.([]any)
		require.True(t, ok && len(l) == 1, "RG.TRIGGER b replied %#v", res)
		id, _ := l[0].(string)
		require.Regexp(t, regIDPattern, id)
		a := regByID(t, c, id)
		require.Equal(t, "a", a.Args["trigger"])
	})
}

func TestRegisterStats(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, py(
		"def f(x):",
		"    if x['value'] == 'bad':",
		"        raise Exception('boom on ' + x['key'])",
		"GB().foreach(f).register('k*', mode='sync')",
	))
	require.NoError(t, c.Set(bg(), "k1", "good", 0).Err())
	require.NoError(t, c.Set(bg(), "k3", "good", 0).Err())
	require.NoError(t, c.Set(bg(), "k2", "bad", 0).Err())
	e := regOnly(t, c)
	require.Equal(t, int64(3), regStat(t, e, "numTriggered"))
	require.Equal(t, int64(2), regStat(t, e, "numSuccess"))
	require.Equal(t, int64(1), regStat(t, e, "numFailures"))
	require.Equal(t, int64(0), regStat(t, e, "numAborted"))
	lastErr, ok := e.Data["lastError"].(string)
	require.True(t, ok, "lastError is not a string: %#v", e.Data["lastError"])
	require.Contains(t, lastErr, "boom on k2")
	require.GreaterOrEqual(t, regStat(t, e, "totalRunDurationMS"), regStat(t, e, "lastRunDurationMS"))
	avg, ok := e.Data["avgRunDurationMS"].(string)
	require.True(t, ok, "avgRunDurationMS is not a bulk string: %#v", e.Data["avgRunDurationMS"])
	_, err := strconv.ParseFloat(avg, 64)
	require.NoError(t, err, "avgRunDurationMS %q", avg)
	// As in RedisGears, a success clears lastError.
	require.NoError(t, c.Set(bg(), "k4", "good", 0).Err())
	require.Nil(t, regOnly(t, c).Data["lastError"])

	// An async_local one counts the same way, when its executions end.
	requirePyOK(t, c, py(
		"def g(x):",
		"    if x['value'] == 'bad':",
		"        raise Exception('async boom on ' + x['key'])",
		"GB().foreach(g).register('a*', mode='async_local')",
	))
	require.NoError(t, c.Set(bg(), "a1", "bad", 0).Err())
	require.NoError(t, c.Set(bg(), "a2", "good", 0).Err())
	isAsync := func(x regEntry) bool { return x.Args["regex"] == "a*" }
	eventually(t, 10*time.Second, func() bool {
		a := regOnlyWhere(t, c, isAsync)
		return regStat(t, a, "numSuccess")+regStat(t, a, "numFailures") == 2
	}, "async_local executions did not end")
	a := regOnlyWhere(t, c, isAsync)
	require.Equal(t, int64(2), regStat(t, a, "numTriggered"))
	require.Equal(t, int64(1), regStat(t, a, "numSuccess"))
	require.Equal(t, int64(1), regStat(t, a, "numFailures"))
	require.Contains(t, a.Data["lastError"], "async boom on a1")

	// and a CommandReader one
	requirePyOK(t, c, "GB('CommandReader').map(lambda x: x[1] if x[1] != 'bad' else flat_error('bad arg')).register(trigger='t', mode='sync')")
	regRequireTrigger(t, c, []any{"ok"}, "t", "ok")
	_, err = regTrigger(c, "t", "bad")
	require.ErrorContains(t, err, "bad arg")
	cr := regOnlyWhere(t, c, func(x regEntry) bool { return x.Reader == "CommandReader" })
	require.Equal(t, int64(2), regStat(t, cr, "numTriggered"))
	require.Equal(t, int64(1), regStat(t, cr, "numSuccess"))
	require.Equal(t, int64(1), regStat(t, cr, "numFailures"))
	require.Equal(t, "bad arg", cr.Data["lastError"])

	t.Run("RG.CLEARREGISTRATIONSSTATS", func(t *testing.T) {
		res, err := c.Do(bg(), "RG.CLEARREGISTRATIONSSTATS").Result()
		require.NoError(t, err)
		require.Equal(t, "OK", res)
		regs := regDump(t, c)
		require.Len(t, regs, 3)
		for _, e := range regs {
			for _, f := range []string{"numTriggered", "numSuccess", "numFailures", "numAborted", "lastRunDurationMS", "totalRunDurationMS"} {
				require.Equal(t, int64(0), e.Data[f], "%s of %s", f, e.ID)
			}
			require.Contains(t, e.Data["avgRunDurationMS"], "0")
			require.Nil(t, e.Data["lastError"], "lastError of %s", e.ID)
		}
		// counting starts again
		require.NoError(t, c.Set(bg(), "k4", "good", 0).Err())
		k := regOnlyWhere(t, c, func(x regEntry) bool { return x.Args["regex"] == "k*" })
		require.Equal(t, int64(1), regStat(t, k, "numTriggered"))
		require.Equal(t, int64(1), regStat(t, k, "numSuccess"))
		require.Nil(t, k.Data["lastError"])

		_, err = c.Do(bg(), "RG.CLEARREGISTRATIONSSTATS", "x").Result()
		require.ErrorContains(t, err, "wrong number of arguments")
	})
}

func TestRegisterUnregister(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("trigger", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'first').register(trigger='t')")
		regRequireTrigger(t, c, []any{"first"}, "t")
		rid := regOnly(t, c).ID
		res, err := c.Do(bg(), "RG.UNREGISTER", rid).Result()
		require.NoError(t, err)
		require.Equal(t, "OK", res)
		require.Empty(t, regDump(t, c))
		require.Equal(t, int64(0), infoRG(t, c, "rg_nregistrations"))
		_, err = regTrigger(c, "t")
		require.EqualError(t, err, "ERR subcommand not found")
		_, err = c.Do(bg(), "RG.UNREGISTER", rid).Result()
		require.ErrorContains(t, err, "execution is not registered")
		// the trigger name is free again
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'second').register(trigger='t', mode='sync')")
		regRequireTrigger(t, c, []any{"second"}, "t")
		_, err = c.Do(bg(), "RG.UNREGISTER", regOnly(t, c).ID).Result()
		require.NoError(t, err)
	})

	t.Run("keys reader stops firing", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('incr', 'hits')).register('k*', mode='sync')")
		require.NoError(t, c.Set(bg(), "k1", "1", 0).Err())
		require.Equal(t, "1", getKey(t, c, "hits"))
		res, err := c.Do(bg(), "RG.UNREGISTER", regOnly(t, c).ID, "abortpending").Result()
		require.NoError(t, err)
		require.Equal(t, "OK", res)
		require.NoError(t, c.Set(bg(), "k2", "1", 0).Err())
		require.Equal(t, "1", getKey(t, c, "hits"))
	})

	t.Run("async_local stops firing", func(t *testing.T) {
		requirePyOK(t, c, "GB().foreach(lambda x: execute('incr', 'hits_a')).register('a*', mode='async_local')")
		require.NoError(t, c.Set(bg(), "a1", "1", 0).Err())
		eventually(t, 10*time.Second, func() bool { return regCount(t, c, "hits_a") == 1 }, "async_local did not run")
		eventually(t, 10*time.Second, func() bool { return len(regUnfinished(t, c)) == 0 }, "executions left")
		_, err := c.Do(bg(), "RG.UNREGISTER", regOnly(t, c).ID).Result()
		require.NoError(t, err)
		before := len(gbDumpExecutions(t, c))
		for i := 0; i < 20; i++ {
			require.NoError(t, c.Set(bg(), "a2", i, 0).Err())
		}
		// executions start on the event itself: none may appear now
		require.Len(t, gbDumpExecutions(t, c), before, "events of an unregistered registration started executions")
		require.Equal(t, int64(1), regCount(t, c, "hits_a"))
	})

	t.Run("errors", func(t *testing.T) {
		_, err := c.Do(bg(), "RG.UNREGISTER", "nosuchid").Result()
		require.ErrorContains(t, err, "execution is not registered")
		_, err = c.Do(bg(), "RG.UNREGISTER").Result()
		require.ErrorContains(t, err, "wrong number of arguments")
		_, err = c.Do(bg(), "RG.UNREGISTER", "a", "b", "c").Result()
		require.ErrorContains(t, err, "wrong number of arguments")
		eid, err := pyexec(c, "GB('ShardsIDReader').run()", "UNBLOCKING")
		require.NoError(t, err)
		require.Regexp(t, regIDPattern, eid)
		_, err = c.Do(bg(), "RG.UNREGISTER", eid).Result()
		require.ErrorContains(t, err, "execution is not registered")
	})
}

func TestRegisterOnRegistered(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB().register('x*', mode='async_local', onRegistered=lambda: execute('set', 'registered', '1'))")
	require.Equal(t, "1", getKey(t, c, "registered"))
	requirePyOK(t, c, py(
		"def on_reg():",
		"    execute('rpush', 'calls', 'on_reg')",
		"GB('CommandReader').register(trigger='t', onRegistered=on_reg)",
	))
	require.Equal(t, []string{"on_reg"}, regList(t, c, "calls"))
	require.Len(t, regDump(t, c), 2)
}

func TestRegisterValidation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	cases := []struct{ script, want string }{
		{"GB().register(prefix=1)", "regex argument must be a string"},
		{"GB().register(1)", "regex argument must be a string"},
		{"GB().register(eventTypes=1)", "given eventTypes is not iterable"},
		{"GB().register(keyTypes=1)", "given keyTypes is not iterable"},
		{"GB().register(keyTypes=[1])", "given key type is not string"},
		{"GB().register(keyTypes=['nosuch'])", "unknown key type"},
		{"GB().register(readValue=1)", "readValue value is not boolean"},
		{"GB().register(mode='nosuch')", "unknown execution mode"},
		{"GB().register(mode=1)", "execution mode must be a string"},
		{"GB().register(onRegistered=1)", "OnRegistered argument must be a function"},
		{"GB('CommandReader').register(trigger=1)", "trigger argument is not string"},
		{"GB('CommandReader').register()", "no trigger or hook argument was given"},
		{"GB('CommandReader').register(trigger='t', inorder=1)", "inorder argument is be boolean"},
		{"GB('CommandReader').register(trigger='t', keyprefix='x')", "trigger argument can not be given with keyprefix or hook"},
		{"GB('CommandReader').register(trigger='t', mode='nosuch')", "unknown execution mode"},
		{"GB('PythonReader').register()", "given reader does not exists or does not support register"},
		{"GB('ShardsIDReader').register()", "given reader does not exists or does not support register"},
		{"GB('KeysOnlyReader').register()", "given reader does not exists or does not support register"},
		{"GB('CommandReader').register(trigger='dup')\nGB('CommandReader').register(trigger='dup')", "trigger already registered in this session"},
	}
	for _, tc := range cases {
		msg := requirePyErr(t, c, tc.script)
		require.Contains(t, msg, tc.want, "script:\n%s", tc.script)
	}
	require.Empty(t, regDump(t, c), "a failing script registered something")

	t.Run("trigger owned by another session", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'owner').register(trigger='taken')")
		msg := requirePyErr(t, c, py(
			"GB().foreach(lambda x: execute('incr', 'never')).register('n*', mode='sync')",
			"GB('CommandReader').map(lambda x: 'thief').register(trigger='taken')",
		))
		require.Contains(t, msg, "trigger already registered")
		require.NotContains(t, msg, "in this session")
		regRequireTrigger(t, c, []any{"owner"}, "taken")
		require.Len(t, regDump(t, c), 1, "the failed script's KeysReader registration was kept")
		require.NoError(t, c.Set(bg(), "n1", "1", 0).Err())
		require.Equal(t, int64(0), regCount(t, c, "never"))
	})
}

func TestRegisterTriggers(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("all modes", func(t *testing.T) {
		for i, mode := range []string{"async", "sync", "async_local"} {
			name := fmt.Sprintf("test%d", i+1)
			requirePyOK(t, c, fmt.Sprintf("GB('CommandReader').flatmap(lambda x: x).distinct().sort().register(trigger='%s', mode='%s')", name, mode))
			regRequireTrigger(t, c, gbAnyStrings(gbSorted([]string{"a", "is", "test", name, "this"})), name, "this", "is", "a", "test")
		}
	})

	t.Run("record is the arguments", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').register(trigger='mytrigger')")
		regRequireTrigger(t, c, []any{"['mytrigger', 'foo', 'bar']"}, "mytrigger", "foo", "bar")
		regRequireTrigger(t, c, []any{"['mytrigger']"}, "mytrigger")
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: type(x).__name__ + ':' + ','.join(type(a).__name__ for a in x)).register(trigger='types', mode='sync')")
		regRequireTrigger(t, c, []any{"list:str,str,str"}, "types", "1", "x")
	})

	t.Run("TRIGGERONKEY", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: repr(x)).register(trigger='onkey', mode='sync')")
		res, err := c.Do(bg(), "RG.TRIGGERONKEY", "onkey", "mykey", "a", "b").Result()
		require.NoError(t, err)
		require.Equal(t, []any{"['onkey', 'mykey', 'a', 'b']"}, res)
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: execute('set', x[1], x[2])).register(trigger='my_set', mode='sync')")
		res, err = c.Do(bg(), "RG.TRIGGERONKEY", "my_set", "x", "1").Result()
		require.NoError(t, err)
		require.Equal(t, []any{"OK"}, res)
		require.Equal(t, "1", getKey(t, c, "x"))
		_, err = c.Do(bg(), "RG.TRIGGERONKEY", "nosuch", "x").Result()
		require.EqualError(t, err, "ERR subcommand not found")
	})

	t.Run("convertToStr=False", func(t *testing.T) {
		for _, mode := range []string{"sync", "async_local"} {
			requirePyOK(t, c, fmt.Sprintf("GB('CommandReader').map(lambda x: len(x)).register(trigger='len_%s', mode='%s', convertToStr=False)", mode, mode))
			regRequireTrigger(t, c, []any{int64(3)}, "len_"+mode, "a", "b")
			requirePyOK(t, c, fmt.Sprintf("GB('CommandReader').map(lambda x: len(x)).register(trigger='strlen_%s', mode='%s')", mode, mode))
			regRequireTrigger(t, c, []any{"3"}, "strlen_"+mode, "a", "b")
		}
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: [1, [2, 'b']]).register(trigger='nested', mode='sync', convertToStr=False)")
		regRequireTrigger(t, c, []any{[]any{int64(1), []any{int64(2), "b"}}}, "nested")
		requirePyOK(t, c, "GB('CommandReader').filter(lambda x: False).register(trigger='empty', mode='sync')")
		regRequireTrigger(t, c, []any{}, "empty")
	})

	t.Run("first error is the reply", func(t *testing.T) {
		for _, mode := range []string{"async", "sync", "async_local"} {
			requirePyOK(t, c, fmt.Sprintf("GB('CommandReader').map(lambda x: flat_error('trigger-failed-' + x[1])).register(trigger='boom_%s', mode='%s')", mode, mode))
			_, err := regTrigger(c, "boom_"+mode, "abc")
			require.Error(t, err)
			require.Contains(t, err.Error(), "trigger-failed-abc", mode)
			requireAlive(t, s)
		}
		requirePyOK(t, c, py(
			"def f(x):",
			"    if x == '2':",
			"        raise Exception('bad record ' + x)",
			"    return x",
			"GB('CommandReader').flatmap(lambda x: x[1:]).map(f).register(trigger='partial', mode='sync')",
		))
		_, err := regTrigger(c, "partial", "1", "2", "3")
		require.ErrorContains(t, err, "bad record 2")
		res, err := regTrigger(c, "partial", "1", "3")
		require.NoError(t, err)
		require.ElementsMatch(t, []any{"1", "3"}, res)
	})

	t.Run("errors", func(t *testing.T) {
		_, err := regTrigger(c, "nosuch")
		require.EqualError(t, err, "ERR subcommand not found")
		_, err = c.Do(bg(), "RG.TRIGGER").Result()
		require.ErrorContains(t, err, "wrong number of arguments")
		_, err = c.Do(bg(), "RG.TRIGGERONKEY").Result()
		require.ErrorContains(t, err, "wrong number of arguments")
	})

	t.Run("MULTI", func(t *testing.T) {
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'ran').register(trigger='m_sync', mode='sync')")
		for _, mode := range []string{"async", "async_local"} {
			requirePyOK(t, c, fmt.Sprintf("GB('CommandReader').map(lambda x: execute('incr', 'm_ran')).register(trigger='m_%s', mode='%s')", mode, mode))
			var sync, async *redis.Cmd
			_, err := c.TxPipelined(bg(), func(p redis.Pipeliner) error {
				sync = p.Do(bg(), "RG.TRIGGER", "m_sync")
				async = p.Do(bg(), "RG.TRIGGER", "m_"+mode)
				return nil
			})
			require.Error(t, err)
			require.NoError(t, sync.Err(), "a sync trigger runs inside MULTI")
			require.Equal(t, []any{"ran"}, sync.Val())
			require.Error(t, async.Err(), "%s trigger inside MULTI", mode)
			require.Contains(t, async.Err().Error(), "blocking is not allowed")
			require.Equal(t, "ERR can not run a non-sync execution inside a MULTI/LUA (blocking is not allowed) or on loading.", async.Err().Error())
		}
		require.Equal(t, int64(0), regCount(t, c, "m_ran"))
		requireAlive(t, s)
	})
}

// gbAnyStrings turns strings into a reply-shaped []any.
func gbAnyStrings(in []string) []any {
	out := make([]any, len(in))
	for i, s := range in {
		out[i] = s
	}
	return out
}

// Everything a session's registrations run shares the session's globals.
func TestRegisterSessionGlobals(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	for _, mode := range []string{"sync", "async_local", "async"} {
		t.Run(mode, func(t *testing.T) {
			requirePyOK(t, c, py(
				"n = 0",
				"def bump(x):",
				"    global n",
				"    n += 1",
				"    return n",
				fmt.Sprintf("GB('CommandReader').map(bump).register(trigger='c1_%s', mode='%s', convertToStr=False)", mode, mode),
				fmt.Sprintf("GB('CommandReader').map(bump).register(trigger='c2_%s', mode='%s', convertToStr=False)", mode, mode),
				fmt.Sprintf("GB().map(bump).foreach(lambda x: execute('set', 'n_%s', str(x))).register('g_%s', mode='%s')", mode, mode, mode),
			))
			regRequireTrigger(t, c, []any{int64(1)}, "c1_"+mode)
			regRequireTrigger(t, c, []any{int64(2)}, "c1_"+mode)
			regRequireTrigger(t, c, []any{int64(3)}, "c2_"+mode)
			require.NoError(t, c.Set(bg(), "g_"+mode, "x", 0).Err())
			eventually(t, 10*time.Second, func() bool {
				v, _ := c.Get(bg(), "n_"+mode).Result()
				return v == "4"
			}, "the KeysReader registration did not see n == 3 before it")
			regRequireTrigger(t, c, []any{int64(5)}, "c2_"+mode)
		})
	}
	t.Run("sessions do not share", func(t *testing.T) {
		requirePyOK(t, c, py(
			"n = 100",
			"def bump(x):",
			"    global n",
			"    n += 1",
			"    return n",
			"GB('CommandReader').map(bump).register(trigger='other', mode='sync', convertToStr=False)",
		))
		regRequireTrigger(t, c, []any{int64(101)}, "other")
		regRequireTrigger(t, c, []any{int64(6)}, "c1_sync")
	})
}

// No keyspace event may be lost between the writes and the executions of an
// async_local registration, whatever the load.
func TestRegisterNoLostEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	t.Parallel()
	const (
		writes  = 200_000
		clients = 50
		batch   = 20
	)
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB().foreach(lambda x: execute('incr', 'events')).register('ev:*', mode='async_local', readValue=False)")
	rid := regOnly(t, c).ID

	writers := s.NewClient(func(o *redis.Options) {
		o.PoolSize = clients
		o.ReadTimeout = 60 * time.Second
	})
	defer writers.Close()

	start := time.Now()
	var wg sync.WaitGroup
	var failed atomic.Value
	per := writes / clients
	for w := 0; w < clients; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i += batch {
				_, err := writers.Pipelined(bg(), func(p redis.Pipeliner) error {
					for j := i; j < i+batch && j < per; j++ {
						p.Set(bg(), fmt.Sprintf("ev:%d:%d", w, j), j, 0)
					}
					return nil
				})
				if err != nil {
					failed.CompareAndSwap(nil, fmt.Errorf("client %d: %w", w, err))
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	wrote := time.Since(start)
	t.Logf("%d SETs from %d clients in %v", writes, clients, wrote)
	require.Equal(t, int64(writes), regStat(t, regByID(t, c, rid), "numTriggered"), "events counted when the writes ended")

	// Executions of a registration stay listed (up to
	// MaxExecutionsPerRegistration) once done, so "all done" is: every listed
	// execution is done, and the counter says every event ran.
	var e regEntry
	var counter int64
	var pending []string
	deadline := time.Now().Add(4 * time.Minute)
	for {
		e = regByID(t, c, rid)
		counter = regCount(t, c, "events")
		pending = regUnfinished(t, c)
		if regStat(t, e, "numSuccess")+regStat(t, e, "numFailures") == writes && counter == writes && len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: numTriggered=%d numSuccess=%d numFailures=%d counter=%d rg_nexecutions=%d, %d listed executions not done (want %d, %d, 0, %d, all done)",
				time.Since(start), regStat(t, e, "numTriggered"), regStat(t, e, "numSuccess"), regStat(t, e, "numFailures"),
				counter, infoRG(t, c, "rg_nexecutions"), len(pending), writes, writes, writes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("all %d executions done %v after the first write (%v after the last); rg_nexecutions=%d (kept, all done)",
		writes, time.Since(start), time.Since(start)-wrote, infoRG(t, c, "rg_nexecutions"))
	require.Equal(t, int64(writes), regStat(t, e, "numTriggered"))
	require.LessOrEqual(t, infoRG(t, c, "rg_nexecutions"), int64(100), "more executions kept than MaxExecutionsPerRegistration")
	require.Equal(t, int64(writes), regStat(t, e, "numSuccess"))
	require.Equal(t, int64(0), regStat(t, e, "numFailures"))
	require.Nil(t, e.Data["lastError"])
	n, err := c.DBSize(bg()).Result()
	require.NoError(t, err)
	require.Equal(t, int64(writes+1), n)
	requireAlive(t, s)
}

// One execution thread runs the queued events of a session in one attach: an
// event aborted while it runs ends alone, and the events queued behind it run
// as usual.
func TestAbortedEventLeavesTheNextEventsOfItsAttachAlone(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("ExecutionThreads", "1"))
	c := s.Client
	requirePyOK(t, c, py(
		"import time",
		"def f(x):",
		"    if x[1] == 'slow':",
		"        while True:",
		"            time.sleep(0.01)",
		"    execute('rpush', 'ran', x[1])",
		"GB('CommandReader').foreach(f).register(trigger='t', mode='async_local')",
	))
	triggers := []string{"slow", "a", "b", "c"}
	replies := make(chan error, len(triggers))
	for i, arg := range triggers {
		go func() {
			cl := s.NewClient()
			defer cl.Close()
			_, err := cl.Do(bg(), "RG.TRIGGER", "t", arg).Result()
			replies <- err
		}()
		if i == 0 { // the slow one runs first, the others queue behind it
			eventually(t, 5*time.Second, func() bool { return len(regUnfinished(t, c)) == 1 }, "the slow trigger runs")
		}
	}
	eventually(t, 5*time.Second, func() bool { return len(regUnfinished(t, c)) == len(triggers) }, "the others are queued")
	var slow string
	for _, v := range gbDumpExecutions(t, c) {
		if f := regPairs(t, v, "RG.DUMPEXECUTIONS entry"); f["status"] == "running" {
			slow = f["executionId"].(string)
		}
	}
	require.NotEmpty(t, slow)
	exRequireOK(t, c, "RG.ABORTEXECUTION", slow)
	for range triggers {
		select {
		case err := <-replies:
			if err != nil {
				require.Contains(t, err.Error(), "aborted", "only the slow trigger may fail")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a trigger never replied")
		}
	}
	require.ElementsMatch(t, []string{"a", "b", "c"}, regList(t, c, "ran"))
	e := regOnly(t, c)
	require.Equal(t, int64(4), regStat(t, e, "numTriggered"))
	require.Equal(t, int64(3), regStat(t, e, "numSuccess"))
	require.Equal(t, int64(1), regStat(t, e, "numFailures"))
	requireAlive(t, s)
}

// Without other shards, registering does none of the cluster's work: the
// plain data of a session's globals is pickled only for other shards (it
// cost each registering RG.PYEXECUTE about 5 ms, importing pickle into its
// new interpreter).
func TestStandaloneRegistrationPicklesNothing(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, py(
		"import sys",
		"limit = 3",
		"GB('CommandReader').map(lambda x: 'pickle' in sys.modules or limit != 3).register(trigger='pickled')",
	))
	regRequireTrigger(t, c, []any{"False"}, "pickled")
	requireAlive(t, s)
}

// A Redis that is not a cluster never calls the cluster's half of the
// runtime (runtime/distributed.py), so its interpreters do not load it.
func TestStandaloneInterpretersLeaveTheClusterRuntimeOut(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	require.Equal(t, []string{"[]"}, gbRunStrings(t, s.Client,
		"import redisgears\nGB('ShardsIDReader').map(lambda x: str([n for n in dir(redisgears) if n.startswith('_dist')])).run()"))
}
