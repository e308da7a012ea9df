package bench

// Shared harness: starting redis-server with the module, clients, timing
// helpers and the results file every benchmark writes.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	homeOnce sync.Once
	home     string // one PythonHomeDir (0700) shared by all servers of this run
	homeErr  error
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{})
	code := m.Run()
	if home != "" {
		os.RemoveAll(home)
	}
	os.Exit(code)
}

// guard skips the benchmark unless GEARS_BENCH is set.
func guard(t *testing.T) {
	if os.Getenv("GEARS_BENCH") == "" {
		t.Skip("set GEARS_BENCH=1")
	}
}

func bg() context.Context { return context.Background() }

// modulePath is the absolute path of redisgears.so (GEARS_MODULE or ../redisgears.so).
func modulePath(t *testing.T) string {
	p := os.Getenv("GEARS_MODULE")
	if p == "" {
		p = filepath.Join("..", "redisgears.so")
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("module not found (run make build first): %v", err)
	}
	return abs
}

func pythonHome(t *testing.T) string {
	homeOnce.Do(func() {
		if home, homeErr = os.MkdirTemp("", "gears-bench-python-"); homeErr == nil {
			homeErr = os.Chmod(home, 0o700)
		}
	})
	if homeErr != nil {
		t.Fatal(homeErr)
	}
	return home
}

type server struct {
	Addr   string
	Port   int
	Dir    string
	Client *redis.Client // default client, long read timeout
	cmd    *exec.Cmd
	exited chan struct{}
}

// startServer starts redis-server with the module (plus moduleArgs) on a free
// loopback port; it is stopped, and checked for a crash, when the test ends.
func startServer(t *testing.T, moduleArgs ...string) *server {
	return startServerWith(t, nil, moduleArgs...)
}

// startServerWith is startServer with redis-server arguments of its own.
func startServerWith(t *testing.T, serverArgs []string, moduleArgs ...string) *server {
	so := modulePath(t)
	args := append([]string{"PythonHomeDir", pythonHome(t)}, moduleArgs...)
	dir := t.TempDir()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var s *server
		if s, err = launch(dir, so, serverArgs, args); err == nil {
			t.Cleanup(func() { s.stop(t) })
			return s
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatalf("starting redis-server: %v\n%s", err, logTail(dir))
	return nil
}

func logTail(dir string) string { return tail(filepath.Join(dir, "redis.log"), 40) }

func launch(dir, so string, serverArgs, moduleArgs []string) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"),
	}
	args = append(append(args, serverArgs...), "--loadmodule", so)
	s := &server{Port: port, Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), Dir: dir, exited: make(chan struct{})}
	s.cmd = exec.Command("redis-server", append(args, moduleArgs...)...)
	s.cmd.Dir = dir
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	s.Client = s.NewClient(4, 10*time.Minute)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(bg(), 500*time.Millisecond)
		err := s.Client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			s.Client.Close()
			return nil, fmt.Errorf("redis-server exited during startup (%v): %s", s.cmd.ProcessState, logTail(dir))
		default:
		}
		if time.Now().After(deadline) {
			s.kill()
			s.Client.Close()
			return nil, fmt.Errorf("no PING reply within 20 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// NewClient opens a RESP2 client with its own pool of poolSize connections.
func (s *server) NewClient(poolSize int, readTimeout time.Duration) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: s.Addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		PoolSize: poolSize, MinIdleConns: 0, DialTimeout: 2 * time.Second,
		ReadTimeout: readTimeout, WriteTimeout: 10 * time.Second,
		ContextTimeoutEnabled: true,
	})
}

func (s *server) Pid() int { return s.cmd.Process.Pid }

func (s *server) kill() {
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.exited
	}
}

// stop reports a server that died or stopped answering during the test, then
// shuts it down (SIGKILL if it does not go away).
func (s *server) stop(t *testing.T) {
	defer s.Client.Close()
	ctx, cancel := context.WithTimeout(bg(), 3*time.Second)
	err := s.Client.Ping(ctx).Err()
	cancel()
	if err != nil {
		select {
		case <-s.exited:
			t.Errorf("redis-server %s exited during the benchmark (%v)", s.Addr, s.cmd.ProcessState)
		default:
			t.Errorf("redis-server %s no longer answers PING: %v", s.Addr, err)
		}
	} else {
		ctx, cancel := context.WithTimeout(bg(), time.Second)
		s.Client.ShutdownNoSave(ctx)
		cancel()
	}
	select {
	case <-s.exited:
	case <-time.After(3 * time.Second):
	}
	s.kill()
	if t.Failed() {
		t.Logf("redis.log tail of %s:\n%s", s.Addr, logTail(s.Dir))
		if home != "" {
			t.Logf("gears-crash.log tail:\n%s", tail(filepath.Join(home, "gears-crash.log"), 40))
		}
	}
}

func tail(path string, n int) string {
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

// info parses INFO <section> into field -> value.
func info(t *testing.T, c *redis.Client, section string) map[string]string {
	txt, err := c.Info(bg(), section).Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", section, err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(txt))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":"); ok && !strings.HasPrefix(k, "#") {
			out[k] = v
		}
	}
	return out
}

// rssKB is VmRSS of pid in kB, from /proc/<pid>/status.
func rssKB(t *testing.T, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// cpuTime is the user+system CPU time pid used so far (/proc/<pid>/stat,
// clock ticks of 1/100 s).
func cpuTime(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(b), ") ") // skip "pid (comm) "
	f := strings.Fields(rest)                  // f[11], f[12] = utime, stime (fields 14, 15)
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * 10 * time.Millisecond
}

// gearsReply splits a blocking RG.PYEXECUTE / RG.GETRESULTSBLOCKING reply
// [[results], [errors]] into its two lists of strings.
func gearsReply(res any) (results, errs []string, err error) {
	top, ok := res.([]any)
	if !ok || len(top) != 2 {
		return nil, nil, fmt.Errorf("reply is not [[results],[errors]]: %#v", res)
	}
	for i, dst := range []*[]string{&results, &errs} {
		list, ok := top[i].([]any)
		if !ok {
			return nil, nil, fmt.Errorf("reply element %d is not a list: %#v", i, top[i])
		}
		for _, v := range list {
			*dst = append(*dst, fmt.Sprint(v))
		}
	}
	return results, errs, nil
}

// ---- timing ----

// bestOf runs f n times and returns the shortest duration and all of them.
func bestOf(t *testing.T, n int, f func() error) (time.Duration, []time.Duration) {
	var all []time.Duration
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := f(); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		all = append(all, time.Since(start))
	}
	best := all[0]
	for _, d := range all {
		best = min(best, d)
	}
	return best, all
}

type latency struct{ P50, P99, Mean time.Duration }

// measureLatency does warm sequential calls of op, then n timed ones.
func measureLatency(t *testing.T, warm, n int, op func() error) latency {
	for i := 0; i < warm; i++ {
		if err := op(); err != nil {
			t.Fatalf("warm-up: %v", err)
		}
	}
	ds := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := op(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		ds = append(ds, time.Since(start))
	}
	return summarize(ds)
}

// summarize is the p50, p99 (nearest rank) and mean of samples (not empty).
func summarize(ds []time.Duration) latency {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	pct := func(p float64) time.Duration {
		i := int(p*float64(len(ds))+0.999999) - 1
		return ds[max(0, min(i, len(ds)-1))]
	}
	return latency{P50: pct(0.50), P99: pct(0.99), Mean: sum / time.Duration(len(ds))}
}

// throughput runs op from clients goroutines for dur (at most maxOps calls in
// all) and returns completed calls per second.
func throughput(t *testing.T, clients int, dur time.Duration, maxOps int64, op func() error) (float64, int64) {
	var done, issued atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(dur)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && issued.Add(1) <= maxOps {
				if err := op(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := firstErr.Load(); err != nil {
		t.Fatalf("throughput run: %v", err)
	}
	return float64(done.Load()) / elapsed.Seconds(), done.Load()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/1e6) }

// msList formats durations as "[a b c] ms".
func msList(ds []time.Duration) string {
	var parts []string
	for _, d := range ds {
		parts = append(parts, fmt.Sprintf("%.1f", float64(d)/1e6))
	}
	return "[" + strings.Join(parts, " ") + "] ms"
}

// ---- results file ----

type report struct {
	t    *testing.T
	name string
	b    strings.Builder
}

// newReport starts bench/results/<name>.txt with the run's context. Call it
// before starting servers: the file is written when the test ends, after
// they stopped (so a crash found then is in it too).
func newReport(t *testing.T, name string) *report {
	r := &report{t: t, name: name}
	t.Cleanup(func() { // when the servers have stopped
		load, _ := os.ReadFile("/proc/loadavg")
		r.line("loadavg at end: %s", strings.TrimSpace(string(load)))
		r.save()
	})
	fmt.Fprintf(&r.b, "# %s benchmark: gears vs peer in the same run\n", name)
	fmt.Fprintf(&r.b, "date:      %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&r.b, "machine:   nproc=%d %s/%s cpu=%q\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, cpuModel())
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&r.b, "loadavg:   %s (at start; the machine may be shared)\n", strings.TrimSpace(string(load)))
	version, err := exec.Command("redis-server", "--version").Output()
	if err != nil {
		t.Fatalf("redis-server --version: %v", err)
	}
	fmt.Fprintf(&r.b, "redis:     %s\n", strings.TrimSpace(string(version)))
	so := modulePath(t)
	if st, err := os.Stat(so); err == nil {
		fmt.Fprintf(&r.b, "module:    %s (%d bytes, built %s)\n", filepath.Base(so), st.Size(), st.ModTime().UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&r.b, "reproduce: GEARS_BENCH=1 go test -count=1 -run '%s$' -v -timeout 30m ./bench/   (from the repo root)\n\n", t.Name())
	return r
}

// line adds one line to the file and the test log.
func (r *report) line(format string, args ...any) {
	r.t.Helper()
	s := fmt.Sprintf(format, args...)
	r.b.WriteString(s + "\n")
	r.t.Log(s)
}

// verdict adds "ratio ... target ... met/NOT met".
func (r *report) verdict(label string, ratio float64, op string, target float64) {
	r.t.Helper()
	met := ratio <= target
	if op == ">=" {
		met = ratio >= target
	}
	word := "met"
	if !met {
		word = "NOT met"
	}
	r.line("%-34s %.3f   (target %s %.2f: %s)", label, ratio, op, target, word)
}

func (r *report) save() {
	if r.t.Failed() || r.t.Skipped() {
		r.b.WriteString("\nRUN FAILED: numbers above are partial; see the go test output.\n")
	}
	if err := os.MkdirAll("results", 0o755); err != nil {
		r.t.Error(err)
		return
	}
	path := filepath.Join("results", r.name+".txt")
	if err := os.WriteFile(path, []byte(r.b.String()), 0o644); err != nil {
		r.t.Error(err)
	}
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
