package tests

// GearsBuilder operations, their argument checks, error records and the
// conversion of records into the reply (reference §3.2, §3.4, §3.6, §2.1).

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// ---- helpers shared by builder_test.go, readers_test.go, executions_test.go ----

// gbRun runs a blocking RG.PYEXECUTE whose script calls run() and returns
// the two lists of its [[results...], [errors...]] reply.
func gbRun(t testing.TB, c *redis.Client, script string, args ...any) ([]any, []string) {
	t.Helper()
	res, err := pyexec(c, script, args...)
	require.NoError(t, err, "script:\n%s", script)
	return gbSplitReply(t, res, script)
}

// gbSplitReply checks a [[results...], [errors...]] reply and splits it.
func gbSplitReply(t testing.TB, res any, what string) ([]any, []string) {
	t.Helper()
	arr, ok := res.([]any)
	require.True(t, ok, "%s\nreply is not an array: %#v", what, res)
	require.Len(t, arr, 2, "%s\nreply is not [[results],[errors]]: %#v", what, res)
	results, ok := arr[0].([]any)
	require.True(t, ok, "%s\nresults are not an array: %#v", what, arr[0])
	rawErrs, ok := arr[1].([]any)
	require.True(t, ok, "%s\nerrors are not an array: %#v", what, arr[1])
	errs := make([]string, 0, len(rawErrs))
	for _, e := range rawErrs {
		s, ok := e.(string)
		require.True(t, ok, "%s\nerror entry is not a bulk string: %#v", what, e)
		errs = append(errs, s)
	}
	return results, errs
}

// gbStrings converts results that must all be bulk strings.
func gbStrings(t testing.TB, results []any) []string {
	t.Helper()
	out := make([]string, 0, len(results))
	for _, r := range results {
		s, ok := r.(string)
		require.True(t, ok, "result is not a string: %#v (all: %#v)", r, results)
		out = append(out, s)
	}
	return out
}

// gbRunStrings runs a script whose results must be strings and whose errors
// list must be empty.
func gbRunStrings(t testing.TB, c *redis.Client, script string, args ...any) []string {
	t.Helper()
	results, errs := gbRun(t, c, script, args...)
	require.Empty(t, errs, "script:\n%s", script)
	return gbStrings(t, results)
}

func gbSorted(in []string) []string {
	out := append([]string(nil), in...)
	sort.Strings(out)
	return out
}

// gbPyErr runs a script that must fail with an error containing want.
func gbPyErr(t testing.TB, s *server, script, want string) {
	t.Helper()
	msg := requirePyErr(t, s.Client, script)
	require.Contains(t, msg, want, "script:\n%s", script)
}

// gbDumpExecutions is RG.DUMPEXECUTIONS.
func gbDumpExecutions(t testing.TB, c *redis.Client) []any {
	t.Helper()
	res, err := c.Do(bg(), "RG.DUMPEXECUTIONS").Result()
	require.NoError(t, err)
	arr, ok := res.([]any)
	require.True(t, ok, "RG.DUMPEXECUTIONS replied %#v", res)
	return arr
}

// gbConfigSet runs RG.CONFIGSET key value and checks it was accepted.
func gbConfigSet(t testing.TB, c *redis.Client, key, value string) {
	t.Helper()
	res, err := c.Do(bg(), "RG.CONFIGSET", key, value).Result()
	require.NoError(t, err)
	arr, ok := res.([]any)
	require.True(t, ok, "RG.CONFIGSET replied %#v", res)
	require.Len(t, arr, 1)
	str, ok := arr[0].(string)
	require.True(t, ok, "RG.CONFIGSET %s %s: %#v", key, value, arr[0])
	require.True(t, strings.HasPrefix(str, "OK"), "RG.CONFIGSET %s %s: %q", key, value, str)
}

// gbGen is a PythonReader generator named gen yielding the given Python
// expressions (one per element of a list literal).
func gbGen(items string) string {
	return py(
		"def gen():",
		"    for i in "+items+":",
		"        yield i",
	)
}

// ---- operations ----

func TestBuilderMapFilterForeach(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("map is 1:1 and keeps the order", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("range(6)")+"\nGB('PythonReader').map(lambda x: x * 10).run(gen)")
		require.Equal(t, []string{"0", "10", "20", "30", "40", "50"}, got)
	})

	t.Run("map chains", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("['a', 'b']")+"\nGB('PythonReader').map(lambda x: x + '1').map(lambda x: x * 2).map(lambda x: x.upper()).run(gen)")
		require.Equal(t, []string{"A1A1", "B1B1"}, got)
	})

	t.Run("filter keeps truthy records", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("range(1, 10)")+"\nGB('PythonReader').filter(lambda x: x % 3).run(gen)")
		require.Equal(t, []string{"1", "2", "4", "5", "7", "8"}, got)
		got = gbRunStrings(t, c, gbGen("[0, '', [], None, 'x', [0], 5]")+"\nGB('PythonReader').filter(lambda x: x).run(gen)")
		require.Equal(t, []string{"x", "[0]", "5"}, got)
	})

	t.Run("filter can drop everything", func(t *testing.T) {
		results, errs := gbRun(t, c, gbGen("range(5)")+"\nGB('PythonReader').filter(lambda x: False).run(gen)")
		require.Empty(t, results)
		require.Empty(t, errs)
	})

	t.Run("foreach passes the original record and runs for each", func(t *testing.T) {
		got := gbRunStrings(t, c, py(
			gbGen("range(1, 7)"),
			"def side(x):",
			"    execute('incrby', 'foreach_sum', x)",
			"    return 'ignored'",
			"GB('PythonReader').filter(lambda x: x % 2 == 0).foreach(side).run(gen)",
		))
		require.Equal(t, []string{"2", "4", "6"}, got)
		require.Equal(t, "12", getKey(t, c, "foreach_sum"))
	})

	t.Run("foreach mutating a record is visible downstream", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("range(2)")+"\nGB('PythonReader').map(lambda x: [x]).foreach(lambda r: r.append('m')).run(gen)")
		require.Equal(t, []string{"[0, 'm']", "[1, 'm']"}, got)
	})

	t.Run("map over KeysReader records", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "mfk:a", "1", 0).Err())
		require.NoError(t, c.Set(bg(), "mfk:b", "2", 0).Err())
		got := gbRunStrings(t, c, "GB().map(lambda x: x['key'] + '=' + x['value']).run('mfk:*')")
		require.Equal(t, []string{"mfk:a=1", "mfk:b=2"}, gbSorted(got))
	})
}

func TestBuilderFlatmap(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("list elements are emitted last to first", func(t *testing.T) {
		got := gbRunStrings(t, c, "def gen():\n    yield 'a'\nGB('PythonReader').flatmap(lambda x: [1, 2, 3]).run(gen)")
		require.Equal(t, []string{"3", "2", "1"}, got)
	})

	t.Run("per record, in record order", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("['a', 'b']")+"\nGB('PythonReader').flatmap(lambda x: [x + '1', x + '2', x + '3']).run(gen)")
		require.Equal(t, []string{"a3", "a2", "a1", "b3", "b2", "b1"}, got)
	})

	t.Run("a non-list passes through as one record", func(t *testing.T) {
		got := gbRunStrings(t, c, "def gen():\n    yield 'a'\nGB('PythonReader').flatmap(lambda x: 'abc').run(gen)")
		require.Equal(t, []string{"abc"}, got)
		got = gbRunStrings(t, c, "def gen():\n    yield 'a'\nGB('PythonReader').flatmap(lambda x: (1, 2)).run(gen)")
		require.Equal(t, []string{"(1, 2)"}, got, "a tuple is not a list")
		got = gbRunStrings(t, c, "def gen():\n    yield 'a'\nGB('PythonReader').flatmap(lambda x: {'k': 1}).run(gen)")
		require.Equal(t, []string{"{'k': 1}"}, got, "a dict is not a list")
	})

	t.Run("an empty list emits nothing", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("range(3)")+"\nGB('PythonReader').flatmap(lambda x: [] if x == 1 else [x]).run(gen)")
		require.Equal(t, []string{"0", "2"}, got)
	})

	t.Run("nested lists are expanded one level", func(t *testing.T) {
		got := gbRunStrings(t, c, "def gen():\n    yield 'a'\nGB('PythonReader').flatmap(lambda x: [[1, 2], 3]).run(gen)")
		require.Equal(t, []string{"3", "[1, 2]"}, got)
	})

	t.Run("list values of KeysReader records", func(t *testing.T) {
		require.NoError(t, c.RPush(bg(), "fml", "1", "2", "3", "4", "5").Err())
		got := gbRunStrings(t, c, "GB().flatmap(lambda x: x['value']).run('fml')")
		require.Equal(t, []string{"5", "4", "3", "2", "1"}, got)
	})
}

func TestBuilderAccumulate(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("accumulator starts as None and one record is emitted", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("range(1, 5)")+"\nGB('PythonReader').accumulate(lambda a, r: [repr(a)] if a is None else a + [r]).run(gen)")
		require.Equal(t, []string{"['None', 2, 3, 4]"}, got)
	})

	t.Run("sum", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("range(1, 101)")+"\nGB('PythonReader').accumulate(lambda a, r: (a if a else 0) + r).run(gen)")
		require.Equal(t, []string{"5050"}, got)
	})

	t.Run("empty input yields no record", func(t *testing.T) {
		results, errs := gbRun(t, c, "GB().accumulate(lambda a, r: (a if a else 0) + 1).run('nothing-matches-this:*')")
		require.Empty(t, results)
		require.Empty(t, errs)
		results, errs = gbRun(t, c, "def gen():\n    return\n    yield 1\nGB('PythonReader').accumulate(lambda a, r: 1).run(gen)")
		require.Empty(t, results)
		require.Empty(t, errs)
	})

	t.Run("count on empty input yields no record", func(t *testing.T) {
		results, errs := gbRun(t, c, "GB().count().run('nothing-matches-this:*')")
		require.Empty(t, results)
		require.Empty(t, errs)
	})
}

func TestBuilderGroupBy(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	fruits := gbGen("['apple', 'avocado', 'banana', 'blueberry', 'cherry', 'apricot']")

	t.Run("localgroupby outputs key and value", func(t *testing.T) {
		got := gbRunStrings(t, c, fruits+"\nGB('PythonReader').localgroupby(lambda x: x[0], lambda k, a, r: (a if a else 0) + 1).run(gen)")
		require.ElementsMatch(t, []string{"{'key': 'a', 'value': 3}", "{'key': 'b', 'value': 2}", "{'key': 'c', 'value': 1}"}, got)
	})

	t.Run("groupby outputs key and value", func(t *testing.T) {
		got := gbRunStrings(t, c, fruits+"\nGB('PythonReader').groupby(lambda x: x[0], lambda k, a, r: (a if a else []) + [r]).map(lambda r: (r['key'], sorted(r['value']))).run(gen)")
		require.ElementsMatch(t, []string{
			"('a', ['apple', 'apricot', 'avocado'])",
			"('b', ['banana', 'blueberry'])",
			"('c', ['cherry'])",
		}, got)
	})

	t.Run("reducer gets the key, None first, then its own result", func(t *testing.T) {
		got := gbRunStrings(t, c, fruits+"\nGB('PythonReader').groupby(lambda x: x[0], lambda k, a, r: (a if a is not None else ['first:' + k]) + [k]).map(lambda r: r['value'][:2]).run(gen)")
		require.ElementsMatch(t, []string{"['first:a', 'a']", "['first:b', 'b']", "['first:c', 'c']"}, got)
	})

	t.Run("the record dict has exactly key and value", func(t *testing.T) {
		got := gbRunStrings(t, c, fruits+"\nGB('PythonReader').localgroupby(lambda x: x[0], lambda k, a, r: 1).map(lambda r: repr((type(r).__name__, sorted(r.keys())))).distinct().run(gen)")
		require.Equal(t, []string{"('dict', ['key', 'value'])"}, got)
	})

	t.Run("non-str keys are converted with repr", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("[1, 1, 2, (3, 'x'), None]")+
			"\nGB('PythonReader').localgroupby(lambda x: x, lambda k, a, r: (a if a else 0) + 1).map(lambda r: (r['key'], type(r['key']).__name__, r['value'])).run(gen)")
		require.ElementsMatch(t, []string{
			"('1', 'str', 2)", "('2', 'str', 1)", "(\"(3, 'x')\", 'str', 1)", "('None', 'str', 1)",
		}, got)
		got = gbRunStrings(t, c, gbGen("['a', 'b']")+
			"\nGB('PythonReader').groupby(lambda x: x, lambda k, a, r: k).map(lambda r: r['key']).run(gen)")
		require.ElementsMatch(t, []string{"a", "b"}, got, "str keys are taken as they are (no quotes)")
	})

	t.Run("the reducer sees the converted key", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("[7]")+"\nGB('PythonReader').groupby(lambda x: x, lambda k, a, r: type(k).__name__ + ':' + k).map(lambda r: r['value']).run(gen)")
		require.Equal(t, []string{"str:7"}, got)
	})

	t.Run("batchgroupby reducer gets the whole group", func(t *testing.T) {
		got := gbRunStrings(t, c, fruits+"\nGB('PythonReader').batchgroupby(lambda x: x[0], lambda k, l: (k, sorted(l))).map(lambda r: (r['key'], r['value'])).run(gen)")
		require.ElementsMatch(t, []string{
			"('a', ('a', ['apple', 'apricot', 'avocado']))",
			"('b', ('b', ['banana', 'blueberry']))",
			"('c', ('c', ['cherry']))",
		}, got)
	})

	t.Run("batchgroupby keys are converted with repr", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("[1, 2, 3, 4]")+"\nGB('PythonReader').batchgroupby(lambda x: x % 2, lambda k, l: len(l)).map(lambda r: (r['key'], r['value'])).run(gen)")
		require.ElementsMatch(t, []string{"('0', 2)", "('1', 2)"}, got)
	})

	t.Run("groupby over KeysReader records", func(t *testing.T) {
		for i := 0; i < 10; i++ {
			require.NoError(t, c.Set(bg(), fmt.Sprintf("gbk:%d", i), i%3, 0).Err())
		}
		got := gbRunStrings(t, c, "GB().groupby(lambda x: x['value'], lambda k, a, r: (a if a else 0) + 1).map(lambda r: r['key'] + '=' + str(r['value'])).run('gbk:*')")
		require.ElementsMatch(t, []string{"0=4", "1=3", "2=3"}, got)
	})

	t.Run("empty input gives no groups", func(t *testing.T) {
		results, errs := gbRun(t, c, "GB().groupby(lambda x: x['key'], lambda k, a, r: 1).run('nothing-here:*')")
		require.Empty(t, results)
		require.Empty(t, errs)
	})
}

func TestBuilderLimitCollectRepartition(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	ten := gbGen("range(10)")

	cases := []struct {
		limit string
		want  []string
	}{
		{"limit(3)", []string{"0", "1", "2"}},
		{"limit(1, 3)", []string{"3"}},
		{"limit(4, 2)", []string{"2", "3", "4", "5"}},
		{"limit(100, 7)", []string{"7", "8", "9"}},
		{"limit(5, 10)", nil},
		{"limit(0)", nil},
		{"limit(10, 0)", []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}},
	}
	for _, tc := range cases {
		t.Run(tc.limit, func(t *testing.T) {
			results, errs := gbRun(t, c, ten+"\nGB('PythonReader')."+tc.limit+".run(gen)")
			require.Empty(t, errs)
			if tc.want == nil {
				require.Empty(t, results)
				return
			}
			require.Equal(t, tc.want, gbStrings(t, results))
		})
	}

	t.Run("limit after flatmap, unblocking", func(t *testing.T) {
		require.NoError(t, c.LPush(bg(), "lim:l", "1", "2", "3", "4", "5").Err())
		id, err := c.Do(bg(), "RG.PYEXECUTE", "GearsBuilder().flatmap(lambda x: x['value']).limit(1, 3).collect().run('lim:l')", "UNBLOCKING").Text()
		require.NoError(t, err)
		res, err := c.Do(bg(), "RG.GETRESULTSBLOCKING", id).Result()
		require.NoError(t, err)
		results, errs := gbSplitReply(t, res, "RG.GETRESULTSBLOCKING "+id)
		require.Empty(t, errs)
		// LPUSH 1..5 stores [5,4,3,2,1]; flatmap emits it last to first: 1,2,3,4,5.
		require.Equal(t, []any{"4"}, results)
		require.NoError(t, c.Do(bg(), "RG.DROPEXECUTION", id).Err())
	})

	t.Run("collect passes records on", func(t *testing.T) {
		got := gbRunStrings(t, c, ten+"\nGB('PythonReader').collect().map(lambda x: x + 1).collect().run(gen)")
		require.Equal(t, []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}, got)
	})

	t.Run("run without collect gives the same results on one shard", func(t *testing.T) {
		got := gbRunStrings(t, c, ten+"\nGB('PythonReader').run(gen, collect=False)")
		require.Len(t, got, 10)
		require.Equal(t, "0", got[0])
		require.Equal(t, "9", got[9])
	})

	t.Run("repartition passes records on and computes the key", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "rp:x", "1", 0).Err())
		require.NoError(t, c.Set(bg(), "rp:y", "2", 0).Err())
		require.NoError(t, c.Set(bg(), "rp:z", "3", 0).Err())
		got := gbRunStrings(t, c, "GearsBuilder().repartition(lambda x: x['value']).foreach(lambda x: redisgears.executeCommand('set', 'rpv:' + x['value'], x['key'])).map(lambda x: x['key']).run('rp:*')")
		require.ElementsMatch(t, []string{"rp:x", "rp:y", "rp:z"}, got)
		require.Equal(t, "rp:x", getKey(t, c, "rpv:1"))
		require.Equal(t, "rp:y", getKey(t, c, "rpv:2"))
		require.Equal(t, "rp:z", getKey(t, c, "rpv:3"))
		got = gbRunStrings(t, c, py(
			"def gen():",
			"    yield 1",
			"    yield 2",
			"def ext(x):",
			"    execute('incr', 'rp_extractor_calls')",
			"    return str(x)",
			"GB('PythonReader').repartition(ext).run(gen)",
		))
		require.Equal(t, []string{"1", "2"}, got)
		require.Equal(t, "2", getKey(t, c, "rp_extractor_calls"))
	})
}

func TestBuilderAggregations(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	require.NoError(t, c.Eval(bg(), "for i=0,99 do redis.call('set', 'n:'..i, tostring(i)) end return 1", nil).Err())

	t.Run("count", func(t *testing.T) {
		require.Equal(t, []string{"100"}, gbRunStrings(t, c, "GearsBuilder().count().run('n:*')"))
		require.Equal(t, []string{"7"}, gbRunStrings(t, c, gbGen("range(7)")+"\nGB('PythonReader').count().run(gen)"))
	})

	t.Run("avg", func(t *testing.T) {
		require.Equal(t, []string{"49.5"}, gbRunStrings(t, c, "GearsBuilder().map(lambda x: int(x['value'])).avg().run('n:*')"))
		require.Equal(t, []string{"1.5"}, gbRunStrings(t, c, "def gen():\n    yield '1'\n    yield '2'\nGB('PythonReader').avg().run(gen)"), "default extractor is float()")
		require.Equal(t, []string{"20.0"}, gbRunStrings(t, c, gbGen("[{'v': 10}, {'v': 30}]")+"\nGB('PythonReader').avg(lambda r: r['v']).run(gen)"))
	})

	t.Run("aggregate", func(t *testing.T) {
		require.Equal(t, []string{"4950"}, gbRunStrings(t, c, "GearsBuilder().map(lambda x: int(x['value'])).aggregate(0, lambda a, r: a + r, lambda a, r: a + r).run('n:*')"))
	})

	t.Run("aggregate deep-copies the zero value", func(t *testing.T) {
		got := gbRunStrings(t, c, py(
			gbGen("[1, 2, 3]"),
			"zero = {'sum': 0, 'mul': 1, 'seen': []}",
			"def local(a, r):",
			"    a['sum'] += r",
			"    a['mul'] *= r",
			"    a['seen'].append(r)",
			"    return a",
			"def glob(a, r):",
			"    a['sum'] += r['sum']",
			"    a['mul'] *= r['mul']",
			"    a['seen'].extend(r['seen'])",
			"    return a",
			"GB('PythonReader').aggregate(zero, local, glob).map(lambda a: (a['sum'], a['mul'], a['seen'], zero)).run(gen)",
		))
		require.Equal(t, []string{"(6, 6, [1, 2, 3], {'sum': 0, 'mul': 1, 'seen': []})"}, got)
	})

	t.Run("aggregate items sorted", func(t *testing.T) {
		got := gbRunStrings(t, c, py(
			gbGen("[1, 2, 3]"),
			"def SumMulLocal(a, r):",
			"    a['sum'] += r",
			"    a['mul'] *= r",
			"    return a",
			"def SumMulGlobal(a, r):",
			"    a['sum'] += r['sum']",
			"    a['mul'] *= r['mul']",
			"    return a",
			"GB('PythonReader').aggregate({'sum': 0, 'mul': 1}, SumMulLocal, SumMulGlobal).flatmap(lambda r: [a for a in r.items()]).sort().run(gen)",
		))
		require.Equal(t, []string{"('mul', 6)", "('sum', 6)"}, got)
	})

	t.Run("aggregateby deep-copies the zero value per key", func(t *testing.T) {
		got := gbRunStrings(t, c, py(
			gbGen("['apple', 'avocado', 'banana']"),
			"zero = []",
			"GB('PythonReader').aggregateby(lambda x: x[0], zero, lambda k, a, r: a.append(r) or a, lambda k, a, r: a + r).map(lambda r: (r['key'], sorted(r['value']), zero)).run(gen)",
		))
		require.ElementsMatch(t, []string{"('a', ['apple', 'avocado'], [])", "('b', ['banana'], [])"}, got)
	})

	t.Run("countby", func(t *testing.T) {
		got := gbRunStrings(t, c, "GearsBuilder().map(lambda x: {'key': x['key'], 'value': 0 if int(x['value']) < 50 else 100}).countby(lambda x: x['value']).collect().run('n:*')")
		require.ElementsMatch(t, []string{"{'key': '100', 'value': 50}", "{'key': '0', 'value': 50}"}, got)
	})

	t.Run("countby default extractor is the record", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("['a', 'b', 'a', 'c', 'a']")+"\nGB('PythonReader').countby().map(lambda r: r['key'] + ':' + str(r['value'])).run(gen)")
		require.ElementsMatch(t, []string{"a:3", "b:1", "c:1"}, got)
	})

	t.Run("__localAggregateby__", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("['a', 'b', 'a']")+"\nGB('PythonReader').__localAggregateby__(lambda x: x, 0, lambda k, a, r: a + 1).map(lambda r: r['key'] + ':' + str(r['value'])).run(gen)")
		require.ElementsMatch(t, []string{"a:2", "b:1"}, got)
	})

	t.Run("sort default is ascending", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("[3, 1, 5, 2, 4]")+"\nGB('PythonReader').sort().run(gen)")
		require.Equal(t, []string{"1", "2", "3", "4", "5"}, got)
		got = gbRunStrings(t, c, gbGen("['pear', 'apple', 'fig']")+"\nGB('PythonReader').sort(True).run(gen)")
		require.Equal(t, []string{"apple", "fig", "pear"}, got)
	})

	t.Run("sort reverse=False is descending", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("[3, 1, 5, 2, 4]")+"\nGB('PythonReader').sort(reverse=False).run(gen)")
		require.Equal(t, []string{"5", "4", "3", "2", "1"}, got)
	})

	t.Run("sort of key types", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "st:r", "1", 0).Err())
		require.NoError(t, c.LPush(bg(), "st:l", "1", "2", "3").Err())
		require.NoError(t, c.SAdd(bg(), "st:s", "1", "2", "3").Err())
		require.NoError(t, c.HSet(bg(), "st:h", "key", "val").Err())
		require.NoError(t, c.ZAdd(bg(), "st:z", redis.Z{Score: 1, Member: "m"}).Err())
		got := gbRunStrings(t, c, "GB().map(lambda x: x['type']).sort().run('st:*')")
		require.Equal(t, []string{"hash", "list", "set", "string", "zset"}, got)
	})

	t.Run("sort of empty input", func(t *testing.T) {
		results, errs := gbRun(t, c, "GB().sort().run('nothing-here:*')")
		require.Empty(t, results)
		require.Empty(t, errs)
	})

	t.Run("distinct", func(t *testing.T) {
		got := gbRunStrings(t, c, gbGen("['a', 'b', 'a', 'c', 'b', 'a']")+"\nGB('PythonReader').distinct().run(gen)")
		require.ElementsMatch(t, []string{"a", "b", "c"}, got)
		got = gbRunStrings(t, c, "GB().map(lambda x: int(x['value']) % 4).distinct().run('n:*')")
		require.ElementsMatch(t, []string{"0", "1", "2", "3"}, got)
	})
}

// ---- argument validation ----

func TestBuilderArgumentValidation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := "lambda x: x"
	cases := []struct{ script, want string }{
		{"GB().map()", "wrong number of args to map function"},
		{"GB().map(1, 2)", "wrong number of args to map function"},
		{"GB().map(1)", "map argument must be a function"},
		{"GB().map(str)", "map argument must be a function"},
		{"GB().map(len)", "map argument must be a function"},
		{"class C:\n    def __call__(self, x):\n        return x\nGB().map(C())", "map argument must be a function"},
		{"GB().flatmap(" + f + ", " + f + ")", "wrong number of args to flatmap function"},
		{"GB().flatmap('x')", "flatmap argument must be a function"},
		{"GB().foreach()", "wrong number of args to foreach function"},
		{"GB().foreach(1)", "foreach argument must be a function"},
		{"GB().filter(1, 2)", "wrong number of args to filter function"},
		{"GB().filter(bool)", "filter argument must be a function"},
		{"GB().accumulate()", "wrong number of args to accumulate function"},
		{"GB().accumulate(sum)", "accumulate argument must be a function"},
		{"GB().repartition()", "wrong number of args to repartition function"},
		{"GB().repartition(None)", "repartition argument must be a function"},
		{"GB().groupby(1, 2, 3)", "wrong number of args to groupby function"},
		{"GB().groupby(" + f + ")", "wrong number of args to groupby function"},
		{"GB().groupby(1, lambda k, a, r: a)", "groupby extractor argument must be a function"},
		{"GB().groupby(" + f + ", 1)", "groupby reducer argument must be a function"},
		{"GB().localgroupby(1, 2, 3)", "wrong number of args to groupby function"},
		{"GB().localgroupby(str, lambda k, a, r: a)", "groupby extractor argument must be a function"},
		{"GB().localgroupby(" + f + ", max)", "groupby reducer argument must be a function"},
		{"GB().batchgroupby(" + f + ")", "wrong number of args to batchgroupby function"},
		{"GB().batchgroupby(1, lambda k, l: l)", "batchgroupby extractor argument must be a function"},
		{"GB().batchgroupby(" + f + ", 'x')", "batchgroupby reducer argument must be a function"},
		{"GB().collect(1)", "wrong number of args to collect function"},
		{"GB().collect(1, 2, 3)", "wrong number of args to collect function"},
		{"GB().limit()", "wrong number of args to limit function"},
		{"GB().limit(1, 2, 3)", "wrong number of args to limit function"},
		{"GB().limit('awdwada')", "limit argument must be a number"},
		{"GB().limit(1, 'kakaka')", "limit argument must be a number"},
		{"GB().limit(1.5)", "limit argument must be a number"},
		{"GB().limit(None)", "limit argument must be a number"},
		{"GB().avg(1)", "map argument must be a function"},
		{"GB().countby(1)", "groupby extractor argument must be a function"},
		{"GB().aggregateby(1, 0, lambda k, a, r: a, lambda k, a, r: a)", "groupby extractor argument must be a function"},
		{"GB(1)", "reader argument must be a string"},
		{"GB(reader=None)", "reader argument must be a string"},
		{"GB('KeysReader', desc=1)", "desc argument must be a string"},
		{"GB('NoSuchReader')", "The given reader does not exists"},
		{"GB().run(mode='sync')", "unknown execution mode"},
		{"GB().run(mode='foo')", "unknown execution mode"},
		{"GB().run(mode=1)", "execution mode must be a string"},
		{"GB().run(mode=None)", "execution mode must be a string"},
		{"GB().run(1)", "regex argument must be a string"},
		{"GB('ShardsIDReader').run()\nGB('ShardsIDReader').run()", "Can not run more then 1 executions in a single script"},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.script, "\n", ";"), func(t *testing.T) {
			gbPyErr(t, s, tc.script, tc.want)
		})
	}

	t.Run("a refused step does not run anything", func(t *testing.T) {
		gbPyErr(t, s, "GB('ShardsIDReader').foreach(lambda x: execute('set', 'refused_ran', '1')).map(str).run()", "map argument must be a function")
		n, err := s.Client.Exists(bg(), "refused_ran").Result()
		require.NoError(t, err)
		require.Zero(t, n)
		require.Empty(t, gbDumpExecutions(t, s.Client))
	})

	t.Run("two runs leave no execution behind", func(t *testing.T) {
		gbPyErr(t, s, "GB('ShardsIDReader').run()\nGB('ShardsIDReader').run()", "Can not run more then 1 executions in a single script")
		require.Empty(t, gbDumpExecutions(t, s.Client))
		eventually(t, 5*time.Second, func() bool { return infoRG(t, s.Client, "rg_nexecutions") == 0 },
			"the first run() of a failed script is left behind (rg_nexecutions %d)", infoRG(t, s.Client, "rg_nexecutions"))
	})

	t.Run("two runs leave no execution behind, unblocking", func(t *testing.T) {
		_, err := pyexec(s.Client, "GB('ShardsIDReader').run()\nGB('ShardsIDReader').run()", "UNBLOCKING")
		require.Error(t, err)
		require.Contains(t, err.Error(), "Can not run more then 1 executions in a single script")
		require.Empty(t, gbDumpExecutions(t, s.Client), "the first run() of a failed script is listed")
	})
	requireAlive(t, s)
}

// ---- errors of steps ----

func TestBuilderStepErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	five := gbGen("range(5)")

	requireTraceback := func(t *testing.T, errs []string, n int, contains ...string) {
		t.Helper()
		require.Len(t, errs, n, "errors: %q", errs)
		for _, e := range errs {
			require.Contains(t, e, "Traceback (most recent call last)")
			for _, w := range contains {
				require.Contains(t, e, w)
			}
		}
	}

	t.Run("map", func(t *testing.T) {
		results, errs := gbRun(t, c, five+"\nGB('PythonReader').map(lambda x: 100 + 10 // (x - 2)).run(gen)")
		require.Equal(t, []string{"95", "90", "110", "105"}, gbStrings(t, results))
		requireTraceback(t, errs, 1, "ZeroDivisionError", "division by zero")
	})

	t.Run("filter", func(t *testing.T) {
		results, errs := gbRun(t, c, five+"\nGB('PythonReader').filter(lambda x: 1 / (x - 2) > 0).run(gen)")
		require.Equal(t, []string{"3", "4"}, gbStrings(t, results))
		requireTraceback(t, errs, 1, "ZeroDivisionError")
	})

	t.Run("foreach", func(t *testing.T) {
		results, errs := gbRun(t, c, five+"\nGB('PythonReader').foreach(lambda x: 1 / (x % 2)).run(gen)")
		require.Equal(t, []string{"1", "3"}, gbStrings(t, results))
		requireTraceback(t, errs, 3, "ZeroDivisionError")
	})

	t.Run("flatmap", func(t *testing.T) {
		results, errs := gbRun(t, c, five+"\nGB('PythonReader').flatmap(lambda x: [x] if x != 2 else notexists(x)).run(gen)")
		require.Equal(t, []string{"0", "1", "3", "4"}, gbStrings(t, results))
		requireTraceback(t, errs, 1, "NameError", "name 'notexists' is not defined")
	})

	t.Run("accumulate", func(t *testing.T) {
		_, errs := gbRun(t, c, five+"\nGB('PythonReader').accumulate(lambda a, r: (a or 0) + 10 // (r - 2)).run(gen)")
		require.NotEmpty(t, errs)
		require.Contains(t, errs[0], "ZeroDivisionError")
	})

	t.Run("groupby extractor", func(t *testing.T) {
		results, errs := gbRun(t, c, five+"\nGB('PythonReader').localgroupby(lambda x: str(1 // (x - 2) * 0), lambda k, a, r: (a or 0) + 1).map(lambda r: r['value']).run(gen)")
		require.Equal(t, []string{"4"}, gbStrings(t, results))
		requireTraceback(t, errs, 1, "ZeroDivisionError")
	})

	t.Run("groupby reducer", func(t *testing.T) {
		results, errs := gbRun(t, c, five+"\nGB('PythonReader').groupby(lambda x: 'k', lambda k, a, r: {}['missing'] if r == 4 else r).map(lambda r: r['key']).run(gen)")
		require.Equal(t, []string{"k"}, gbStrings(t, results))
		requireTraceback(t, errs, 1, "KeyError", "missing")
	})

	t.Run("batchgroupby reducer", func(t *testing.T) {
		results, errs := gbRun(t, c, gbGen("['apple', 'avocado', 'banana', 'blueberry', 'cherry']")+
			"\nGB('PythonReader').batchgroupby(lambda x: x[0], lambda k, l: 1 / 0 if k == 'b' else len(l)).map(lambda r: r['key'] + str(r['value'])).run(gen)")
		require.ElementsMatch(t, []string{"a2", "c1"}, gbStrings(t, results))
		requireTraceback(t, errs, 1, "ZeroDivisionError")
	})

	t.Run("repartition extractor", func(t *testing.T) {
		results, errs := gbRun(t, c, five+"\nGB('PythonReader').repartition(lambda x: notexists(x) if x == 0 else str(x)).run(gen)")
		require.Equal(t, []string{"1", "2", "3", "4"}, gbStrings(t, results))
		requireTraceback(t, errs, 1, "name 'notexists' is not defined")
	})

	t.Run("every record failing", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "se:x", "1", 0).Err())
		require.NoError(t, c.Set(bg(), "se:y", "1", 0).Err())
		for _, op := range []string{"foreach", "map", "filter", "flatmap"} {
			results, errs := gbRun(t, c, "GB()."+op+"(lambda x: notexists(x)).collect().run('se:*')")
			require.Empty(t, results, op)
			require.Len(t, errs, 2, op)
			for _, e := range errs {
				require.Contains(t, e, "name 'notexists' is not defined", op)
			}
		}
	})

	t.Run("custom exception text", func(t *testing.T) {
		_, errs := gbRun(t, c, py(
			"class MyProblem(Exception):",
			"    pass",
			"def bad(x):",
			"    raise MyProblem('record %s is bad' % x)",
			"GB('ShardsIDReader').map(bad).run()",
		))
		requireTraceback(t, errs, 1, "MyProblem", "record 1 is bad")
	})

	t.Run("GearsError raised from execute", func(t *testing.T) {
		_, errs := gbRun(t, c, "GB('ShardsIDReader').map(lambda x: execute('nosuchcommand')).run()")
		require.Len(t, errs, 1)
		require.Contains(t, strings.ToLower(errs[0]), "unknown command")
	})

	t.Run("BaseException in a step", func(t *testing.T) {
		for _, tc := range []struct{ raise, want string }{
			{"raise SystemExit(3)", "SystemExit"},
			{"raise KeyboardInterrupt()", "KeyboardInterrupt"},
		} {
			results, errs := gbRun(t, c, "def f(x):\n    "+tc.raise+"\nGB('ShardsIDReader').map(f).run()")
			require.Empty(t, results, tc.raise)
			require.Len(t, errs, 1, tc.raise)
			require.Contains(t, errs[0], tc.want, tc.raise)
			requireAlive(t, s)
		}
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GB('ShardsIDReader').run()"))
	})

	t.Run("flat_error gives the text without traceback", func(t *testing.T) {
		results, errs := gbRun(t, c, five+"\nGB('PythonReader').map(lambda x: flat_error('bad record %d' % x) if x in (1, 3) else x).run(gen)")
		require.Equal(t, []string{"0", "2", "4"}, gbStrings(t, results))
		require.Equal(t, []string{"bad record 1", "bad record 3"}, errs)
	})

	t.Run("an unblocking run keeps its errors", func(t *testing.T) {
		id, err := c.Do(bg(), "RG.PYEXECUTE", five+"\nGB('PythonReader').map(lambda x: flat_error('e%d' % x) if x % 2 else x).run(gen)", "UNBLOCKING").Text()
		require.NoError(t, err)
		res, err := c.Do(bg(), "RG.GETRESULTSBLOCKING", id).Result()
		require.NoError(t, err)
		results, errs := gbSplitReply(t, res, id)
		require.Equal(t, []any{"0", "2", "4"}, results)
		require.Equal(t, []string{"e1", "e3"}, errs)
		require.NoError(t, c.Do(bg(), "RG.DROPEXECUTION", id).Err())
	})
	requireAlive(t, s)
}

func TestBuilderErrorTextWithoutTraceback(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	gbConfigSet(t, c, "PythonAttemptTraceback", "0")

	_, errs := gbRun(t, c, "GB('ShardsIDReader').map(lambda x: 1 / 0).run()")
	require.Equal(t, []string{"Error type: <class 'ZeroDivisionError'>, Value: division by zero"}, errs)

	_, errs = gbRun(t, c, "GB('ShardsIDReader').map(lambda x: {}['nokey']).run()")
	require.Equal(t, []string{"Error type: <class 'KeyError'>, Value: 'nokey'"}, errs)

	_, errs = gbRun(t, c, "GB('ShardsIDReader').map(lambda x: flat_error('flat text')).run()")
	require.Equal(t, []string{"flat text"}, errs, "flat_error is unchanged")

	msg := requirePyErr(t, c, "GB().map(1)")
	require.Contains(t, msg, "map argument must be a function")
	require.NotContains(t, msg, "Traceback")

	gbConfigSet(t, c, "PythonAttemptTraceback", "1")
	_, errs = gbRun(t, c, "GB('ShardsIDReader').map(lambda x: 1 / 0).run()")
	require.Len(t, errs, 1)
	require.Contains(t, errs[0], "Traceback (most recent call last)")
}

// ---- reply conversion ----

func TestBuilderReplyConversion(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("convertToStr=False", func(t *testing.T) {
		res, err := pyexec(c, py(
			"def gen():",
			"    for v in [1, 'text', 2.5, True, b'raw', None, {'a': 1}, (1, 2), '+status', '-failure text', [1, ['x']],",
			"              False, -7, 0.1, '+', '-', bytearray(b'ba'), {1, 2}, [], [None, 2.25], 'h\\u00e9', 1.0, 2**40]:",
			"        yield v",
			"GB('PythonReader').run(gen, convertToStr=False)",
		))
		require.NoError(t, err)
		arr, ok := res.([]any)
		require.True(t, ok, "%#v", res)
		require.Len(t, arr, 2)
		require.Equal(t, []any{}, arr[1])
		results, ok := arr[0].([]any)
		require.True(t, ok, "%#v", arr[0])
		require.Len(t, results, 23, "%#v", results)

		want := []any{
			int64(1), "text", "2.500000", int64(1), "raw", "PY RECORD", "PY RECORD", "PY RECORD",
			"status", nil /* error reply, below */, []any{int64(1), []any{"x"}},
			int64(0), int64(-7), "0.100000", "+", "-", "ba", "PY RECORD", []any{}, []any{"PY RECORD", "2.250000"},
			"hé", "1.000000", int64(1 << 40),
		}
		for i, w := range want {
			if i == 9 {
				var rerr redis.Error
				e, isErr := results[i].(error)
				require.True(t, isErr && errors.As(e, &rerr), "'-failure text' must be an error reply, got %#v", results[i])
				require.Equal(t, "failure text", rerr.Error())
				continue
			}
			require.Equal(t, w, results[i], "record %d", i)
		}
	})

	t.Run("default str conversion", func(t *testing.T) {
		res, err := pyexec(c, py(
			"def gen():",
			"    for v in [1, 2.5, True, None, b'raw', (1, 2), [1, 'a'], {'a': 1}, '+ok']:",
			"        yield v",
			"GB('PythonReader').run(gen)",
		))
		require.NoError(t, err)
		results, errs := gbSplitReply(t, res, "default str")
		require.Empty(t, errs)
		require.Equal(t, []any{"1", "2.5", "True", "None", "b'raw'", "(1, 2)", "[1, 'a']", "{'a': 1}", "ok"}, results)
	})

	t.Run("results of an unblocking run are converted the same way", func(t *testing.T) {
		id, err := c.Do(bg(), "RG.PYEXECUTE", "def gen():\n    yield 3\n    yield [1.5]\n    yield '+st'\nGB('PythonReader').run(gen, convertToStr=False)", "UNBLOCKING").Text()
		require.NoError(t, err)
		res, err := c.Do(bg(), "RG.GETRESULTSBLOCKING", id).Result()
		require.NoError(t, err)
		results, errs := gbSplitReply(t, res, id)
		require.Empty(t, errs)
		require.Equal(t, []any{int64(3), []any{"1.500000"}, "st"}, results)
		res, err = c.Do(bg(), "RG.GETRESULTS", id).Result()
		require.NoError(t, err)
		results, _ = gbSplitReply(t, res, id)
		require.Equal(t, []any{int64(3), []any{"1.500000"}, "st"}, results)
	})

	t.Run("KeysReader records without str conversion", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "rc:x", "1", 0).Err())
		results, errs := gbRun(t, c, "GB().run('rc:x', convertToStr=False)")
		require.Empty(t, errs)
		require.Equal(t, []any{"PY RECORD"}, results)
		results, errs = gbRun(t, c, "GB().map(lambda x: [x['key'], int(x['value'])]).run('rc:x', convertToStr=False)")
		require.Empty(t, errs)
		require.Equal(t, []any{[]any{"rc:x", int64(1)}}, results)
	})
}

// ---- run() arguments ----

func TestBuilderRunArguments(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("mode async_local", func(t *testing.T) {
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GearsBuilder('ShardsIDReader').count().run(mode='async_local')"))
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GearsBuilder('ShardsIDReader').run(mode='async_local')"))
	})

	t.Run("mode async", func(t *testing.T) {
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GearsBuilder('ShardsIDReader').run(mode='async')"))
	})

	t.Run("unknown keyword arguments are ignored", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "student:1", "a", 0).Err())
		require.NoError(t, c.Set(bg(), "other", "b", 0).Err())
		got := gbRunStrings(t, c, "GB().map(lambda x: x['key']).run(prefix='student:*', whatever=[1, 2], batch=3)")
		require.ElementsMatch(t, []string{"student:1", "other"}, got)
		got = gbRunStrings(t, c, "GB('ShardsIDReader').run(foo='bar')")
		require.Equal(t, []string{"1"}, got)
	})

	t.Run("defaultArg is the run argument unless given", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "da:1", "a", 0).Err())
		require.NoError(t, c.Set(bg(), "db:1", "b", 0).Err())
		require.Equal(t, []string{"da:1"}, gbRunStrings(t, c, "GB('KeysReader', 'da:*').map(lambda x: x['key']).run()"))
		require.Equal(t, []string{"db:1"}, gbRunStrings(t, c, "GB('KeysReader', 'da:*').map(lambda x: x['key']).run('db:*')"))
		require.Equal(t, []string{"db:1"}, gbRunStrings(t, c, "GB(defaultArg='db:*').map(lambda x: x['key']).run()"))
	})

	t.Run("desc is accepted", func(t *testing.T) {
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GB('ShardsIDReader', desc='some description').run()"))
	})

	t.Run("GearsBuilder and GB", func(t *testing.T) {
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GearsBuilder('ShardsIDReader').run()"))
		require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GearsBuilder(reader='ShardsIDReader').run()"))
	})

	t.Run("operations return the builder", func(t *testing.T) {
		requirePyOK(t, c, py(
			"f1 = lambda x: x",
			"f2 = lambda k, a, r: a",
			"b = GB('PythonReader')",
			"ops = [b.map(f1), b.flatmap(f1), b.foreach(f1), b.filter(f1), b.accumulate(lambda a, r: a),",
			"       b.localgroupby(f1, f2), b.groupby(f1, f2), b.batchgroupby(f1, lambda k, l: l), b.collect(),",
			"       b.repartition(f1), b.limit(1), b.limit(1, 2), b.aggregate(0, f2, f2), b.aggregateby(f1, 0, f2, f2),",
			"       b.count(), b.countby(), b.avg(), b.sort(), b.distinct()]",
			"execute('set', 'chain', repr(all(o is b for o in ops)) + ':' + str(len(ops)))",
		))
		require.Equal(t, "True:19", getKey(t, c, "chain"))
	})

	t.Run("a script without run replies OK", func(t *testing.T) {
		requirePyOK(t, c, "GB().map(lambda x: x)")
		requirePyOK(t, c, "GB().map(lambda x: x)", "UNBLOCKING")
	})

	t.Run("a builder can be run again by another script only", func(t *testing.T) {
		got := gbRunStrings(t, c, "b = GB('ShardsIDReader').map(lambda x: x + 'a')\nb.run()")
		require.Equal(t, []string{"1a"}, got)
	})
}

// ---- run() from inside a step ----

func TestBuilderRunInsideStep(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("blocking outer run", func(t *testing.T) {
		got := gbRunStrings(t, c, "GB('ShardsIDReader').foreach(lambda x: GB('ShardsIDReader').foreach(lambda y: execute('set', 'inner', '1')).run()).run()")
		require.Equal(t, []string{"1"}, got)
		eventually(t, 5*time.Second, func() bool {
			v, err := c.Get(bg(), "inner").Result()
			return err == nil && v == "1"
		}, "the nested execution never set key inner")
		eventually(t, 5*time.Second, func() bool { return len(gbDumpExecutions(t, c)) == 0 },
			"the nested execution is left in RG.DUMPEXECUTIONS")
		eventually(t, 5*time.Second, func() bool { return infoRG(t, c, "rg_nexecutions") == 0 },
			"the nested execution is still counted")
	})

	t.Run("unblocking outer run: only the outer one is kept", func(t *testing.T) {
		id, err := c.Do(bg(), "RG.PYEXECUTE", py(
			"def start(x):",
			"    GB('PythonReader').foreach(lambda y: execute('incr', 'inner2')).run(gen)",
			"def gen():",
			"    for i in range(3):",
			"        yield i",
			"GB('ShardsIDReader').foreach(start).run()",
		), "UNBLOCKING").Text()
		require.NoError(t, err)
		res, err := c.Do(bg(), "RG.GETRESULTSBLOCKING", id).Result()
		require.NoError(t, err)
		results, errs := gbSplitReply(t, res, id)
		require.Empty(t, errs)
		require.Equal(t, []any{"1"}, results)
		eventually(t, 5*time.Second, func() bool {
			v, err := c.Get(bg(), "inner2").Result()
			return err == nil && v == "3"
		}, "the nested execution did not run over its 3 records")
		eventually(t, 5*time.Second, func() bool {
			d := gbDumpExecutions(t, c)
			if len(d) != 1 {
				return false
			}
			e, _ := d[0].([]any)
			return len(e) == 6 && e[1] == id
		}, "RG.DUMPEXECUTIONS must list only the outer execution")
		require.NoError(t, c.Do(bg(), "RG.DROPEXECUTION", id).Err())
		require.Empty(t, gbDumpExecutions(t, c))
	})
	requireAlive(t, s)
}
