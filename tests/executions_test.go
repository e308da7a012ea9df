package tests

// Execution management commands: RG.PYEXECUTE UNBLOCKING, RG.GETRESULTS[BLOCKING],
// RG.DUMPEXECUTIONS, RG.GETEXECUTION, RG.DROPEXECUTION, RG.ABORTEXECUTION, and
// the limits around them (reference §1.1, §4.1).

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

var exIDPattern = regexp.MustCompile(`^0{40}-([0-9]+)$`)

const (
	// A map step that never returns and never sleeps.
	exCPULoop = "def loop(x):\n    while True:\n        pass\nGB('ShardsIDReader').map(loop).run()"
	// A map step that never returns, sleeping in short steps.
	exSleepLoop = "import time\ndef loop(x):\n    while True:\n        time.sleep(0.05)\nGB('ShardsIDReader').map(loop).run()"
)

// exUnblocking runs script with UNBLOCKING and returns the execution id.
func exUnblocking(t testing.TB, c *redis.Client, script string) string {
	t.Helper()
	res, err := pyexec(c, script, "UNBLOCKING")
	require.NoError(t, err, "script:\n%s", script)
	id, ok := res.(string)
	require.True(t, ok, "UNBLOCKING replied %#v", res)
	require.Regexp(t, exIDPattern, id)
	return id
}

// exSeq is the counter part of an execution id.
func exSeq(t testing.TB, id string) int64 {
	t.Helper()
	m := exIDPattern.FindStringSubmatch(id)
	require.NotNil(t, m, "bad execution id %q", id)
	n, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	return n
}

type exStep struct {
	Type     string
	Duration int64
	Name     string
	Arg      string
}

type exPlan struct {
	Status          string
	ShardsReceived  int64
	ShardsCompleted int64
	Results         int64
	Errors          []string
	Total, Read     int64
	Steps           []exStep // as listed: last step first
}

// exGetExecution runs RG.GETEXECUTION id [sub] and checks the reply's shape.
func exGetExecution(t testing.TB, c *redis.Client, id string, sub ...string) exPlan {
	t.Helper()
	args := []any{"RG.GETEXECUTION", id}
	for _, s := range sub {
		args = append(args, s)
	}
	res, err := c.Do(bg(), args...).Result()
	require.NoError(t, err, "RG.GETEXECUTION %s %v", id, sub)
	return exParsePlan(t, res)
}

func exParsePlan(t testing.TB, res any) exPlan {
	t.Helper()
	outer, ok := res.([]any)
	require.True(t, ok && len(outer) == 1, "RG.GETEXECUTION: want one shard entry, got %#v", res)
	shard, ok := outer[0].([]any)
	require.True(t, ok && len(shard) == 4, "shard entry: %#v", outer[0])
	require.Equal(t, "shard_id", shard[0])
	require.Equal(t, strings.Repeat("0", 40), shard[1])
	require.Equal(t, "execution_plan", shard[2])
	plan, ok := shard[3].([]any)
	require.True(t, ok, "execution_plan: %#v", shard[3])
	require.Len(t, plan, 16, "execution_plan: %#v", plan)
	keys := []string{"status", "shards_received", "shards_completed", "results", "errors", "total_duration", "read_duration", "steps"}
	for i, k := range keys {
		require.Equal(t, k, plan[2*i], "execution_plan field %d: %#v", i, plan)
	}
	var p exPlan
	p.Status, ok = plan[1].(string)
	require.True(t, ok, "status: %#v", plan[1])
	ints := []*int64{&p.ShardsReceived, &p.ShardsCompleted, &p.Results}
	for i, dst := range ints {
		v, ok := plan[3+2*i].(int64)
		require.True(t, ok, "%s is not an integer: %#v", keys[1+i], plan[3+2*i])
		*dst = v
	}
	errs, ok := plan[9].([]any)
	require.True(t, ok, "errors: %#v", plan[9])
	p.Errors = []string{}
	for _, e := range errs {
		s, ok := e.(string)
		require.True(t, ok, "error entry: %#v", e)
		p.Errors = append(p.Errors, s)
	}
	p.Total, ok = plan[11].(int64)
	require.True(t, ok, "total_duration: %#v", plan[11])
	p.Read, ok = plan[13].(int64)
	require.True(t, ok, "read_duration: %#v", plan[13])
	steps, ok := plan[15].([]any)
	require.True(t, ok, "steps: %#v", plan[15])
	for _, raw := range steps {
		st, ok := raw.([]any)
		require.True(t, ok && len(st) == 8, "step: %#v", raw)
		require.Equal(t, "type", st[0])
		require.Equal(t, "duration", st[2])
		require.Equal(t, "name", st[4])
		require.Equal(t, "arg", st[6])
		var s exStep
		s.Type, ok = st[1].(string)
		require.True(t, ok, "step type: %#v", st[1])
		s.Duration, ok = st[3].(int64)
		require.True(t, ok, "step duration: %#v", st[3])
		s.Name, ok = st[5].(string)
		require.True(t, ok, "step name: %#v", st[5])
		s.Arg, ok = st[7].(string)
		require.True(t, ok, "step arg: %#v", st[7])
		p.Steps = append(p.Steps, s)
	}
	return p
}

// exStatus is the status RG.GETEXECUTION reports.
func exStatus(t testing.TB, c *redis.Client, id string) string {
	t.Helper()
	return exGetExecution(t, c, id).Status
}

// exWaitStatus polls RG.GETEXECUTION until the status is want.
func exWaitStatus(t testing.TB, c *redis.Client, id, want string, timeout time.Duration) {
	t.Helper()
	last := ""
	exPoll(t, timeout, func() bool {
		last = exStatus(t, c, id)
		return last == want
	}, func() string {
		return fmt.Sprintf("execution %s: status %q after %v, want %q", id, last, timeout, want)
	})
}

// exPoll polls cond until it holds or timeout passes; msg explains a failure.
func exPoll(t testing.TB, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// exResults runs RG.GETRESULTS or RG.GETRESULTSBLOCKING.
func exResults(t testing.TB, c *redis.Client, cmd, id string) ([]any, []string) {
	t.Helper()
	res, err := c.Do(bg(), cmd, id).Result()
	require.NoError(t, err, "%s %s", cmd, id)
	return gbSplitReply(t, res, cmd+" "+id)
}

func exDo(c *redis.Client, args ...any) (any, error) { return c.Do(bg(), args...).Result() }

func exRequireOK(t testing.TB, c *redis.Client, args ...any) {
	t.Helper()
	res, err := exDo(c, args...)
	require.NoError(t, err, "%v", args)
	require.Equal(t, "OK", res, "%v", args)
}

func exDumpEntry(id, status string) []any {
	return []any{"executionId", id, "status", status, "registered", int64(0)}
}

// ---- ids, results, listing, dropping ----

func TestExecutionLifecycle(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("unblocking run replies an execution id", func(t *testing.T) {
		id := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		results, errs := exResults(t, c, "RG.GETRESULTSBLOCKING", id)
		require.Equal(t, []any{"1"}, results)
		require.Empty(t, errs)
		results, errs = exResults(t, c, "RG.GETRESULTS", id)
		require.Equal(t, []any{"1"}, results)
		require.Empty(t, errs)
		require.Equal(t, []any{exDumpEntry(id, "done")}, gbDumpExecutions(t, c))
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
		_, err := exDo(c, "RG.GETRESULTS", id)
		requireErrText(t, "execution plan does not exist", err)
		require.Empty(t, gbDumpExecutions(t, c))
	})

	t.Run("ids count up", func(t *testing.T) {
		a := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		b := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		require.Equal(t, exSeq(t, a)+1, exSeq(t, b), "%s then %s", a, b)
		exResults(t, c, "RG.GETRESULTSBLOCKING", a)
		exResults(t, c, "RG.GETRESULTSBLOCKING", b)
		require.ElementsMatch(t, []any{exDumpEntry(a, "done"), exDumpEntry(b, "done")}, gbDumpExecutions(t, c))
		exRequireOK(t, c, "RG.DROPEXECUTION", a)
		require.Equal(t, []any{exDumpEntry(b, "done")}, gbDumpExecutions(t, c))
		exRequireOK(t, c, "RG.DROPEXECUTION", b)
	})

	t.Run("blocking runs are not kept", func(t *testing.T) {
		before := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		exResults(t, c, "RG.GETRESULTSBLOCKING", before)
		exRequireOK(t, c, "RG.DROPEXECUTION", before)

		res, err := pyexec(c, "GB('ShardsIDReader').run()")
		require.NoError(t, err)
		require.Equal(t, []any{[]any{"1"}, []any{}}, res)
		require.Empty(t, gbDumpExecutions(t, c))
		res, err = pyexec(c, "GB().run('no-such-key-*')")
		require.NoError(t, err)
		require.Equal(t, []any{[]any{}, []any{}}, res)
		require.Empty(t, gbDumpExecutions(t, c))

		after := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		exResults(t, c, "RG.GETRESULTSBLOCKING", after)
		// The blocking runs took the ids in between; they are gone.
		require.Equal(t, exSeq(t, before)+3, exSeq(t, after), "ids: %s .. %s", before, after)
		for n := exSeq(t, before) + 1; n < exSeq(t, after); n++ {
			id := fmt.Sprintf("%s-%d", strings.Repeat("0", 40), n)
			_, err := exDo(c, "RG.GETRESULTS", id)
			requireErrText(t, "execution plan does not exist", err)
		}
		exRequireOK(t, c, "RG.DROPEXECUTION", after)
	})

	t.Run("unblocking without run replies OK", func(t *testing.T) {
		requirePyOK(t, c, "x = 1", "UNBLOCKING")
		require.Empty(t, gbDumpExecutions(t, c))
	})

	t.Run("unblocking failing run", func(t *testing.T) {
		_, err := pyexec(c, "GB().run(mode='sync')", "UNBLOCKING")
		require.Error(t, err)
		require.Contains(t, err.Error(), "unknown execution mode")
		require.Empty(t, gbDumpExecutions(t, c))
	})

	t.Run("drop twice", func(t *testing.T) {
		id := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		exResults(t, c, "RG.GETRESULTSBLOCKING", id)
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
		_, err := exDo(c, "RG.DROPEXECUTION", id)
		requireErrText(t, "execution plan does not exist", err)
		_, err = exDo(c, "RG.GETEXECUTION", id)
		requireErrText(t, "execution plan does not exist", err)
		_, err = exDo(c, "RG.GETRESULTSBLOCKING", id)
		requireErrText(t, "execution plan does not exist", err)
	})

	t.Run("unknown ids", func(t *testing.T) {
		for _, cmd := range []string{"RG.GETRESULTS", "RG.GETRESULTSBLOCKING", "RG.DROPEXECUTION", "RG.GETEXECUTION"} {
			_, err := exDo(c, cmd, "nosuchid")
			requireErrText(t, "execution plan does not exist", err)
			_, err = exDo(c, cmd, strings.Repeat("0", 40)+"-999999")
			requireErrText(t, "execution plan does not exist", err)
		}
		_, err := exDo(c, "RG.ABORTEXECUTION", "nosuchid")
		requireErrText(t, "execution does not exist", err)
		_, err = exDo(c, "RG.ABORTEXECUTION", strings.Repeat("0", 40)+"-999999")
		requireErrText(t, "execution does not exist", err)
	})

	t.Run("arity", func(t *testing.T) {
		for _, args := range [][]any{
			{"RG.GETRESULTS"}, {"RG.GETRESULTS", "a", "b"},
			{"RG.GETRESULTSBLOCKING"}, {"RG.GETRESULTSBLOCKING", "a", "b"},
			{"RG.DROPEXECUTION"}, {"RG.DROPEXECUTION", "a", "b"},
			{"RG.ABORTEXECUTION"}, {"RG.ABORTEXECUTION", "a", "b"},
			{"RG.GETEXECUTION"}, {"RG.GETEXECUTION", "a", "SHARD", "c"},
		} {
			_, err := exDo(c, args...)
			require.Error(t, err, "%v", args)
			require.Contains(t, strings.ToLower(err.Error()), "wrong number of arguments", "%v", args)
		}
	})

	t.Run("aborting a finished execution is OK and changes nothing", func(t *testing.T) {
		id := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		exResults(t, c, "RG.GETRESULTSBLOCKING", id)
		exRequireOK(t, c, "RG.ABORTEXECUTION", id)
		require.Equal(t, "done", exStatus(t, c, id))
		results, errs := exResults(t, c, "RG.GETRESULTS", id)
		require.Equal(t, []any{"1"}, results)
		require.Empty(t, errs)
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
	})

	t.Run("dumpexecutions lists unblocking runs", func(t *testing.T) {
		a := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		b := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		eventually(t, 10*time.Second, func() bool {
			d := gbDumpExecutions(t, c)
			return len(d) == 2 && (assertEqualAny(d[0], exDumpEntry(a, "done")) && assertEqualAny(d[1], exDumpEntry(b, "done")) ||
				assertEqualAny(d[1], exDumpEntry(a, "done")) && assertEqualAny(d[0], exDumpEntry(b, "done")))
		}, "RG.DUMPEXECUTIONS never listed both as done: %v", gbDumpExecutions(t, c))
		exRequireOK(t, c, "RG.DROPEXECUTION", a)
		exRequireOK(t, c, "RG.DROPEXECUTION", b)
	})
	requireAlive(t, s)
}

func assertEqualAny(a, b any) bool { return fmt.Sprintf("%#v", a) == fmt.Sprintf("%#v", b) }

// ---- a running execution ----

func TestExecutionWhileRunning(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	id := exUnblocking(t, c, py(
		"import time",
		"def wait(x):",
		"    while not execute('exists', 'gate'):",
		"        time.sleep(0.01)",
		"    return 'opened'",
		"GB('ShardsIDReader').map(wait).run()",
	))
	exWaitStatus(t, c, id, "running", 10*time.Second)

	p := exGetExecution(t, c, id)
	require.Equal(t, "running", p.Status)
	require.EqualValues(t, -1, p.Results, "results is -1 while running")
	require.Empty(t, p.Errors)
	require.Equal(t, []any{exDumpEntry(id, "running")}, gbDumpExecutions(t, c))

	_, err := exDo(c, "RG.GETRESULTS", id)
	requireErrText(t, "execution is still running", err)
	_, err = exDo(c, "RG.DROPEXECUTION", id)
	requireErrText(t, "can not drop a not yet finished execution, abort it first.", err)

	// Two clients wait for the results; neither gets them before the gate opens.
	type reply struct {
		res any
		err error
	}
	replies := make(chan reply, 2)
	for i := 0; i < 2; i++ {
		cl := s.NewClient()
		defer cl.Close()
		go func() {
			res, err := cl.Do(bg(), "RG.GETRESULTSBLOCKING", id).Result()
			replies <- reply{res, err}
		}()
	}
	select {
	case r := <-replies:
		t.Fatalf("RG.GETRESULTSBLOCKING replied while the execution runs: %#v %v", r.res, r.err)
	case <-time.After(300 * time.Millisecond):
	}
	requireAlive(t, s)
	require.Equal(t, "running", exStatus(t, c, id))

	require.NoError(t, c.Set(bg(), "gate", "1", 0).Err())
	for i := 0; i < 2; i++ {
		select {
		case r := <-replies:
			require.NoError(t, r.err)
			require.Equal(t, []any{[]any{"opened"}, []any{}}, r.res)
		case <-time.After(10 * time.Second):
			t.Fatal("RG.GETRESULTSBLOCKING did not reply once the execution finished")
		}
	}
	p = exGetExecution(t, c, id)
	require.Equal(t, "done", p.Status)
	require.EqualValues(t, 1, p.Results)
	results, errs := exResults(t, c, "RG.GETRESULTS", id)
	require.Equal(t, []any{"opened"}, results)
	require.Empty(t, errs)
	exRequireOK(t, c, "RG.DROPEXECUTION", id)
	require.Empty(t, gbDumpExecutions(t, c))
}

// ---- RG.GETEXECUTION ----

func TestGetExecution(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	require.NoError(t, c.Set(bg(), "k1", "spark", 0).Err())
	require.NoError(t, c.Set(bg(), "k2", "star", 0).Err())
	require.NoError(t, c.Set(bg(), "k3", "lambda", 0).Err())

	t.Run("shape of a finished execution", func(t *testing.T) {
		id := exUnblocking(t, c, "GB().map(lambda x: x['value']).run()")
		exWaitStatus(t, c, id, "done", 10*time.Second)
		p := exGetExecution(t, c, id)
		require.Equal(t, "done", p.Status)
		require.GreaterOrEqual(t, p.ShardsReceived, int64(0))
		require.GreaterOrEqual(t, p.ShardsCompleted, int64(0))
		require.EqualValues(t, 3, p.Results)
		require.Empty(t, p.Errors)
		require.GreaterOrEqual(t, p.Total, int64(0))
		require.GreaterOrEqual(t, p.Read, int64(0))
		require.NotEmpty(t, p.Steps)
		for _, st := range p.Steps {
			require.EqualValues(t, 0, st.Duration, "durations are 0 unless ProfileExecutions is on: %+v", st)
		}
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
	})

	t.Run("steps are listed last step first", func(t *testing.T) {
		id := exUnblocking(t, c, "GB().flatmap(lambda x: [x]).filter(lambda x: True).foreach(lambda x: None).limit(5).accumulate(lambda a, r: r).run()")
		exWaitStatus(t, c, id, "done", 10*time.Second)
		p := exGetExecution(t, c, id)
		var types []string
		maps := 0
		for _, st := range p.Steps {
			if st.Type == "map" {
				maps++
				continue
			}
			types = append(types, st.Type)
		}
		require.Equal(t, []string{"collect", "accumulate", "limit", "foreach", "filter", "flatmap", "reader"}, types, "steps: %+v", p.Steps)
		require.GreaterOrEqual(t, maps, 1, "run()'s str conversion is a map step: %+v", p.Steps)
		require.Equal(t, "map", p.Steps[1].Type, "the str conversion comes right before collect: %+v", p.Steps)
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
	})

	t.Run("no conversion and no collect steps when not asked", func(t *testing.T) {
		id := exUnblocking(t, c, "GB().filter(lambda x: True).run(convertToStr=False, collect=False)")
		exWaitStatus(t, c, id, "done", 10*time.Second)
		p := exGetExecution(t, c, id)
		var types []string
		for _, st := range p.Steps {
			if st.Type != "map" {
				types = append(types, st.Type)
			}
		}
		require.Equal(t, []string{"filter", "reader"}, types, "steps: %+v", p.Steps)
		require.Equal(t, "filter", p.Steps[0].Type, "steps: %+v", p.Steps)
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
	})

	t.Run("errors and result count", func(t *testing.T) {
		id := exUnblocking(t, c, "GB().map(lambda x: notexists(x) if x['key'] != 'k1' else x['key']).run()")
		exWaitStatus(t, c, id, "done", 10*time.Second)
		p := exGetExecution(t, c, id)
		require.EqualValues(t, 1, p.Results)
		require.Len(t, p.Errors, 2)
		for _, e := range p.Errors {
			require.Contains(t, e, "name 'notexists' is not defined")
		}
		results, errs := exResults(t, c, "RG.GETRESULTS", id)
		require.Equal(t, []any{"k1"}, results)
		require.Equal(t, p.Errors, errs)
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
	})

	t.Run("repartition errors", func(t *testing.T) {
		id := exUnblocking(t, c, "GearsBuilder().repartition(lambda x: notexists(x)).map(lambda x: str(x)).collect().run()")
		exWaitStatus(t, c, id, "done", 10*time.Second)
		p := exGetExecution(t, c, id)
		require.NotEmpty(t, p.Errors)
		for _, e := range p.Errors {
			require.Contains(t, e, "name 'notexists' is not defined")
		}
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
	})

	t.Run("sub-arguments", func(t *testing.T) {
		id := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		exResults(t, c, "RG.GETRESULTSBLOCKING", id)
		want := exGetExecution(t, c, id)
		for _, sub := range []string{"SHARD", "shard", "sHaRd"} {
			require.Equal(t, want, exGetExecution(t, c, id, sub), sub)
		}
		for _, sub := range []string{"CLUSTER", "cluster"} {
			_, err := exDo(c, "RG.GETEXECUTION", id, sub)
			requireErrText(t, "no cluster detected - use `RG.GETEXECUTION <id> [SHARD]` instead", err)
		}
		for _, sub := range []string{"foo", "SHARDS", ""} {
			_, err := exDo(c, "RG.GETEXECUTION", id, sub)
			requireErrText(t, "unknown subcommand", err)
		}
		_, err := exDo(c, "RG.GETEXECUTION", "NoSuchExecutionId", "SHARD")
		requireErrText(t, "execution plan does not exist", err)
		exRequireOK(t, c, "RG.DROPEXECUTION", id)
	})
	requireAlive(t, s)
}

func TestGetExecutionProfiling(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	script := "import time\nGB('ShardsIDReader').foreach(lambda x: time.sleep(0.1)).map(lambda x: x).run()"

	gbConfigSet(t, c, "ProfileExecutions", "1")
	res, err := exDo(c, "RG.CONFIGGET", "ProfileExecutions")
	require.NoError(t, err)
	require.Equal(t, []any{int64(1)}, res)

	id := exUnblocking(t, c, script)
	exResults(t, c, "RG.GETRESULTSBLOCKING", id)
	p := exGetExecution(t, c, id)
	require.Equal(t, "done", p.Status)
	var foreach *exStep
	for i, st := range p.Steps {
		require.GreaterOrEqual(t, st.Duration, int64(0), "%+v", st)
		if st.Type == "foreach" {
			foreach = &p.Steps[i]
		}
	}
	require.NotNil(t, foreach, "no foreach step: %+v", p.Steps)
	require.Positive(t, foreach.Duration, "the step that slept 100 ms has no duration: %+v", p.Steps)
	require.Positive(t, p.Total, "total_duration of a 100 ms execution")
	t.Logf("profiled: total %d, read %d, steps %+v", p.Total, p.Read, p.Steps)
	exRequireOK(t, c, "RG.DROPEXECUTION", id)

	gbConfigSet(t, c, "ProfileExecutions", "0")
	id = exUnblocking(t, c, script)
	exResults(t, c, "RG.GETRESULTSBLOCKING", id)
	p = exGetExecution(t, c, id)
	for _, st := range p.Steps {
		require.EqualValues(t, 0, st.Duration, "profiling is off again: %+v", p.Steps)
	}
	exRequireOK(t, c, "RG.DROPEXECUTION", id)
}

// ---- abort ----

func TestAbortRunningExecution(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	for _, tc := range []struct{ name, script string }{
		{"busy loop", exCPULoop},
		{"sleep loop", exSleepLoop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := exUnblocking(t, c, tc.script)
			exWaitStatus(t, c, id, "running", 10*time.Second)
			require.Equal(t, []any{exDumpEntry(id, "running")}, gbDumpExecutions(t, c))

			start := time.Now()
			exRequireOK(t, c, "RG.ABORTEXECUTION", id)
			var status string
			for {
				status = exStatus(t, c, id)
				if status != "running" || time.Since(start) > 5*time.Second {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			t.Logf("%s: aborted after %v (the spec says within 100 ms)", tc.name, elapsed)
			require.Equal(t, "done", status, "still %q %v after RG.ABORTEXECUTION", status, elapsed)

			p := exGetExecution(t, c, id)
			require.Len(t, p.Errors, 1, "an aborted running execution ends with one error: %q", p.Errors)
			t.Logf("error: %q", p.Errors[0])
			results, errs := exResults(t, c, "RG.GETRESULTSBLOCKING", id)
			require.Empty(t, results)
			require.Equal(t, p.Errors, errs)
			require.Equal(t, []any{exDumpEntry(id, "done")}, gbDumpExecutions(t, c))
			exRequireOK(t, c, "RG.DROPEXECUTION", id)

			// The server and the execution threads are fine afterwards.
			requireAlive(t, s)
			require.Equal(t, []string{"ok"}, gbRunStrings(t, c, "GB('ShardsIDReader').map(lambda x: 'ok').run()"))
		})
	}

	t.Run("drop refused until aborted", func(t *testing.T) {
		id := exUnblocking(t, c, exSleepLoop)
		exWaitStatus(t, c, id, "running", 10*time.Second)
		_, err := exDo(c, "RG.DROPEXECUTION", id)
		requireErrText(t, "can not drop a not yet finished execution, abort it first.", err)
		exRequireOK(t, c, "RG.ABORTEXECUTION", id)
		eventually(t, 5*time.Second, func() bool {
			res, err := exDo(c, "RG.DROPEXECUTION", id)
			return err == nil && res == "OK"
		}, "the aborted execution could not be dropped")
		_, err = exDo(c, "RG.GETEXECUTION", id)
		requireErrText(t, "execution plan does not exist", err)
	})

	t.Run("a blocked client gets the aborted execution's reply", func(t *testing.T) {
		cl := s.NewClient()
		defer cl.Close()
		done := make(chan error, 1)
		var res any
		go func() {
			var err error
			res, err = cl.Do(bg(), "RG.PYEXECUTE", exSleepLoop).Result()
			done <- err
		}()
		// Blocking runs are not listed by RG.DUMPEXECUTIONS: find it by its id.
		var id string
		exPoll(t, 10*time.Second, func() bool { return findRunning(t, c, &id) },
			func() string { return "the blocking execution never showed up as running" })
		exRequireOK(t, c, "RG.ABORTEXECUTION", id)
		select {
		case err := <-done:
			require.NoError(t, err)
			results, errs := gbSplitReply(t, res, "aborted blocking run")
			require.Empty(t, results)
			require.Len(t, errs, 1)
		case <-time.After(5 * time.Second):
			t.Fatal("the blocked RG.PYEXECUTE did not reply after RG.ABORTEXECUTION")
		}
	})
	requireAlive(t, s)
}

// findRunning looks for a running execution among the ids just above the
// last known one (blocking runs are not listed by RG.DUMPEXECUTIONS).
func findRunning(t testing.TB, c *redis.Client, id *string) bool {
	t.Helper()
	probe := exUnblocking(t, c, "GB('ShardsIDReader').run()")
	exResults(t, c, "RG.GETRESULTSBLOCKING", probe)
	exRequireOK(t, c, "RG.DROPEXECUTION", probe)
	for n := exSeq(t, probe) - 1; n > 0 && n >= exSeq(t, probe)-20; n-- {
		cand := fmt.Sprintf("%s-%d", strings.Repeat("0", 40), n)
		res, err := exDo(c, "RG.GETEXECUTION", cand)
		if err != nil {
			continue
		}
		if exParsePlan(t, res).Status == "running" {
			*id = cand
			return true
		}
	}
	return false
}

func TestAbortQueuedExecution(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("ExecutionThreads", "1"))
	c := s.Client

	id1 := exUnblocking(t, c, exSleepLoop)
	id2 := exUnblocking(t, c, "GB('ShardsIDReader').foreach(lambda x: execute('set', 'queued_ran', '1')).run()")
	exWaitStatus(t, c, id1, "running", 10*time.Second)

	p := exGetExecution(t, c, id2)
	require.Equal(t, "created", p.Status, "one execution thread: the second waits")
	require.EqualValues(t, -1, p.Results)
	require.ElementsMatch(t, []any{exDumpEntry(id1, "running"), exDumpEntry(id2, "created")}, gbDumpExecutions(t, c))
	_, err := exDo(c, "RG.GETRESULTS", id2)
	requireErrText(t, "execution is still running", err)
	_, err = exDo(c, "RG.DROPEXECUTION", id2)
	requireErrText(t, "can not drop a not yet finished execution, abort it first.", err)

	// A client waiting for the queued execution's results is released by the abort.
	waiter := s.NewClient()
	defer waiter.Close()
	waited := make(chan error, 1)
	var waitedRes any
	go func() {
		var err error
		waitedRes, err = waiter.Do(bg(), "RG.GETRESULTSBLOCKING", id2).Result()
		waited <- err
	}()
	exPoll(t, 5*time.Second, func() bool {
		n, err := c.Do(bg(), "INFO", "clients").Text()
		return err == nil && strings.Contains(n, "blocked_clients:1")
	}, func() string { return "RG.GETRESULTSBLOCKING never blocked" })

	exRequireOK(t, c, "RG.ABORTEXECUTION", id2)
	exWaitStatus(t, c, id2, "aborted", 5*time.Second)
	select {
	case err := <-waited:
		require.NoError(t, err)
		arr, ok := waitedRes.([]any)
		require.True(t, ok && len(arr) == 2, "RG.GETRESULTSBLOCKING of the aborted execution: %#v", waitedRes)
	case <-time.After(5 * time.Second):
		t.Fatal("RG.GETRESULTSBLOCKING still blocked after its queued execution was aborted")
	}
	require.Equal(t, "running", exStatus(t, c, id1))

	exRequireOK(t, c, "RG.ABORTEXECUTION", id1)
	exWaitStatus(t, c, id1, "done", 5*time.Second)
	require.Len(t, exGetExecution(t, c, id1).Errors, 1)

	// The only execution thread is free: a new execution runs, and the
	// aborted one never did.
	require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GB('ShardsIDReader').run()"))
	require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GB('ShardsIDReader').run()"))
	n, err := c.Exists(bg(), "queued_ran").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the aborted queued execution ran")
	require.Equal(t, "aborted", exStatus(t, c, id2))

	exRequireOK(t, c, "RG.DROPEXECUTION", id1)
	exRequireOK(t, c, "RG.DROPEXECUTION", id2)
	require.Empty(t, gbDumpExecutions(t, c))
	requireAlive(t, s)
}

// ---- limits and concurrency ----

func TestMaxExecutions(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("MaxExecutions", "3"))
	c := s.Client

	run := func() string {
		id := exUnblocking(t, c, "GB('ShardsIDReader').run()")
		results, _ := exResults(t, c, "RG.GETRESULTSBLOCKING", id)
		require.Equal(t, []any{"1"}, results)
		return id
	}
	e1, e2, e3 := run(), run(), run()
	require.ElementsMatch(t, []any{exDumpEntry(e1, "done"), exDumpEntry(e2, "done"), exDumpEntry(e3, "done")}, gbDumpExecutions(t, c))
	e4 := run()
	require.ElementsMatch(t, []any{exDumpEntry(e2, "done"), exDumpEntry(e3, "done"), exDumpEntry(e4, "done")}, gbDumpExecutions(t, c))
	for _, cmd := range []string{"RG.GETRESULTS", "RG.GETEXECUTION", "RG.DROPEXECUTION"} {
		_, err := exDo(c, cmd, e1)
		requireErrText(t, "execution plan does not exist", err)
	}
	e5 := run()
	require.ElementsMatch(t, []any{exDumpEntry(e3, "done"), exDumpEntry(e4, "done"), exDumpEntry(e5, "done")}, gbDumpExecutions(t, c))

	t.Run("a running execution is not evicted", func(t *testing.T) {
		long := exUnblocking(t, c, exSleepLoop)
		exWaitStatus(t, c, long, "running", 10*time.Second)
		// Now long, e4, e5 are kept (e3 evicted): the next ones evict the
		// finished ones, never the running one.
		a := run()
		b := run()
		d := gbDumpExecutions(t, c)
		require.ElementsMatch(t, []any{exDumpEntry(long, "running"), exDumpEntry(a, "done"), exDumpEntry(b, "done")}, d)
		exRequireOK(t, c, "RG.ABORTEXECUTION", long)
		exWaitStatus(t, c, long, "done", 5*time.Second)

		t.Run("lowered at runtime, it applies from the next execution", func(t *testing.T) {
			gbConfigSet(t, c, "MaxExecutions", "2")
			require.Len(t, gbDumpExecutions(t, c), 3, "RG.CONFIGSET alone evicts nothing")
			e := run()
			require.ElementsMatch(t, []any{exDumpEntry(b, "done"), exDumpEntry(e, "done")}, gbDumpExecutions(t, c))
			_, err := exDo(c, "RG.GETRESULTS", long)
			requireErrText(t, "execution plan does not exist", err)
		})
	})
	requireAlive(t, s)
}

func TestConcurrentExecutions(t *testing.T) {
	t.Parallel()
	s := startServer(t) // ExecutionThreads defaults to 3
	c1, c2 := s.NewClient(), s.NewClient()
	defer c1.Close()
	defer c2.Close()

	a := exUnblocking(t, c1, exCPULoop)
	b := exUnblocking(t, c2, exCPULoop)
	defer func() {
		c := s.Client
		exDo(c, "RG.ABORTEXECUTION", a)
		exDo(c, "RG.ABORTEXECUTION", b)
	}()
	var sa, sb string
	exPoll(t, 10*time.Second, func() bool {
		sa, sb = exStatus(t, s.Client, a), exStatus(t, s.Client, b)
		return sa == "running" && sb == "running"
	}, func() string {
		return fmt.Sprintf("two CPU-bound executions of two sessions never ran at the same time (last seen %q, %q)", sa, sb)
	})
	requireAlive(t, s)

	c := s.Client
	exRequireOK(t, c, "RG.ABORTEXECUTION", a)
	exRequireOK(t, c, "RG.ABORTEXECUTION", b)
	exWaitStatus(t, c, a, "done", 5*time.Second)
	exWaitStatus(t, c, b, "done", 5*time.Second)
	exRequireOK(t, c, "RG.DROPEXECUTION", a)
	exRequireOK(t, c, "RG.DROPEXECUTION", b)

	t.Run("many executions keep their own results", func(t *testing.T) {
		const n = 24
		ids := make([]string, n)
		for i := range ids {
			cl := c1
			if i%2 == 1 {
				cl = c2
			}
			ids[i] = exUnblocking(t, cl, fmt.Sprintf(
				"V = 'value-%d'\ndef gen():\n    for j in range(50):\n        yield j\nGB('PythonReader').map(lambda x: V).distinct().run(gen)", i))
		}
		errc := make(chan error, n)
		for i, id := range ids {
			go func() {
				res, err := s.Client.Do(bg(), "RG.GETRESULTSBLOCKING", id).Result()
				want := []any{[]any{fmt.Sprintf("value-%d", i)}, []any{}}
				if err == nil && !assertEqualAny(res, want) {
					err = fmt.Errorf("execution %s: got %#v, want %#v", id, res, want)
				}
				errc <- err
			}()
		}
		for range ids {
			select {
			case err := <-errc:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatal("RG.GETRESULTSBLOCKING did not reply")
			}
		}
		for _, id := range ids {
			exRequireOK(t, c, "RG.DROPEXECUTION", id)
		}
		require.Empty(t, gbDumpExecutions(t, c))
	})
}

// ---- INFO and interpreters ----

func TestExecutionCounts(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	require.EqualValues(t, 0, infoRG(t, c, "rg_nexecutions"))
	a := exUnblocking(t, c, "GB('ShardsIDReader').run()")
	b := exUnblocking(t, c, "GB('ShardsIDReader').run()")
	exResults(t, c, "RG.GETRESULTSBLOCKING", a)
	exResults(t, c, "RG.GETRESULTSBLOCKING", b)
	require.EqualValues(t, 2, infoRG(t, c, "rg_nexecutions"))

	gbRunStrings(t, c, "GB('ShardsIDReader').run()")
	eventually(t, 5*time.Second, func() bool { return infoRG(t, c, "rg_nexecutions") == 2 },
		"a blocking run is still counted: %d", infoRG(t, c, "rg_nexecutions"))

	exRequireOK(t, c, "RG.DROPEXECUTION", a)
	require.EqualValues(t, 1, infoRG(t, c, "rg_nexecutions"))
	exRequireOK(t, c, "RG.DROPEXECUTION", b)
	require.EqualValues(t, 0, infoRG(t, c, "rg_nexecutions"))
}

func TestExecutionHoldsInterpreter(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	// inUse is the interpreters that are neither ready in the pool nor gone.
	inUse := func() (live, ready int64) {
		f := infoFields(t, c, "rg")
		live, err := strconv.ParseInt(f["rg_live_interpreters"], 10, 64)
		require.NoError(t, err, "rg_live_interpreters %q", f["rg_live_interpreters"])
		ready, err = strconv.ParseInt(f["rg_ready_interpreters"], 10, 64)
		require.NoError(t, err, "rg_ready_interpreters %q", f["rg_ready_interpreters"])
		return live, ready
	}
	settle := func() (live, ready int64) {
		stable, lastL, lastR := 0, int64(-1), int64(-1)
		eventually(t, 10*time.Second, func() bool {
			l, r := inUse()
			if l == lastL && r == lastR {
				stable++
			} else {
				stable, lastL, lastR = 0, l, r
			}
			return stable >= 5
		}, "interpreter counts never settled")
		return lastL, lastR
	}
	baseLive, baseReady := settle()
	require.Positive(t, baseLive)
	t.Logf("baseline: live %d, ready %d", baseLive, baseReady)

	id := exUnblocking(t, c, "GB('ShardsIDReader').map(lambda x: 'held').run()")
	results, _ := exResults(t, c, "RG.GETRESULTSBLOCKING", id)
	require.Equal(t, []any{"held"}, results)
	live, ready := settle()
	t.Logf("execution kept: live %d, ready %d", live, ready)
	require.Equal(t, baseLive-baseReady+1, live-ready, "the kept execution's session holds one interpreter")

	exRequireOK(t, c, "RG.DROPEXECUTION", id)
	exPoll(t, 10*time.Second, func() bool {
		live, ready = inUse()
		return live-ready == baseLive-baseReady // the pool itself may have grown
	}, func() string {
		return fmt.Sprintf("dropping the execution did not free its interpreter (live %d, ready %d; baseline %d, %d)", live, ready, baseLive, baseReady)
	})
	requireAlive(t, s)
}

// ---- SLOWLOG ----

func TestExecutionSlowlog(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	require.NoError(t, c.ConfigSet(bg(), "slowlog-log-slower-than", "100000").Err())
	require.NoError(t, c.Do(bg(), "SLOWLOG", "RESET").Err())

	script := "GB('ShardsIDReader').foreach(lambda x: __import__('time').sleep(0.3)).run()"
	require.Equal(t, []string{"1"}, gbRunStrings(t, c, script))

	logs, err := c.SlowLogGet(bg(), 128).Result()
	require.NoError(t, err)
	var found []redis.SlowLog
	for _, l := range logs {
		if len(l.Args) > 0 && strings.EqualFold(l.Args[0], "RG.PYEXECUTE") {
			found = append(found, l)
		}
	}
	require.Len(t, found, 1, "SLOWLOG: %+v", logs)
	require.Equal(t, []string{"RG.PYEXECUTE", script}, found[0].Args)
	require.GreaterOrEqual(t, found[0].Duration, 100*time.Millisecond, "the blocked time counts")
}
