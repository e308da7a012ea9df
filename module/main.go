// Command module is redisgears.so: the Redis module entry point, its commands
// and the Redis side of the Python runtime.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"gears/builder"
	"gears/config"
	"gears/interp"
	"gears/pyhome"
	"gears/redismod"
	"gears/reqs"
	gearsrt "gears/runtime"
	"gears/session"
)

func main() {}

// Redis calls gears through redismod, which recovers panics and hands each
// call to one of these.
func init() {
	redismod.Handle(redismod.Handlers{
		Load:           onLoad,
		Command:        serveCommand,
		Info:           writeInfo,
		KeyspaceEvent:  keyspaceEvent,
		AuxLoad:        auxLoad,
		ServerEvent:    serverEvent,
		ClusterMessage: onClusterMessage,
		Panic:          logPanic,
	})
}

func logPanic(where string, r any) {
	logf("warning", fmt.Sprintf("gears: internal error in %s: %v\n%s", where, r, debug.Stack()))
}

// gears is the module's state, created at load.
type gears struct {
	cfg      *config.Config
	pool     *session.Pool
	reaper   *session.Reaper // ends RG.PYEXECUTE's sessions when idle
	threads  *session.Threads
	sessions *session.Registry
	engine   *builder.Engine
	regs     *builder.Registrations
	reqs     *reqs.Store // REQUIREMENTS' wheels and dictionary
	pipDir   string      // the bundled pip, for the interpreter that runs it
	cluster  bool

	scriptsRunning atomic.Int64
	scriptsTotal   atomic.Int64
	lastScript     atomic.Int64 // when the last RG.PYEXECUTE came (unix ns)
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
		cluster:  c.Flags()&redismod.FlagCluster != 0,
	}
	interp.PanicHandler = logPanic
	interp.MemoryErrorText = func() string { return "MemoryError: " + memoryNote() }
	redismod.MainThreadHoldsLock()
	gearsrt.Register(host{})
	if !g.cluster {
		gearsrt.Standalone() // no interpreter loads the cluster's half of the runtime
	}
	// execute(), atomic() and the readers reach Redis through the binding's
	// table; Python that holds Redis busy gives it back when it calls out.
	interp.UseHost(redismod.PythonHost())
	interp.RegisterHost("run", hostRun)
	interp.RegisterHost("across_shards", func(*interp.Call) (any, error) { return gearsCluster.distributed(), nil })
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
		g.pool.Pressure = memoryPressure
		g.pool.Refill()
	}
	// Up to 4 ended sessions per pooled interpreter wait for an idle moment.
	g.reaper = session.NewReaper(g.threads.Go, idle, func() int { return 4 * max(cfg.InterpreterPoolSize(), 1) })
	shardID := builder.StandaloneShardID
	if g.cluster {
		shardID = redismod.MyClusterID() // execution ids name the shard that made them
	}
	g.engine = builder.NewEngine(shardID, cfg.ExecutionThreads(), cfg.MaxExecutions, cfg.MaxExecutionsPerRegistration,
		g.threads.Go, attachSession, interruptExecution)
	g.engine.LimitQueue(cfg.MaxQueuedExecutions)

	if err := registerCommands(c); err != nil {
		return err
	}
	startWatchdog()
	if err := redismod.Subscribe(c); err != nil {
		return err
	}
	if g.cluster {
		if err := startCluster(); err != nil {
			return fmt.Errorf("joining the cluster: %w", err)
		}
	}
	logf("notice", fmt.Sprintf("gears: Python %s ready in %d ms (extraction %d ms) from %s, IsolationMode %s",
		interp.Version(), time.Since(start).Milliseconds(), extracted.Milliseconds(), home, cfg.IsolationMode()))
	return nil
}

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
	if gearsCluster == nil {
		return gearsrt.SlotTag(0)
	}
	return gearsrt.SlotTag(gearsCluster.lowestSlot())
}

var (
	sessionKeys   atomic.Int64
	sessionsByKey sync.Map // session key -> *session.Session, until it ends
)

// giveNative makes Redis's half of a session (read by execute() without
// Go), running as user (everyone's rights when hasUser is false), freed when
// the session ends.
func giveNative(sess *session.Session, user string, hasUser bool) {
	n := redismod.NewSession(sessionKeys.Add(1), user, hasUser)
	sess.Native = n
	sessionsByKey.Store(n.Key(), sess)
	sess.OnEnd(func() {
		sessionsByKey.Delete(n.Key())
		n.Free()
	})
}

// idle reports whether no script runs and none came in the last moments:
// ending a session now competes with nothing. Short of memory, ended
// sessions do not wait: their interpreters hold it.
func idle() bool {
	return memoryPressure() ||
		g.scriptsRunning.Load() == 0 && time.Since(time.Unix(0, g.lastScript.Load())) > 2*time.Millisecond
}

// memoryPressure reports whether Python uses over half of MaxPythonMemory.
func memoryPressure() bool {
	limit := g.cfg.MaxPythonMemory()
	_, _, cur := interp.Memory()
	return limit > 0 && cur > limit/2
}

// native is Redis's half of sess.
func native(sess *session.Session) redismod.Session {
	n, _ := sess.Native.(redismod.Session)
	return n
}

// sessionOfNative is the live session of a half (nil when none).
func sessionOfNative(n redismod.Session) *session.Session {
	if n.IsZero() {
		return nil
	}
	v, _ := sessionsByKey.Load(n.Key())
	sess, _ := v.(*session.Session)
	return sess
}
