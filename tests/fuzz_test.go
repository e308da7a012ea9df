package tests

// Random argument vectors over every command gears registers: whatever the
// arguments, the server answers (a reply or an error), never crashes, hangs
// or logs a fatal Python error. The seed is printed; GEARS_FUZZ_SEED replays
// a run, GEARS_FUZZ_VECTORS changes its length and GEARS_FUZZ_ADDR sends it to
// a server started by hand (under a debugger, say).

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// fuzzWords are the arguments vectors are made of: the commands' own
// keywords, ids of things that exist (or nearly), numbers at the edges,
// empty and binary strings, and scripts that make sessions, executions and
// registrations for later vectors to hit.
var fuzzWords = []string{
	"UNBLOCKING", "ID", "UPGRADE", "REPLACE_WITH", "REQUIREMENTS", "FORCE_REINSTALL_REQUIREMENTS", "DESCRIPTION",
	"SHARD", "CLUSTER", "STATS", "RESET", "VERBOSE", "DEAD", "SESSIONS", "tottime", "cumtime",
	"0", "1", "-1", "2", "100", "9223372036854775807", "-9223372036854775808", "99999999999999999999", "1e3", "0x10",
	"", " ", "\x00", "\xff\xfe", "\x00\x01binary\xff", strings.Repeat("x", 300),
	"s1", "s2", "fz", "t1", "t2", "fz:1", "fzs:1", "*", "fz:*",
	shardZero + "-1", shardZero + "-2", shardZero + "-3", shardZero + "-9223372036854775807", shardZero + "--1", "-",
	"MaxExecutions", "MaxExecutionsPerRegistration", "ProfileExecutions", "ExecutionThreads", "ExecutionMaxIdleTime",
	"InterpreterPoolSize", "PythonAttemptTraceback", "IsolationMode", "PythonHomeDir", "RequirementsWheelDir",
	"SET", "GET", "INCR", "PING", "ACL", "CONFIG", "DEBUG",
	"GB().run()",
	"GB().map(lambda r: r['key']).run('fz:*')",
	"GB('ShardsIDReader').count().run()",
	"GB().register('fz:*')",
	"GB().register('fz:*', mode='sync')",
	"GB().foreach(lambda r: execute('INCR', 'fz:n')).register('fz:*', mode='async_local')",
	"GB('CommandReader').map(lambda a: a).register(trigger='t1')",
	"GB('CommandReader').map(lambda a: len(a)).register(trigger='t2', mode='sync')",
	"GB('CommandReader').register(hook='get', mode='sync')",
	"GB('StreamReader').foreach(lambda r: execute('INCR', 'fz:s')).register('fzs:*')",
	"GB('PythonReader').run(lambda: range(3))",
	"registerTE(1, lambda: None)",
	"execute('SET', 'fz:1', 'v')",
	"import time\ntime.sleep(0.02)",
	"1/0", "def (", "raise SystemExit(1)", "import os\nos._exit(1)",
	"GB().flatmap(lambda r: [r]*3).accumulate(lambda a, r: (a or 0) + 1).run()",
}

// fuzzExclude drops the words that match GEARS_FUZZ_EXCLUDE (a regexp), to
// bisect a failure.
func fuzzExclude(t *testing.T) {
	v := os.Getenv("GEARS_FUZZ_EXCLUDE")
	if v == "" {
		return
	}
	re := regexp.MustCompile(v)
	kept := fuzzWords[:0]
	for _, w := range fuzzWords {
		if !re.MatchString(w) {
			kept = append(kept, w)
		}
	}
	fuzzWords = kept
	t.Logf("words matching %q left out", v)
}

func fuzzWord(rng *rand.Rand) string {
	if rng.IntN(10) == 0 { // now and then, bytes nobody chose
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	return fuzzWords[rng.IntN(len(fuzzWords))]
}

func TestRandomArgumentVectors(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("GEARS_FUZZ_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
		seed = n
	}
	vectors := 10000
	if v := os.Getenv("GEARS_FUZZ_VECTORS"); v != "" {
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		vectors = n
	}
	fuzzExclude(t)
	t.Logf("seed %d (GEARS_FUZZ_SEED=%d replays it), %d vectors", seed, seed, vectors)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	var s *server
	if addr := os.Getenv("GEARS_FUZZ_ADDR"); addr != "" { // a server started by hand, e.g. under gdb
		s = &server{Addr: addr}
		s.Client = s.NewClient()
	} else {
		s = startServer(t)
	}
	c := s.NewClient(func(o *redis.Options) { o.ReadTimeout = 20 * time.Second })
	var names []string
	for _, v := range s.Client.Do(bg(), "COMMAND", "LIST", "FILTERBY", "MODULE", "rg").Val().([]any) {
		names = append(names, v.(string))
	}
	sort.Strings(names) // the server lists them in no fixed order: the seed must give the same vectors
	require.GreaterOrEqual(t, len(names), 20, "gears' commands: %v", names)
	t.Logf("commands: %s", strings.Join(names, " "))

	recent := make([]string, 0, 20) // the last vectors, shown when the server dies
	start := time.Now()
	for i := range vectors {
		argv := []any{names[rng.IntN(len(names))]}
		for range rng.IntN(9) {
			argv = append(argv, fuzzWord(rng))
		}
		if rng.IntN(50) == 0 { // data for registrations to react to
			argv = []any{[]string{"SET", "XADD", "DEL"}[rng.IntN(3)], "fz:1", "*", "f", "v"}
			if argv[0] != "XADD" {
				argv = argv[:3]
			} else {
				argv[1] = "fzs:1"
			}
		}
		shown := strconv.Quote(joinArgs(argv))
		if len(recent) == cap(recent) {
			recent = recent[1:]
		}
		recent = append(recent, shown)
		ctx, cancel := context.WithTimeout(bg(), 20*time.Second)
		err := c.Do(ctx, argv...).Err()
		cancel()
		var rerr redis.Error
		var nerr net.Error
		switch {
		case err == nil || errors.Is(err, redis.Nil) || errors.As(err, &rerr):
		case errors.As(err, &nerr) && nerr.Timeout():
			t.Fatalf("vector %d got no reply in 20 s (seed %d): %s", i, seed, shown)
		default:
			t.Fatalf("vector %d: the connection failed (seed %d): %v\nlast vectors:\n%s", i, seed, err, strings.Join(recent, "\n"))
		}
		if i%500 == 499 {
			if perr := s.Client.Ping(bg()).Err(); perr != nil {
				t.Fatalf("after vector %d the server does not answer PING (seed %d): %v\nlast vectors:\n%s", i, seed, perr, strings.Join(recent, "\n"))
			}
		}
	}
	t.Logf("%d vectors in %v", vectors, time.Since(start).Round(time.Millisecond))
	requireAlive(t, s)
}

func joinArgs(argv []any) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		parts[i] = a.(string)
	}
	return strings.Join(parts, " ")
}
