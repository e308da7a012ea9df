package tests

// The readers of GB(...).run() (reference §3.3).

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestKeysReaderRecords(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	require.NoError(t, c.Set(bg(), "s", "v", 0).Err())
	require.NoError(t, c.RPush(bg(), "l", "a", "b").Err())
	require.NoError(t, c.HSet(bg(), "h", "f", "v", "g", "w").Err())
	require.NoError(t, c.SAdd(bg(), "st", "m").Err())
	require.NoError(t, c.ZAdd(bg(), "z", redis.Z{Score: 1, Member: "m"}).Err())
	require.NoError(t, c.XAdd(bg(), rdXAddArgs("xs", "f", "v")).Err())

	shapes := map[string]string{
		"s":  "{'key': 's', 'value': 'v', 'type': 'string', 'event': None}",
		"l":  "{'key': 'l', 'value': ['a', 'b'], 'type': 'list', 'event': None}",
		"h":  "{'key': 'h', 'value': {'f': 'v', 'g': 'w'}, 'type': 'hash', 'event': None}",
		"st": "{'key': 'st', 'value': None, 'type': 'set', 'event': None}",
		"z":  "{'key': 'z', 'value': None, 'type': 'zset', 'event': None}",
		"xs": "{'key': 'xs', 'value': None, 'type': 'unknown', 'event': None}",
	}

	t.Run("every type by scan", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB().map(lambda x: repr(x)).run()")
		want := make([]string, 0, len(shapes))
		for _, v := range shapes {
			want = append(want, v)
		}
		require.ElementsMatch(t, want, got)
	})

	t.Run("default str conversion of records", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB().run('s')")
		require.Equal(t, []string{shapes["s"]}, got)
	})

	t.Run("every type by noScan", func(t *testing.T) {
		for key, want := range shapes {
			got := gbRunStrings(t, c, fmt.Sprintf("GB().map(lambda x: repr(x)).run('%s', noScan=True)", key))
			require.Equal(t, []string{want}, got, "key %s", key)
		}
	})

	t.Run("value types", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB().map(lambda x: x['key'] + ':' + type(x['value']).__name__ + ':' + type(x['key']).__name__).run()")
		require.ElementsMatch(t, []string{"s:str:str", "l:list:str", "h:dict:str", "st:NoneType:str", "z:NoneType:str", "xs:NoneType:str"}, got)
	})

	t.Run("missing key with noScan", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB().map(lambda x: repr(x)).run('nokey', noScan=True)")
		require.Equal(t, []string{"{'key': 'nokey', 'value': None, 'type': 'empty', 'event': None}"}, got)
		require.Equal(t, []string{"empty"}, gbRunStrings(t, c, "GB().map(lambda x: x['type']).distinct().run('test', noScan=True)"))
	})

	t.Run("readValue=False gives only key and event", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB().map(lambda x: repr(x)).run('s', readValue=False)")
		require.Equal(t, []string{"{'key': 's', 'event': None}"}, got)
		got = gbRunStrings(t, c, "GB().map(lambda x: repr(x)).run(readValue=False)")
		require.ElementsMatch(t, []string{
			"{'key': 's', 'event': None}", "{'key': 'l', 'event': None}", "{'key': 'h', 'event': None}",
			"{'key': 'st', 'event': None}", "{'key': 'z', 'event': None}", "{'key': 'xs', 'event': None}",
		}, got)
		got = gbRunStrings(t, c, "GB().map(lambda x: repr(x)).run('h', noScan=True, readValue=False)")
		require.Equal(t, []string{"{'key': 'h', 'event': None}"}, got)
		got = gbRunStrings(t, c, "GB().map(lambda x: repr(x)).run('nokey', noScan=True, readValue=False)")
		require.Equal(t, []string{"{'key': 'nokey', 'event': None}"}, got)
	})

	t.Run("readValue=True is the default", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB().map(lambda x: repr(x)).run('s', readValue=True, noScan=False)")
		require.Equal(t, []string{shapes["s"]}, got)
	})

	t.Run("non-UTF-8 value becomes a bytearray", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "bin", "\xff\xfe\x00a", 0).Err())
		got := gbRunStrings(t, c, "GB().map(lambda x: repr((type(x['value']).__name__, x['value']))).run('bin')")
		require.Equal(t, []string{`('bytearray', bytearray(b'\xff\xfe\x00a'))`}, got)
		results, errs := gbRun(t, c, "GB().map(lambda x: x['value']).run('bin', convertToStr=False)")
		require.Empty(t, errs)
		require.Equal(t, []any{"\xff\xfe\x00a"}, results, "the bytes come back unchanged")
		require.NoError(t, c.Del(bg(), "bin").Err())
	})

	t.Run("UTF-8 value is a str", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "utf", "h\u00e9llo", 0).Err())
		got := gbRunStrings(t, c, "GB().map(lambda x: type(x['value']).__name__ + ':' + x['value']).run('utf')")
		require.Equal(t, []string{"str:h\u00e9llo"}, got)
		require.NoError(t, c.Del(bg(), "utf").Err())
	})

	t.Run("argument types", func(t *testing.T) {
		gbPyErr(t, s, "GB().run(noScan=1)", "exactMatch value is not boolean")
		gbPyErr(t, s, "GB().run(noScan='yes')", "exactMatch value is not boolean")
		gbPyErr(t, s, "GB().run(readValue=1)", "readValue value is not boolean")
		gbPyErr(t, s, "GB().run(readValue=None)", "readValue value is not boolean")
		gbPyErr(t, s, "GB().run(1)", "regex argument must be a string")
		gbPyErr(t, s, "GB().run(b'*')", "regex argument must be a string")
		gbPyErr(t, s, "GB('KeysReader', 5).run()", "regex argument must be a string")
	})
	requireAlive(t, s)
}

func TestKeysReaderPatterns(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	for _, k := range []string{"user:1", "user:2", "user:10", "usr:1", "other", "a*b"} {
		require.NoError(t, c.Set(bg(), k, "v", 0).Err())
	}

	cases := []struct {
		pattern string
		want    []string
	}{
		{"user:*", []string{"user:1", "user:2", "user:10"}},
		{"us?r:[1]", []string{"user:1"}},
		{"user:?", []string{"user:1", "user:2"}},
		{"u*r:1*", []string{"user:1", "usr:1", "user:10"}},
		{"other", []string{"other"}},
		{"nothing*", nil},
		{"*", []string{"user:1", "user:2", "user:10", "usr:1", "other", "a*b"}},
		{"a\\*b", []string{"a*b"}},
	}
	for _, tc := range cases {
		t.Run(tc.pattern, func(t *testing.T) {
			results, errs := gbRun(t, c, fmt.Sprintf("GB().map(lambda x: x['key']).run(%q)", tc.pattern))
			require.Empty(t, errs)
			if tc.want == nil {
				require.Empty(t, results)
				return
			}
			require.ElementsMatch(t, tc.want, gbStrings(t, results))
		})
	}

	t.Run("noScan reads the exact key", func(t *testing.T) {
		require.Equal(t, []string{"a*b:string"}, gbRunStrings(t, c, "GB().map(lambda x: x['key'] + ':' + x['type']).run('a*b', noScan=True)"))
		require.Equal(t, []string{"user:*:empty"}, gbRunStrings(t, c, "GB().map(lambda x: x['key'] + ':' + x['type']).run('user:*', noScan=True)"),
			"a glob is not expanded with noScan")
		require.Equal(t, []string{"user:1:string"}, gbRunStrings(t, c, "GB().map(lambda x: x['key'] + ':' + x['type']).run('user:1', noScan=True)"))
	})

	t.Run("many keys are counted exactly", func(t *testing.T) {
		n, err := c.Eval(bg(), "for i=0,4999 do redis.call('set', 'many:'..i, tostring(i)) end redis.call('set', 'manx', '1') return redis.call('dbsize')", nil).Int64()
		require.NoError(t, err)
		require.EqualValues(t, 5007, n)
		require.Equal(t, []string{"5000"}, gbRunStrings(t, c, "GB().count().run('many:*')"))
		require.Equal(t, []string{"5007"}, gbRunStrings(t, c, "GB().count().run()"))
		// Every key exactly once, with its own value.
		require.Equal(t, []string{"5000:5000:12497500"}, gbRunStrings(t, c,
			"GB().map(lambda x: (x['key'], int(x['value']))).filter(lambda r: r[0] == 'many:%d' % r[1]).accumulate(lambda a, r: (a or set()) | {r}).map(lambda a: '%d:%d:%d' % (len(a), len({k for k, _ in a}), sum(v for _, v in a))).run('many:*')"))
		results, errs := gbRun(t, c, "GB().map(lambda x: x['key']).run('many:*')")
		require.Empty(t, errs)
		require.Len(t, results, 5000)
		seen := map[string]bool{}
		for _, r := range results {
			k := r.(string)
			require.False(t, seen[k], "key %s read twice", k)
			seen[k] = true
		}
		for i := 0; i < 5000; i++ {
			require.True(t, seen["many:"+strconv.Itoa(i)], "key many:%d not read", i)
		}
	})
	requireAlive(t, s)
}

func TestKeysOnlyReader(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	for _, k := range []string{"x", "z", "y"} {
		require.NoError(t, c.Set(bg(), k, "1", 0).Err())
	}

	t.Run("sorted key names", func(t *testing.T) {
		require.Equal(t, []string{"x", "y", "z"}, gbRunStrings(t, c, "GB('KeysOnlyReader').sort().run()"))
	})
	t.Run("records are key name strings", func(t *testing.T) {
		require.Equal(t, []string{"str"}, gbRunStrings(t, c, "GB('KeysOnlyReader').map(lambda k: type(k).__name__).distinct().run()"))
	})
	t.Run("exact key", func(t *testing.T) {
		require.Equal(t, []string{"x"}, gbRunStrings(t, c, "GB('KeysOnlyReader').sort().run('x')"))
	})
	t.Run("glob", func(t *testing.T) {
		require.Equal(t, []string{"y", "z"}, gbRunStrings(t, c, "GB('KeysOnlyReader').sort().run('[yz]')"))
	})
	t.Run("count=1 still reads everything", func(t *testing.T) {
		require.Equal(t, []string{"x", "y", "z"}, gbRunStrings(t, c, "GB('KeysOnlyReader').sort().run(count=1)"))
	})
	t.Run("noScan", func(t *testing.T) {
		require.Equal(t, []string{"y"}, gbRunStrings(t, c, "GB('KeysOnlyReader').run('y', noScan=True)"))
		results, errs := gbRun(t, c, "GB('KeysOnlyReader').run('nokey', noScan=True)")
		require.Empty(t, errs)
		require.Empty(t, results)
		results, errs = gbRun(t, c, "GB('KeysOnlyReader').run('*', noScan=True)")
		require.Empty(t, errs)
		require.Empty(t, results, "noScan does not expand a glob")
	})
	t.Run("patternGenerator", func(t *testing.T) {
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GB('ShardsIDReader').foreach(lambda x: execute('set', 'x{%s}' % hashtag(), '1')).run()"))
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "def Generator():\n    return ('x{%s}' % hashtag(), True)\nGB('KeysOnlyReader').count().run(patternGenerator=Generator)"))
		require.Equal(t, []string{"x", "x{06S}", "y", "z"}, gbRunStrings(t, c, "GB('KeysOnlyReader').sort().run('nomatch', patternGenerator=lambda: ('*', False))"),
			"the generator overrides the pattern")
		require.Equal(t, []string{"x", "x{06S}"}, gbRunStrings(t, c, "GB('KeysOnlyReader').sort().run(patternGenerator=lambda: ('x*', False))"))
		results, errs := gbRun(t, c, "GB('KeysOnlyReader').run('*', patternGenerator=lambda: ('x*', True))")
		require.Empty(t, errs)
		require.Empty(t, results, "the generator's noScan=True reads the literal key 'x*'")
	})
	t.Run("many keys with a small count", func(t *testing.T) {
		require.NoError(t, c.Eval(bg(), "for i=1,1500 do redis.call('set', 'ko:'..i, '1') end return 1", nil).Err())
		require.Equal(t, []string{"1500"}, gbRunStrings(t, c, "GB('KeysOnlyReader').count().run('ko:*', count=7)"))
		require.Equal(t, []string{"1500"}, gbRunStrings(t, c, "GB('KeysOnlyReader').distinct().count().run('ko:*')"))
	})
	t.Run("errors", func(t *testing.T) {
		results, errs := gbRun(t, c, "GB('KeysOnlyReader').run(count='abc')")
		require.Empty(t, results)
		require.Len(t, errs, 1)
		require.Contains(t, errs[0], "value is not an integer")
		results, errs = gbRun(t, c, "GB('KeysOnlyReader').run(patternGenerator=1)")
		require.Empty(t, results)
		require.Len(t, errs, 1)
		require.Contains(t, errs[0], "object is not callable")
		gbPyErr(t, s, "GB('KeysOnlyReader').run(1)", "regex argument must be a string")
	})
	requireAlive(t, s)
}

func TestStreamReader(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	id1, err := c.XAdd(bg(), rdXAddArgs("s", "foo", "bar", "foo1", "bar1")).Result()
	require.NoError(t, err)
	id2, err := c.XAdd(bg(), rdXAddArgs("s", "foo2", "bar2", "foo3", "bar3")).Result()
	require.NoError(t, err)

	t.Run("values", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB('StreamReader').map(lambda x: x['value']).run('s')")
		require.Equal(t, []string{"{'foo': 'bar', 'foo1': 'bar1'}", "{'foo2': 'bar2', 'foo3': 'bar3'}"}, got)
	})

	t.Run("record shape", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB('StreamReader').map(lambda x: repr((sorted(x.keys()), x['key'], x['id']))).run('s')")
		require.Equal(t, []string{
			fmt.Sprintf("(['id', 'key', 'value'], 's', '%s')", id1),
			fmt.Sprintf("(['id', 'key', 'value'], 's', '%s')", id2),
		}, got)
	})

	t.Run("fromId", func(t *testing.T) {
		got := gbRunStrings(t, c, fmt.Sprintf("GB('StreamReader').map(lambda x: x['value']).run('s', fromId='%s')", id1))
		require.Equal(t, []string{"{'foo2': 'bar2', 'foo3': 'bar3'}"}, got)
		results, errs := gbRun(t, c, fmt.Sprintf("GB('StreamReader').run('s', fromId='%s')", id2))
		require.Empty(t, errs)
		require.Empty(t, results)
		got = gbRunStrings(t, c, "GB('StreamReader').map(lambda x: x['id']).run('s', fromId='0')")
		require.Equal(t, []string{id1, id2}, got)
	})

	t.Run("bad fromId", func(t *testing.T) {
		res, err := pyexec(c, "GearsBuilder('StreamReader').run('s', fromId='test')")
		require.NoError(t, err)
		require.Equal(t, []any{[]any{}, []any{"ERR Invalid stream ID specified as stream command argument"}}, res)
	})

	t.Run("argument types", func(t *testing.T) {
		gbPyErr(t, s, "GB('StreamReader').run('s', fromId=1)", "fromId argument must be a string")
		gbPyErr(t, s, "GB('StreamReader').run(1)", "regex argument must be a string")
	})

	t.Run("missing stream", func(t *testing.T) {
		results, errs := gbRun(t, c, "GB('StreamReader').run('nostream')")
		require.Empty(t, errs)
		require.Empty(t, results)
	})

	t.Run("not a stream", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "notstream", "1", 0).Err())
		results, errs := gbRun(t, c, "GB('StreamReader').run('notstream')")
		require.Empty(t, results)
		require.Len(t, errs, 1)
		require.Contains(t, errs[0], "WRONGTYPE")
	})

	t.Run("a long stream is read completely and in order", func(t *testing.T) {
		n, err := c.Eval(bg(), "for i=1,2500 do redis.call('xadd', 'big', '*', 'i', tostring(i)) end return redis.call('xlen', 'big')", nil).Int64()
		require.NoError(t, err)
		require.EqualValues(t, 2500, n)
		require.Equal(t, []string{"2500"}, gbRunStrings(t, c, "GB('StreamReader').count().run('big')"))
		results, errs := gbRun(t, c, "GB('StreamReader').map(lambda x: int(x['value']['i'])).run('big', convertToStr=False)")
		require.Empty(t, errs)
		require.Len(t, results, 2500)
		for i, r := range results {
			require.Equal(t, int64(i+1), r, "entry %d", i)
		}
		got := gbRunStrings(t, c, "GB('StreamReader').map(lambda x: x['id']).distinct().count().run('big')")
		require.Equal(t, []string{"2500"}, got)
	})
	requireAlive(t, s)
}

func TestPythonReader(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("generator records", func(t *testing.T) {
		got := gbRunStrings(t, c, "def gen():\n    for i in range(5):\n        yield i\nGB('PythonReader').run(gen)")
		require.Equal(t, []string{"0", "1", "2", "3", "4"}, got)
	})

	t.Run("any object is a record", func(t *testing.T) {
		got := gbRunStrings(t, c, "def gen():\n    yield {'a': 1}\n    yield (1, 'x')\n    yield None\nGB('PythonReader').map(lambda r: type(r).__name__).run(gen)")
		require.Equal(t, []string{"dict", "tuple", "NoneType"}, got)
	})

	t.Run("many records in order", func(t *testing.T) {
		results, errs := gbRun(t, c, "def gen():\n    for i in range(6379):\n        yield i\nGB('PythonReader').run(gen, convertToStr=False)")
		require.Empty(t, errs)
		require.Len(t, results, 6379)
		for i, r := range results {
			require.Equal(t, int64(i), r)
		}
	})

	t.Run("an empty generator", func(t *testing.T) {
		results, errs := gbRun(t, c, "def gen():\n    return\n    yield 1\nGB('PythonReader').run(gen)")
		require.Empty(t, errs)
		require.Empty(t, results)
	})

	t.Run("the generator can call Redis", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "pr:k", "from redis", 0).Err())
		got := gbRunStrings(t, c, "def gen():\n    yield execute('get', 'pr:k')\nGB('PythonReader').run(gen)")
		require.Equal(t, []string{"from redis"}, got)
	})

	t.Run("a failing generator reports its error", func(t *testing.T) {
		_, errs := gbRun(t, c, "def gen():\n    yield 1\n    raise Exception('generator failed here')\nGB('PythonReader').run(gen)")
		require.Len(t, errs, 1)
		require.Contains(t, errs[0], "generator failed here")
	})

	t.Run("not given a function", func(t *testing.T) {
		for _, script := range []string{
			"GB('PythonReader').run('*')",
			"GB('PythonReader').run()",
			"GB('PythonReader', '*').run()",
			"GB('PythonReader').run(1)",
			"GB('PythonReader').run(range)",
			"GB('PythonReader').run([1, 2])",
		} {
			gbPyErr(t, s, script, "pyreader argument must be a function")
		}
	})

	t.Run("defaultArg can be the function", func(t *testing.T) {
		got := gbRunStrings(t, c, "def gen():\n    yield 'd'\nGB('PythonReader', gen).run()")
		require.Equal(t, []string{"d"}, got)
	})
	requireAlive(t, s)
}

func TestShardsIDAndCommandReaders(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("ShardsIDReader", func(t *testing.T) {
		res, err := pyexec(c, "GB('ShardsIDReader').run()")
		require.NoError(t, err)
		require.Equal(t, []any{[]any{"1"}, []any{}}, res)
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GB('ShardsIDReader').count().run()"))
		require.Equal(t, []string{"str:1"}, gbRunStrings(t, c, "GB('ShardsIDReader').map(lambda x: type(x).__name__ + ':' + x).run()"))
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GB('ShardsIDReader').run('ignored-argument')"))
	})

	t.Run("CommandReader cannot run", func(t *testing.T) {
		gbPyErr(t, s, "GB('CommandReader').run()", "Given reader do not support run or not exists")
		gbPyErr(t, s, "GB('CommandReader').map(lambda x: x).run('trigger')", "Given reader do not support run or not exists")
		require.Empty(t, gbDumpExecutions(t, c))
	})
	requireAlive(t, s)
}

func rdXAddArgs(stream string, fieldValues ...string) *redis.XAddArgs {
	vals := make([]any, 0, len(fieldValues))
	for _, v := range fieldValues {
		vals = append(vals, v)
	}
	return &redis.XAddArgs{Stream: stream, ID: "*", Values: vals}
}
