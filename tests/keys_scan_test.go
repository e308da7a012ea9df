package tests

// The KeysReader reads its SCAN one chunk ahead, on a helper thread, while
// Python works on the chunk before (redismod/scanner.c). These tests hold
// that read-ahead to what a plain scan gives: every key once with its value,
// only the keys the user may read, and no deadlock with the Redis lock
// (atomic(), execute(), a run() under atomic()), however the scan ends.

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const scanKeys = 3000 // three chunks of the reader's 1,000

func loadScanKeys(t *testing.T, s *server) {
	t.Helper()
	require.NoError(t, s.Client.Eval(bg(), fmt.Sprintf(
		"for i=0,%d do redis.call('set', 'n:'..i, tostring(i)) redis.call('set', 'hid:'..i, 'x') end return 1", scanKeys-1), nil).Err())
}

// The sum of 0..scanKeys-1, as the scripts below print it.
var scanSum = fmt.Sprint(scanKeys * (scanKeys - 1) / 2)

func TestKeysReaderReadsAhead(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	loadScanKeys(t, s)

	t.Run("every key once, with its value", func(t *testing.T) {
		require.Equal(t, []string{fmt.Sprintf("%d:%s", scanKeys, scanSum)}, gbRunStrings(t, c,
			"GB().map(lambda r: (r['key'], int(r['value']))).filter(lambda r: r[0] == 'n:%d' % r[1])"+
				".accumulate(lambda a, r: (a or set()) | {r}).map(lambda a: '%d:%d' % (len({k for k, _ in a}), sum(v for _, v in a))).run('n:*')"))
	})
	t.Run("atomic() and execute() in a step", func(t *testing.T) {
		require.Equal(t, []string{scanSum}, gbRunStrings(t, c, py(
			"def f(r):",
			"    with atomic():",
			"        return int(execute('GET', r['key'])) + int(execute('EXISTS', r['key'])) - 1",
			"GB().map(f).aggregate(0, lambda a, x: a + x, lambda a, x: a + x).run('n:*')")))
	})
	t.Run("a run() inside atomic() reads with the lock held", func(t *testing.T) {
		require.Equal(t, []string{fmt.Sprint(scanKeys)}, gbRunStrings(t, c, "with atomic():\n    GB().count().run('n:*')"))
	})
	t.Run("many scans at once, while keys are written", func(t *testing.T) {
		stop := make(chan struct{})
		var writer sync.WaitGroup
		writer.Add(1)
		go func() {
			defer writer.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				c.Set(bg(), fmt.Sprintf("w:%d", i), "1", 0)
			}
		}()
		var wg sync.WaitGroup
		got := make([][]string, 6)
		for i := range got {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i] = gbRunStrings(t, c, "GB().map(lambda r: int(r['value'])).aggregate(0, lambda a, x: a + x, lambda a, x: a + x).run('n:*')")
			}()
		}
		wg.Wait()
		close(stop)
		writer.Wait()
		for _, g := range got {
			require.Equal(t, []string{scanSum}, g)
		}
	})
	t.Run("an aborted scan leaves the server well", func(t *testing.T) {
		id := exUnblocking(t, c, "import time\nGB().foreach(lambda r: time.sleep(0.002)).run('n:*')")
		exWaitStatus(t, c, id, "running", 5*time.Second)
		time.Sleep(300 * time.Millisecond) // into its first chunk or beyond
		exRequireOK(t, c, "RG.ABORTEXECUTION", id)
		require.Equal(t, []string{"Execution was aborted"}, exGetExecution(t, c, id).Errors)
		require.Equal(t, []string{fmt.Sprint(scanKeys)}, gbRunStrings(t, c, "GB().count().run('n:*')"))
	})
	t.Run("a scan its script never finishes", func(t *testing.T) {
		// The script takes two chunks and drops the scanner with the third
		// requested: closing it must not wait for the Redis lock.
		require.Equal(t, []string{"True"}, gbRunStrings(t, c, py(
			"import _gears",
			"s = _gears.key_scanner('n:*', 1000, True)",
			"n = len(_gears.scan_next(s)) + len(_gears.scan_next(s))",
			"del s",
			"GB('ShardsIDReader').map(lambda x: n > 0).run()")))
	})
	t.Run("a chunk requested before atomic() is read inside it", func(t *testing.T) {
		// The helper cannot take the lock this thread holds: the reader takes
		// its request back (or finds the chunk read) instead of waiting.
		require.Equal(t, []string{fmt.Sprint(scanKeys)}, gbRunStrings(t, c, py(
			"import _gears",
			"s = _gears.key_scanner('n:*', 1000, True)",
			"n = len(_gears.scan_next(s))",
			"with atomic():",
			"    while (b := _gears.scan_next(s)) is not None:",
			"        n += len(b)",
			"GB('ShardsIDReader').map(lambda x: n).run()")))
	})
	t.Run("Python threads sharing a scanner take turns", func(t *testing.T) {
		// Each key once across the threads: a read while another is under
		// way is refused, never served twice.
		require.Equal(t, []string{fmt.Sprintf("%d %d", scanKeys, scanKeys)}, gbRunStrings(t, c, py(
			"import _gears, threading",
			"s = _gears.key_scanner('n:*', 10, True)",
			"seen, refused = [], [0]",
			"def read():",
			"    while True:",
			"        try:",
			"            b = _gears.scan_next(s)",
			"        except Exception as e:",
			"            assert 'another thread' in str(e), str(e)",
			"            refused[0] += 1",
			"            continue",
			"        if b is None:",
			"            return",
			"        seen.extend(r['key'] for r in b)",
			"ts = [threading.Thread(target=read) for _ in range(4)]",
			"for th in ts: th.start()",
			"for th in ts: th.join()",
			"GB('ShardsIDReader').map(lambda x: '%d %d' % (len(seen), len(set(seen)))).run()")))
	})
	t.Run("helper threads are bounded and leave scans no one reads", func(t *testing.T) {
		// 40 scans left open after their first chunk: at most 16 helpers
		// read ahead, and each leaves once its scan has not been read for a
		// while. (Other threads of the server may come and go: 4 of slack.)
		res := gbRunStrings(t, c, py(
			"import _gears, time",
			"def threads():",
			"    with open('/proc/self/status') as f:",
			"        return int(next(l for l in f if l.startswith('Threads:')).split()[1])",
			"before = threads()",
			"open_scans = [_gears.key_scanner('n:*', 10, True) for _ in range(40)]",
			"for s in open_scans: _gears.scan_next(s)",
			"time.sleep(0.05)",
			"reading = threads() - before",
			"time.sleep(0.6)",
			"left = threads() - before",
			"n = sum(len(_gears.scan_next(s)) for s in open_scans[:3])",
			"GB('ShardsIDReader').map(lambda x: '%s %s %s' % (reading <= 20, left <= 4, n > 0)).run()"))
		require.Equal(t, []string{"True True True"}, res)
	})
	t.Run("keys a scan expires fire sync registrations from its helper", func(t *testing.T) {
		// SCAN deletes the expired keys it meets, on the thread that runs
		// it: chunks read ahead run the registration's Python on the helper.
		require.NoError(t, c.ConfigSet(bg(), "hz", "1").Err()) // little active expiry
		requirePyOK(t, c, "GB().foreach(lambda r: execute('INCR', 'expired_seen')).register(prefix='exp:*', eventTypes=['expired'], mode='sync', readValue=False)")
		require.NoError(t, c.Eval(bg(), "for i=0,2999 do redis.call('set', 'exp:'..i, 'x', 'PX', 1) end return 1", nil).Err())
		time.Sleep(50 * time.Millisecond)
		require.Equal(t, []string{fmt.Sprint(scanKeys)}, gbRunStrings(t, c, "GB().filter(lambda r: r['key'].startswith('n:')).count().run('*')"))
		eventually(t, 5*time.Second, func() bool { return c.Get(bg(), "expired_seen").Val() == "3000" }, "every expired key seen once")
	})
	requireAlive(t, s)
}

// A chunk read ahead holds only the keys its user may read, and a scanner
// reads as the session that opened it, in no other session's hands.
func TestKeysReaderReadAheadKeepsACL(t *testing.T) {
	for _, mode := range isolationModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, mode.opts...)
			loadScanKeys(t, s)
			u := aclUser(t, s, "reader", "~n:*", "+@all")
			require.Equal(t, []string{fmt.Sprint(scanKeys)}, gbRunStrings(t, u, "GB().count().run()"))
			require.Equal(t, []string{"True"}, gbRunStrings(t, u,
				"GB().map(lambda r: r['key'].startswith('n:') and r['value'].isdigit()).distinct().run()"))
			require.Equal(t, []string{fmt.Sprint(2 * scanKeys)}, gbRunStrings(t, s.Client, "GB().count().run()"))

			if mode.name != "shared" {
				return
			}
			// One interpreter: builtins are everyone's, so a scanner could be
			// handed to another user's session.
			requirePyOK(t, s.Client, "import _gears, builtins\nbuiltins.stash = _gears.key_scanner('hid:*', 10, True)")
			res, err := u.Do(bg(), "RG.PYEXECUTE", "import _gears, builtins\n_gears.scan_next(builtins.stash)").Result()
			require.Error(t, err, "reply %v", res)
			require.True(t, strings.Contains(err.Error(), "belongs to another session"), err.Error())
		})
	}
}
