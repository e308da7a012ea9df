// Package tests runs redisgears.so inside a real redis-server and talks to it
// with a real client. Build the module first (make build); GEARS_MODULE
// overrides where the module is looked for.
package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

var (
	modulePathOnce sync.Once
	modulePath     string
	modulePathErr  error

	pythonHomeOnce sync.Once
	pythonHome     string
	pythonHomeErr  error
)

// quietLogger drops go-redis's own log lines (dial failures while a server
// starts or after it stopped); tests report what matters themselves.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	code := m.Run()
	if pythonHome != "" {
		os.RemoveAll(pythonHome)
	}
	os.Exit(code)
}

// gearsModule is the absolute path of redisgears.so.
func gearsModule(t testing.TB) string {
	t.Helper()
	modulePathOnce.Do(func() {
		p := os.Getenv("GEARS_MODULE")
		if p == "" {
			p = filepath.Join("..", "redisgears.so")
		}
		if modulePath, modulePathErr = filepath.Abs(p); modulePathErr != nil {
			return
		}
		if _, err := os.Stat(modulePath); err != nil {
			modulePathErr = fmt.Errorf("module %s not found (run make build first): %w", modulePath, err)
		}
	})
	if modulePathErr != nil {
		t.Fatal(modulePathErr)
	}
	return modulePath
}

// sharedPythonHome is one extraction dir for every server of this test
// binary, so the ~30 MB Python tree is written once.
func sharedPythonHome(t testing.TB) string {
	t.Helper()
	pythonHomeOnce.Do(func() {
		pythonHome, pythonHomeErr = os.MkdirTemp(os.TempDir(), "gears-tests-python-")
		if pythonHomeErr == nil {
			pythonHomeErr = os.Chmod(pythonHome, 0o700)
		}
	})
	if pythonHomeErr != nil {
		t.Fatal(pythonHomeErr)
	}
	return pythonHome
}

type serverConfig struct {
	serverArgs []string
	moduleArgs []string
	ownHome    bool   // let the module extract Python under its own dir
	dir        string // data dir; a new temp dir when empty
	port       int    // a free one when 0
}

type serverOpt func(*serverConfig)

// withServerArgs adds redis-server command line arguments ("--maxmemory", "1mb").
func withServerArgs(args ...string) serverOpt {
	return func(c *serverConfig) { c.serverArgs = append(c.serverArgs, args...) }
}

// withModuleArgs adds module arguments (key value pairs).
func withModuleArgs(args ...string) serverOpt {
	return func(c *serverConfig) { c.moduleArgs = append(c.moduleArgs, args...) }
}

// withPort runs the server on a given port (a restart where others know it).
func withPort(port int) serverOpt {
	return func(c *serverConfig) { c.port = port }
}

// withDir runs the server on an existing data dir (a restart).
func withDir(dir string) serverOpt {
	return func(c *serverConfig) { c.dir = dir }
}

// withOwnPythonHome does not pass the shared PythonHomeDir.
func withOwnPythonHome() serverOpt {
	return func(c *serverConfig) { c.ownHome = true }
}

type server struct {
	Client *redis.Client
	Port   int
	Dir    string
	Addr   string

	cmd     *exec.Cmd
	exited  chan struct{}
	stderr  *bytes.Buffer
	mu      sync.Mutex // guards stderr
	stopped bool       // stopped on purpose by the test (Shutdown)
}

// Shutdown stops the server the way an operator does (SHUTDOWN, saving if
// it is configured to), for tests that restart it.
func (s *server) Shutdown(t testing.TB) {
	t.Helper()
	s.stopped = true
	s.Client.Shutdown(bg()) // the connection drops: no reply to check
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Errorf("redis-server did not shut down")
		s.kill()
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// startServer starts redis-server with the module loaded and returns once it
// answers PING. The server is stopped when the test ends.
func startServer(t testing.TB, opts ...serverOpt) *server {
	t.Helper()
	so := gearsModule(t)
	var cfg serverConfig
	for _, o := range opts {
		o(&cfg)
	}
	moduleArgs := cfg.moduleArgs
	if !cfg.ownHome {
		moduleArgs = append([]string{"PythonHomeDir", sharedPythonHome(t)}, moduleArgs...)
	}
	dir := cfg.dir
	if dir == "" {
		dir = t.TempDir()
	}

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := launch(t, dir, so, cfg.port, cfg.serverArgs, moduleArgs)
		if err == nil {
			return s
		}
		lastErr = err
		// A port taken between freePort and redis-server's bind is retried.
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("starting redis-server: %v\n%s", lastErr, tailFile(filepath.Join(dir, "redis.log"), 50))
	return nil
}

func launch(t testing.TB, dir, so string, port int, serverArgs, moduleArgs []string) (*server, error) {
	if port == 0 {
		port = freePort(t)
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
		"--enable-debug-command", "yes",
	}
	args = append(args, serverArgs...)
	args = append(args, "--loadmodule", so)
	args = append(args, moduleArgs...)

	s := &server{Port: port, Dir: dir, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), exited: make(chan struct{}), stderr: &bytes.Buffer{}}
	s.cmd = exec.Command("redis-server", args...)
	s.cmd.Dir = dir
	s.cmd.Stdout = lockedWriter{&s.mu, s.stderr}
	s.cmd.Stderr = lockedWriter{&s.mu, s.stderr}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.cmd.Wait()
		close(s.exited)
	}()

	s.Client = s.NewClient()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		err := s.Client.Ping(ctx).Err()
		cancel()
		if err == nil {
			break
		}
		select {
		case <-s.exited:
			s.Client.Close()
			return nil, fmt.Errorf("redis-server exited during startup (%v): %s %s", s.cmd.ProcessState, s.stderrText(), tailFile(filepath.Join(dir, "redis.log"), 20))
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			s.Client.Close()
			return nil, fmt.Errorf("no PING reply within 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	t.Cleanup(func() { s.stop(t) })
	return s, nil
}

// NewClient opens another client (its own connection pool) to the server; it
// is closed when the test ends.
func (s *server) NewClient(opts ...func(*redis.Options)) *redis.Client {
	o := &redis.Options{
		Addr:                  s.Addr,
		Protocol:              2,
		MaxRetries:            -1,
		DisableIdentity:       true,
		ContextTimeoutEnabled: true,
		DialTimeout:           2 * time.Second,
		ReadTimeout:           10 * time.Second,
		WriteTimeout:          5 * time.Second,
		PoolSize:              4,
	}
	for _, f := range opts {
		f(o)
	}
	return redis.NewClient(o)
}

func (s *server) stderrText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

func (s *server) kill() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

func (s *server) stop(t testing.TB) {
	defer s.Client.Close()
	if s.stopped {
		return
	}
	// Nobody asked it to stop yet: if it is gone or deaf now, it crashed or
	// hangs, whatever the test itself checked.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	pingErr := s.Client.Ping(ctx).Err()
	cancel()
	switch {
	case pingErr != nil:
		select {
		case <-s.exited:
			t.Errorf("redis-server exited while the test ran (%v)", s.cmd.ProcessState)
		case <-time.After(3 * time.Second):
			t.Errorf("redis-server no longer answers PING at the end of the test: %v", pingErr)
			s.kill()
		}
	default:
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s.Client.ShutdownNoSave(ctx) // the connection drops: no reply to check
		cancel()
		select {
		case <-s.exited:
		case <-time.After(2 * time.Second):
			s.kill()
		}
	}
	// Whatever a test checked, the server must not have crashed, hit a
	// fatal Python error or caught a Go panic.
	for _, bad := range []string{"Fatal Python error", "crashed by signal", "gears: internal error"} {
		if strings.Contains(s.Log(), bad) {
			t.Errorf("redis.log of %s has %q", s.Addr, bad)
		}
	}
	if t.Failed() {
		if keep := os.Getenv("GEARS_KEEP_LOGS"); keep != "" { // a directory for the whole logs of failed tests
			if b, err := os.ReadFile(filepath.Join(s.Dir, "redis.log")); err == nil {
				os.WriteFile(filepath.Join(keep, strconv.Itoa(s.Port)+".log"), b, 0o644)
			}
		}
		t.Logf("--- redis.log (tail) of %s:\n%s", s.Addr, tailFile(filepath.Join(s.Dir, "redis.log"), 150))
		if e := s.stderrText(); e != "" {
			t.Logf("--- redis-server stdout/stderr:\n%s", e)
		}
		if pythonHome != "" {
			if c := tailFile(filepath.Join(pythonHome, "gears-crash.log"), 60); strings.TrimSpace(c) != "" {
				t.Logf("--- gears-crash.log (shared by all servers):\n%s", c)
			}
		}
	}
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Log is the server's log file so far.
func (s *server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	return string(b)
}

// WaitLog waits until the log contains substr.
func (s *server) WaitLog(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(s.Log(), substr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis.log has no %q after %v; tail:\n%s", substr, timeout, tailFile(filepath.Join(s.Dir, "redis.log"), 30))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ---- command helpers ----

func bg() context.Context { return context.Background() }

// pyexec runs RG.PYEXECUTE script [args...].
func pyexec(c *redis.Client, script string, args ...any) (any, error) {
	return c.Do(bg(), append([]any{"RG.PYEXECUTE", script}, args...)...).Result()
}

// requirePyOK runs a script that must reply OK.
func requirePyOK(t testing.TB, c *redis.Client, script string, args ...any) {
	t.Helper()
	res, err := pyexec(c, script, args...)
	require.NoError(t, err, "script:\n%s", script)
	require.Equal(t, "OK", res, "script:\n%s", script)
}

// requirePyErr runs a script that must fail and returns the error text.
func requirePyErr(t testing.TB, c *redis.Client, script string, args ...any) string {
	t.Helper()
	res, err := pyexec(c, script, args...)
	require.Error(t, err, "script:\n%s\nreplied %#v", script, res)
	var rerr redis.Error
	require.True(t, errors.As(err, &rerr), "not an error reply but %T: %v", err, err)
	return err.Error()
}

// requireErrText checks an error reply's text; Redis's generic "ERR " code
// in front of it is tolerated.
func requireErrText(t testing.TB, want string, err error) {
	t.Helper()
	require.Error(t, err)
	got := err.Error()
	if got != want && got != "ERR "+want {
		t.Fatalf("error reply\n  got: %q\n want: %q", got, want)
	}
}

// requireAlive checks the server still serves commands.
func requireAlive(t testing.TB, s *server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bg(), 5*time.Second)
	defer cancel()
	res, err := s.Client.Ping(ctx).Result()
	require.NoError(t, err, "server no longer answers PING")
	require.Equal(t, "PONG", res)
}

// getKey reads a string key, failing the test on any error (nil key too).
func getKey(t testing.TB, c *redis.Client, key string) string {
	t.Helper()
	v, err := c.Get(bg(), key).Result()
	require.NoError(t, err, "GET %s", key)
	return v
}

// infoFields parses INFO <section> into field -> value.
func infoFields(t testing.TB, c *redis.Client, section string) map[string]string {
	t.Helper()
	txt, err := c.Info(bg(), section).Result()
	require.NoError(t, err)
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// infoRG reads one INFO rg field as an integer.
func infoRG(t testing.TB, c *redis.Client, field string) int64 {
	t.Helper()
	fields := infoFields(t, c, "rg")
	v, ok := fields[field]
	require.True(t, ok, "INFO rg has no field %s: %v", field, fields)
	n, err := strconv.ParseInt(v, 10, 64)
	require.NoError(t, err, "INFO rg %s = %q", field, v)
	return n
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			require.Fail(t, "condition not met in time", msgAndArgs...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// py joins lines into a script.
func py(lines ...string) string { return strings.Join(lines, "\n") }
