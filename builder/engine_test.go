package builder

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gears/session"
)

// goThreads stands in for locked OS threads: the engine's logic does not
// depend on them.
func goThreads(fn func()) { go fn() }

func newTestEngine(t *testing.T, workers int, max int64, run Runner) *Engine {
	t.Helper()
	return NewEngine(StandaloneShardID, workers, func() int64 { return max }, func() int64 { return max }, goThreads, attachNothing(run),
		func(*Execution, uint64) {})
}

// attachNothing runs executions with run, in sessions without interpreters.
func attachNothing(run Runner) Attacher {
	return func(*session.Session) (Runner, func()) { return run, func() {} }
}

func wait(t *testing.T, e *Execution) {
	t.Helper()
	select {
	case <-e.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("execution %s did not finish", e.ID)
	}
}

func TestExecutionRunsAndKeepsOutcome(t *testing.T) {
	en := newTestEngine(t, 1, 10, func(e *Execution) (Outcome, error) {
		return Outcome{Results: []any{"a", int64(1)}, Errors: []string{"boom"}, Steps: []time.Duration{time.Millisecond}}, nil
	})
	e := en.Create(session.New("s", "", nil), 1, []Step{{Type: "reader"}}, "", true)
	// As RedisGears, execution ids count from 0.
	assert.Equal(t, StandaloneShardID+"-0", e.ID)
	assert.Equal(t, Created, e.Status())
	en.Start(e)
	wait(t, e)
	s := e.Snapshot()
	assert.Equal(t, Done, s.Status)
	assert.Equal(t, []any{"a", int64(1)}, s.Results)
	assert.Equal(t, []string{"boom"}, s.Errors)
	assert.Equal(t, time.Millisecond, s.Steps[0].Duration)
	assert.Len(t, en.List(), 1)
	require.NoError(t, en.Drop(e.ID))
	assert.Empty(t, en.List())
	assert.EqualError(t, en.Drop(e.ID), "execution plan does not exist")
}

func TestRunnerErrorBecomesTheOnlyError(t *testing.T) {
	en := newTestEngine(t, 1, 10, func(*Execution) (Outcome, error) { return Outcome{}, errors.New("no interpreter") })
	e := en.Create(session.New("s", "", nil), 1, nil, "", false)
	en.Start(e)
	wait(t, e)
	assert.Equal(t, []string{"no interpreter"}, e.Snapshot().Errors)
	assert.Empty(t, en.List(), "unkept executions are not listed")
}

func TestDropRefusesRunningExecution(t *testing.T) {
	release := make(chan struct{})
	en := newTestEngine(t, 1, 10, func(*Execution) (Outcome, error) { <-release; return Outcome{}, nil })
	e := en.Create(session.New("s", "", nil), 1, nil, "", true)
	en.Start(e)
	require.Eventually(t, func() bool { return e.Status() == Running }, 5*time.Second, time.Millisecond)
	assert.EqualError(t, en.Drop(e.ID), "can not drop a not yet finished execution, abort it first.")
	close(release)
	wait(t, e)
	assert.NoError(t, en.Drop(e.ID))
}

func TestAbortQueuedExecutionNeverRuns(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	ran := map[string]bool{}
	en := newTestEngine(t, 1, 10, func(e *Execution) (Outcome, error) {
		mu.Lock()
		ran[e.ID] = true
		mu.Unlock()
		<-release
		return Outcome{}, nil
	})
	first := en.Create(session.New("s", "", nil), 1, nil, "", true)
	second := en.Create(session.New("s", "", nil), 2, nil, "", true)
	en.Start(first)
	en.Start(second)
	require.Eventually(t, func() bool { return first.Status() == Running }, 5*time.Second, time.Millisecond)
	assert.Equal(t, Created, second.Status())
	require.NoError(t, en.Abort(second.ID))
	assert.Equal(t, Aborted, second.Status())
	close(release)
	wait(t, first)
	time.Sleep(50 * time.Millisecond) // the worker dequeues the aborted one
	mu.Lock()
	defer mu.Unlock()
	assert.False(t, ran[second.ID])
	assert.EqualError(t, en.Abort("nosuch"), "execution does not exist")
}

func TestAbortRunningExecutionInterruptsItsThread(t *testing.T) {
	interrupted := make(chan uint64, 1)
	stop := make(chan struct{})
	en := NewEngine(StandaloneShardID, 1, func() int64 { return 10 }, func() int64 { return 10 }, goThreads,
		attachNothing(func(e *Execution) (Outcome, error) {
			if !e.SetThread(42) {
				return Outcome{}, errors.New("aborted")
			}
			<-stop
			e.SetThread(0)
			return Outcome{Errors: []string{"Execution was aborted"}}, nil
		}),
		func(e *Execution, thread uint64) {
			interrupted <- thread
			close(stop)
		})
	e := en.Create(session.New("s", "", nil), 1, nil, "", true)
	en.Start(e)
	require.Eventually(t, func() bool { return e.RunsOn(42) }, 5*time.Second, time.Millisecond)
	require.NoError(t, en.Abort(e.ID))
	assert.Equal(t, uint64(42), <-interrupted)
	wait(t, e)
	assert.Equal(t, Done, e.Status())
	assert.False(t, e.RunsOn(42))
}

func TestMaxExecutionsEvictsOldestFinished(t *testing.T) {
	en := newTestEngine(t, 2, 3, func(*Execution) (Outcome, error) { return Outcome{}, nil })
	var ids []string
	for i := range 4 {
		e := en.Create(session.New("s", "", nil), int64(i), nil, "", true)
		en.Start(e)
		wait(t, e)
		ids = append(ids, e.ID)
	}
	var listed []string
	for _, e := range en.List() {
		listed = append(listed, e.ID)
	}
	assert.Equal(t, ids[1:], listed)
	_, ok := en.Get(ids[0])
	assert.False(t, ok)
}

// The Redis main thread queues event executions while holding the lock the
// execution threads may wait for: Start must never block, however long the
// queue.
func TestStartNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	en := newTestEngine(t, 1, 10, func(*Execution) (Outcome, error) { <-release; return Outcome{}, nil })
	sess := session.New("s", "", nil)
	done := make(chan struct{})
	go func() {
		for i := range 300000 {
			en.Start(en.Create(sess, int64(i), nil, "", false))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Start blocked while the execution threads were busy")
	}
	close(release)
	require.Eventually(t, func() bool { return en.Len() == 0 }, 30*time.Second, 10*time.Millisecond)
}

func TestExecutionsOfOneSessionQueuedTogetherShareAnAttach(t *testing.T) {
	var mu sync.Mutex
	var log []string
	release := make(chan struct{})
	run := func(e *Execution) (Outcome, error) {
		if e.Desc == "first" {
			<-release
		}
		mu.Lock()
		log = append(log, e.Desc)
		mu.Unlock()
		return Outcome{}, nil
	}
	en := NewEngine(StandaloneShardID, 1, func() int64 { return 10 }, func() int64 { return 10 }, goThreads,
		func(s *session.Session) (Runner, func()) {
			mu.Lock()
			log = append(log, "attach "+s.ID)
			mu.Unlock()
			return run, func() {
				mu.Lock()
				log = append(log, "detach "+s.ID)
				mu.Unlock()
			}
		}, func(*Execution, uint64) {})
	s1, s2 := session.New("s1", "", nil), session.New("s2", "", nil)
	first := en.Create(s1, 1, nil, "first", false)
	en.Start(first)
	require.Eventually(t, func() bool { return first.Status() == Running }, 5*time.Second, time.Millisecond)
	var last *Execution
	for _, q := range []struct {
		s    *session.Session
		desc string
	}{{s1, "a"}, {s1, "b"}, {s2, "c"}, {s1, "d"}} {
		last = en.Create(q.s, 1, nil, q.desc, false)
		en.Start(last)
	}
	close(release)
	wait(t, last)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(log) == 11 }, 5*time.Second, time.Millisecond)
	assert.Equal(t, []string{
		"attach s1", "first", "a", "b", "detach s1",
		"attach s2", "c", "detach s2",
		"attach s1", "d", "detach s1",
	}, log, "first in, first out; one attach per run of one session")
}

// An unregistered registration lives on while an execution of it is queued
// or running, and is let go of once, after the last one; then no event can
// create an execution of it any more.
func TestRegistrationOutlivesItsExecutions(t *testing.T) {
	release := make(chan struct{})
	en := newTestEngine(t, 1, 10, func(*Execution) (Outcome, error) {
		<-release
		return Outcome{}, nil
	})
	released := make(chan struct{}, 2)
	r := &Registration{ID: "r", Session: session.New("s", "", nil), OnRelease: func() { released <- struct{}{} }}
	_, err := en.StartEvent(r, nil, 1)
	require.ErrorIs(t, err, ErrLetGo, "a registration that was never made live runs nothing")
	regs := NewRegistrations()
	require.NoError(t, regs.Add([]*Registration{r}, nil))
	e, err := en.StartEvent(r, nil, 1)
	require.NoError(t, err)
	_, ok := regs.Remove("r")
	require.True(t, ok)
	en.ForgetRegistration(r)
	select {
	case <-released:
		t.Fatal("released while its execution still runs")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	wait(t, e)
	select {
	case <-released:
	case <-time.After(5 * time.Second):
		t.Fatal("not released after its last execution")
	}
	_, err = en.StartEvent(r, nil, 1)
	require.ErrorIs(t, err, ErrLetGo, "a released registration runs nothing")
	require.False(t, r.Acquire())
	select {
	case <-released:
		t.Fatal("released twice")
	case <-time.After(20 * time.Millisecond):
	}
}

// An ended session can start nothing.
func TestEndedSessionCreatesNoExecution(t *testing.T) {
	en := newTestEngine(t, 1, 10, func(*Execution) (Outcome, error) { return Outcome{}, nil })
	s := session.New("s", "", nil)
	require.True(t, s.Release(goThreads))
	require.Nil(t, en.Create(s, 1, nil, "", true))
	assert.Zero(t, en.Len())
}

// Ids restored or replicated from elsewhere cannot push the sequence to
// overflow into negative ids.
func TestRaiseSeqIgnoresAbsurdIDs(t *testing.T) {
	en := newTestEngine(t, 0, 10, nil)
	en.RaiseRegistrationSeq(41)
	en.RaiseRegistrationSeq(math.MaxInt64)
	en.RaiseRegistrationSeq(maxSeq + 1)
	assert.Equal(t, StandaloneShardID+"-42", en.NextRegistrationID())
	en.RaiseRegistrationSeq(maxSeq)
	assert.Equal(t, StandaloneShardID+"-9007199254740993", en.NextRegistrationID())
}

// Beyond the queue's limit, events make no execution.
func TestEventsBeyondTheQueueLimitAreRefused(t *testing.T) {
	en := newTestEngine(t, 0, 10, nil) // no worker: everything stays queued
	en.LimitQueue(func() int64 { return 3 })
	r := &Registration{ID: "r", Session: session.New("s", "", nil)}
	require.NoError(t, NewRegistrations().Add([]*Registration{r}, nil))
	for range 3 {
		_, err := en.StartEvent(r, nil, 1)
		require.NoError(t, err)
	}
	_, err := en.StartEvent(r, nil, 1)
	require.ErrorIs(t, err, ErrQueueFull)
	_, err = en.CreateEvent(r, nil, 1)
	require.ErrorIs(t, err, ErrQueueFull)
	assert.Equal(t, 3, en.Queued())
}

// An execution that waits for async records holds no thread, stays
// running, and goes on when woken: also when the wake comes first.
func TestWaitingExecutionResumes(t *testing.T) {
	for _, early := range []bool{false, true} {
		var en *Engine
		runs := 0
		en = newTestEngine(t, 1, 10, func(e *Execution) (Outcome, error) {
			runs++
			if sid, _ := e.Waiting(); sid == 0 {
				if early {
					en.Wake(WaitKey{SID: 7}) // before the engine knows it waits
				}
				return Outcome{Suspended: 7}, nil
			}
			return Outcome{Results: []any{"done"}}, nil
		})
		e := en.Create(session.New("s", "", nil), 1, nil, "", true)
		en.Start(e)
		if !early {
			time.Sleep(50 * time.Millisecond)
			assert.Equal(t, Running, e.Status())
			assert.False(t, e.Finished())
			en.Wake(WaitKey{SID: 7})
		}
		wait(t, e)
		assert.Equal(t, 2, runs)
		assert.Equal(t, []any{"done"}, e.Snapshot().Results)
	}
}

// Wakes of ids nobody waits for are kept only up to a bound.
func TestEarlyWakesAreBounded(t *testing.T) {
	en := newTestEngine(t, 0, 10, nil)
	for i := int64(1); i <= 10*maxEarly; i++ {
		en.Wake(WaitKey{SID: i})
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	assert.Len(t, en.early[nil], maxEarly)
}
