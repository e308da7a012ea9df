// Command module is redisgears.so: the Redis module entry point, its commands
// and the Redis side of the Python runtime.
package main

/*
#include "module.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gears/builder"
	"gears/config"
	"gears/interp"
	"gears/pyhome"
	"gears/reqs"
	gearsrt "gears/runtime"
	"gears/session"
)

func main() {}

// gears is the module's state, created at load.
type gears struct {
	cfg      *config.Config
	pool     *session.Pool
	threads  *session.Threads
	sessions *session.Registry
	engine   *builder.Engine
	regs     *builder.Registrations
	reqs     *reqs.Store // REQUIREMENTS' wheels and dictionary
	pipDir   string      // the bundled pip, for the interpreter that runs it
	cluster  bool

	scriptsRunning atomic.Int64
	scriptsTotal   atomic.Int64
}

var g *gears

func onLoad(c Ctx, argv []string) error {
	cfg, err := config.Load(argv)
	if err != nil {
		return err
	}
	base := cfg.PythonHomeDir()
	if base == "" {
		// Redis runs in its `dir`; never default to a shared temp dir.
		wd, err := os.Getwd()
		if err != nil {
			return fmt.Errorf("cannot find Redis's dir: %w", err)
		}
		base = filepath.Join(wd, "gears-python")
	}
	enableCrashOutput(base)

	start := time.Now()
	home, err := pyhome.Extract(base)
	if err != nil {
		return fmt.Errorf("extracting the bundled Python: %w", err)
	}
	extracted := time.Since(start)

	store, err := reqs.Open(filepath.Join(base, "requirements"))
	if err != nil {
		return fmt.Errorf("opening the requirements store: %w", err)
	}
	g = &gears{
		reqs:     store,
		pipDir:   filepath.Join(home, "pip"),
		cfg:      cfg,
		threads:  session.NewThreads(cfg.ExecutionThreads()+runtime.NumCPU(), func(r any) { logPanic("Python thread", r) }),
		sessions: session.NewRegistry(),
		regs:     builder.NewRegistrations(),
		cluster:  c.Flags()&clusterFlag != 0,
	}
	interp.PanicHandler = logPanic
	// Python under the Redis lock gives Redis back to the lock holder when
	// it calls out (busy.c).
	interp.LeavePython = func() int { return int(C.gears_host_pause()) }
	interp.ReturnToPython = func(paused int) { C.gears_host_resume(C.int(paused)) }
	interp.MemoryErrorText = func() string { return "MemoryError: " + memoryNote() }
	// The main thread always holds the Redis lock while it runs module code.
	C.gears_thread_state().lock_held = 1
	gearsrt.Register(host{})
	interp.RegisterNative("execute", C.gears_execute, interp.MethVarargs)
	interp.RegisterNative("atomic_enter", C.gears_atomic_enter, interp.MethNoArgs)
	interp.RegisterNative("atomic_exit", C.gears_atomic_exit, interp.MethNoArgs)
	interp.RegisterNative("scan_keys", C.gears_scan_keys, interp.MethVarargs)
	interp.RegisterNative("read_key", C.gears_read_key, interp.MethVarargs)
	interp.RegisterNative("session_key", C.gears_session_key, interp.MethNoArgs)
	interp.RegisterHost("run", hostRun)
	interp.RegisterHost("register_timer", hostRegisterTimer)
	interp.RegisterHost("register", hostRegister)
	interp.RegisterHost("call_next", hostCallNext)
	interp.RegisterHost("get_command", hostGetCommand)
	interp.RegisterHost("override_reply", hostOverrideReply)
	interp.RegisterHost("hold_session", hostHoldSession)
	interp.RegisterHost("enter_session", hostEnterSession)
	interp.RegisterHost("leave_session", hostLeaveSession)
	interp.RegisterHost("release_session", hostReleaseSession)
	registerAsyncHost()
	interp.SetMemoryLimit(cfg.MaxPythonMemory())
	if err := interp.Init(home); err != nil {
		return fmt.Errorf("starting Python from %s: %w", home, err)
	}
	if err := onThread(selfTest); err != nil {
		return fmt.Errorf("Python self-test failed: %w", err)
	}
	if cfg.IsolationMode() == config.IsolationShared {
		if err := startShared(); err != nil {
			return fmt.Errorf("creating the shared Python interpreter: %w", err)
		}
	} else {
		g.pool = session.NewPool(interp.OwnGIL, gearsrt.Setup, cfg.InterpreterPoolSize, g.threads.Go, func(err error) {
			logf("warning", "gears: cannot create a Python interpreter: "+err.Error())
		})
		g.pool.Refill()
	}
	g.engine = builder.NewEngine(builder.StandaloneShardID, cfg.ExecutionThreads(), cfg.MaxExecutions, cfg.MaxExecutionsPerRegistration,
		g.threads.Go, attachSession, interruptExecution)
	g.engine.LimitQueue(cfg.MaxQueuedExecutions)

	if err := registerCommands(c); err != nil {
		return err
	}
	startWatchdog()
	if C.gears_create_te_type(c.p) != C.REDISMODULE_OK {
		return errors.New("cannot create the data type of time events")
	}
	if C.gears_create_aux_type(c.p) != C.REDISMODULE_OK {
		return errors.New("cannot create the data type that keeps registrations in the RDB")
	}
	if C.gears_subscribe_server_events(c.p) != C.REDISMODULE_OK {
		return errors.New("cannot subscribe to loading and role events")
	}
	if C.gears_register_hook_filter(c.p) != C.REDISMODULE_OK {
		return errors.New("cannot register the command filter of command hooks")
	}
	if C.gears_subscribe_keyspace(c.p) != C.REDISMODULE_OK {
		return errors.New("cannot subscribe to keyspace events")
	}
	if C.gears_register_info(c.p) != C.REDISMODULE_OK {
		return errors.New("cannot register the INFO section")
	}
	logf("notice", fmt.Sprintf("gears: Python %s ready in %d ms (extraction %d ms) from %s, IsolationMode %s",
		interp.Version(), time.Since(start).Milliseconds(), extracted.Milliseconds(), home, cfg.IsolationMode()))
	return nil
}

const clusterFlag = 1 << 5 // REDISMODULE_CTX_FLAGS_CLUSTER

// selfTest checks the hand-written CPython ABI: an interpreter built from our
// PyInterpreterConfig must read back the same settings.
func selfTest() error {
	it, err := interp.New(interp.OwnGIL, func(t *interp.Thread) error {
		d := t.NewDict()
		defer t.Decref(d)
		return t.Exec(`
import _interpreters
c = _interpreters.get_config(_interpreters.get_current()[0])
want = dict(use_main_obmalloc=False, allow_fork=False, allow_exec=False, allow_threads=True,
            allow_daemon_threads=False, check_multi_interp_extensions=True, gil='own')
got = {k: getattr(c, k) for k in want}
if got != want:
    raise SystemError('interpreter config reads back as %r, expected %r' % (got, want))
`, d)
	})
	if err != nil {
		return err
	}
	it.Close()
	return nil
}

// onThread runs fn on a Python thread and waits for it.
func onThread(fn func() error) error {
	done := make(chan error, 1)
	g.threads.Go(func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("internal error: %v", r)
			}
		}()
		done <- fn()
	})
	return <-done
}

// enableCrashOutput sends Go's fatal error traces to a file next to the
// Python tree: redis-server's stderr is often /dev/null.
func enableCrashOutput(base string) {
	if err := os.MkdirAll(base, 0o700); err != nil {
		return
	}
	f, err := os.OpenFile(filepath.Join(base, "gears-crash.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	debug.SetCrashOutput(f, debug.CrashOptions{})
	f.Close()
}

// host is the Redis side of the Python runtime's host functions.
type host struct{}

func (host) Log(level, msg string)                 { logf(level, msg) }
func (host) ConfigExtra(key string) (string, bool) { return g.cfg.Extra(key) }
func (host) AttemptTraceback() bool                { return g.cfg.PythonAttemptTraceback() }
func (host) MemoryNote() string                    { return memoryNote() }

// memoryNote explains a MemoryError: what MaxPythonMemory allows.
func memoryNote() string {
	if limit := g.cfg.MaxPythonMemory(); limit > 0 {
		return fmt.Sprintf("Python's memory would exceed MaxPythonMemory (%d bytes, for all sessions together)", limit)
	}
	return "the server is out of memory"
}
func (host) Hashtag() string {
	if !g.cluster {
		return gearsrt.SlotTag(0)
	}
	return gearsrt.SlotTag(lowestOwnedSlot())
}

var (
	sessionKeys   atomic.Int64
	sessionsByKey sync.Map // gears_session.key -> *session.Session, until it ends
)

// giveSessionC allocates the C half of a session (read by execute() without
// Go), freed when the session ends.
func giveSessionC(sess *session.Session, user *C.RedisModuleString) {
	s := (*C.gears_session)(C.calloc(1, C.size_t(unsafe.Sizeof(C.gears_session{}))))
	s.user = user
	s.key = C.longlong(sessionKeys.Add(1))
	sess.Native = unsafe.Pointer(s)
	sessionsByKey.Store(int64(s.key), sess)
	sess.OnEnd(func() {
		sessionsByKey.Delete(int64(s.key))
		freeSessionC(s)
	})
}

// sessionOfC is the live session of a C half.
func sessionOfC(s *C.gears_session) *session.Session {
	if s == nil {
		return nil
	}
	v, _ := sessionsByKey.Load(int64(s.key))
	sess, _ := v.(*session.Session)
	return sess
}

func freeSessionC(s *C.gears_session) {
	if s.user != nil {
		C.w_FreeString(s.user)
	}
	C.free(unsafe.Pointer(s))
}
