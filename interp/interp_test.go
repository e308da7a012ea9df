package interp

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gears/pyhome"
)

// TestMain starts the bundled Python once for the package, as the module
// does at load.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gears-interp-test")
	if err != nil {
		panic(err)
	}
	home, err := pyhome.Extract(filepath.Join(dir, "py"))
	if err != nil {
		panic("extracting Python (run `go run ./cmd/build-so -tree-only` first): " + err.Error())
	}
	RegisterHost("echo", func(c *Call) (any, error) {
		if len(c.Args) > 0 && c.Args[0] == "fail" {
			return nil, errors.New("echo was told to fail")
		}
		return c.Args, nil
	})
	runtime.LockOSThread()
	if err := Init(home); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// onThread runs fn on a fresh locked OS thread, as the module's Python
// threads do.
func onThread(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		fn()
	}()
	<-done
}

func newInterp(t *testing.T) *Interp {
	var it *Interp
	onThread(t, func() {
		var err error
		it, err = New(OwnGIL, func(th *Thread) error {
			d, err := th.ModuleDict("_gears")
			if err != nil {
				return err
			}
			// A formatter as the runtime installs one.
			return th.Exec("def format_error(e):\n    return 'formatted: %s' % e\n", d)
		})
		require.NoError(t, err)
	})
	t.Cleanup(func() { onThread(t, it.Close) })
	return it
}

func TestInterpretersAreIsolated(t *testing.T) {
	a, b := newInterp(t), newInterp(t)
	assert.NotEqual(t, a.ID, b.ID)
	onThread(t, func() {
		th := mustAttach(t, a)
		defer th.Detach()
		g, err := th.MainGlobals()
		require.NoError(t, err)
		require.NoError(t, th.Exec("import sys\nsys.marker = 1\nx = 2\n", g))
	})
	onThread(t, func() {
		th := mustAttach(t, b)
		defer th.Detach()
		g, err := th.MainGlobals()
		require.NoError(t, err)
		require.NoError(t, th.Exec("import sys\nassert not hasattr(sys, 'marker')\nassert 'x' not in globals()\n", g))
	})
}

func TestExecErrorsAreFormatted(t *testing.T) {
	it := newInterp(t)
	onThread(t, func() {
		th := mustAttach(t, it)
		defer th.Detach()
		g, _ := th.MainGlobals()
		err := th.Exec("1/0", g)
		require.Error(t, err)
		assert.Equal(t, "formatted: division by zero", err.Error())
		err = th.Exec("def (", g)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "formatted:")
	})
}

func TestHostCallsAndCall(t *testing.T) {
	it := newInterp(t)
	onThread(t, func() {
		th := mustAttach(t, it)
		defer th.Detach()
		g, _ := th.MainGlobals()
		require.NoError(t, th.Exec(`
import _gears
def probe():
    out = _gears.echo(1, 'two', b'3', 4.5, True, None, [1, ['x']], (7,), {'k': 'v'})
    try:
        _gears.echo('fail')
    except _gears.error if hasattr(_gears, 'error') else RuntimeError as e:
        out.append(str(e))
    return out
`, g))
		d, err := th.ModuleDict("__main__")
		require.NoError(t, err)
		_ = d
		v, err := th.Call("__main__", "probe")
		require.NoError(t, err)
		assert.Equal(t, []any{int64(1), "two", []byte("3"), 4.5, true, nil, []any{int64(1), []any{"x"}},
			[]any{int64(7)}, map[string]any{"k": "v"}, "echo was told to fail"}, v)
		_, err = th.Call("__main__", "nosuch")
		assert.Error(t, err)
	})
}

func TestPythonThreadsCanCallHostFunctions(t *testing.T) {
	it := newInterp(t)
	onThread(t, func() {
		th := mustAttach(t, it)
		defer th.Detach()
		g, _ := th.MainGlobals()
		require.NoError(t, th.Exec(`
import threading, _gears
res = []
ts = [threading.Thread(target=lambda: res.append(_gears.echo('t'))) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
assert res == [['t']] * 4, res
`, g))
	})
}

func TestInterruptStopsALoop(t *testing.T) {
	it := newInterp(t)
	var wg sync.WaitGroup
	var loopErr error
	started := make(chan uint64)
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		th := mustAttach(t, it)
		defer th.Detach()
		d, _ := th.ModuleDict("_gears")
		th.Exec("class forcestopped(BaseException): pass\n", d)
		g, _ := th.MainGlobals()
		started <- ThreadID()
		loopErr = th.Exec("while True:\n    pass\n", g)
	}()
	id := <-started
	time.Sleep(20 * time.Millisecond)
	begin := time.Now()
	onThread(t, func() { it.Interrupt(id, func() bool { return true }) })
	wg.Wait()
	require.Error(t, loopErr)
	t.Logf("loop stopped %v after the interrupt", time.Since(begin))
}

func TestInterpretersAreFreed(t *testing.T) {
	before := Live()
	var its []*Interp
	onThread(t, func() {
		for range 5 {
			it, err := New(OwnGIL, nil)
			require.NoError(t, err)
			its = append(its, it)
		}
	})
	assert.Equal(t, before+5, Live())
	_, _, cur := Memory()
	assert.Positive(t, cur)
	onThread(t, func() {
		for _, it := range its {
			it.Close()
		}
	})
	assert.Equal(t, before, Live())
}

// Single-phase C extensions load in a SharedGIL interpreter only.
func TestSharedGILLoadsSinglePhaseExtensions(t *testing.T) {
	own := newInterp(t)
	onThread(t, func() {
		th := mustAttach(t, own)
		defer th.Detach()
		d := th.NewDict()
		defer th.Decref(d)
		err := th.Exec("import _testsinglephase", d)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "does not support loading in subinterpreters")
	})
	var shared *Interp
	onThread(t, func() {
		var err error
		shared, err = New(SharedGIL, nil)
		require.NoError(t, err)
	})
	t.Cleanup(func() { onThread(t, shared.Close) })
	onThread(t, func() {
		th := mustAttach(t, shared)
		defer th.Detach()
		d := th.NewDict()
		defer th.Decref(d)
		require.NoError(t, th.Exec("import _testsinglephase\nthree = _testsinglephase.sum(1, 2)", d))
		c, err := th.CopyDict(d)
		require.NoError(t, err)
		defer th.Decref(c)
		require.NoError(t, th.Exec("assert three == 3\nthree = 0", c))
		require.NoError(t, th.Exec("assert three == 3, 'a copy is a new dict'", d))
	})
}

func mustAttach(t *testing.T, it *Interp) *Thread {
	t.Helper()
	th, err := it.Attach()
	require.NoError(t, err)
	return th
}

// Close waits for the threads attached now and refuses new ones; threads
// racing it either attach to a live interpreter or get ErrClosed.
func TestCloseRacesAttach(t *testing.T) {
	for round := range 20 {
		var it *Interp
		onThread(t, func() {
			var err error
			it, err = New(OwnGIL, nil)
			require.NoError(t, err)
		})
		var wg sync.WaitGroup
		var attached, refused atomic.Int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				for range 50 {
					th, err := it.Attach()
					if err != nil {
						require.ErrorIs(t, err, ErrClosed)
						refused.Add(1)
						return
					}
					d := th.NewDict()
					require.NoError(t, th.Exec("x = sum(range(100))", d))
					th.Decref(d)
					th.Detach()
					attached.Add(1)
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		onThread(t, it.Close)
		assert.True(t, it.Closing())
		wg.Wait()
		onThread(t, func() {
			_, err := it.Attach()
			require.ErrorIs(t, err, ErrClosed)
		})
	}
}
