package session

import (
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestThreadsRunJobsOnReusedLockedThreads(t *testing.T) {
	th := NewThreads(1, func(any) {})
	tids := make(chan int, 10)
	for range 10 {
		done := make(chan struct{})
		th.Go(func() {
			tids <- syscall.Gettid()
			close(done)
		})
		<-done
		time.Sleep(time.Millisecond) // let the worker go idle again
	}
	close(tids)
	seen := map[int]bool{}
	for tid := range tids {
		seen[tid] = true
	}
	assert.Less(t, len(seen), 10, "sequential jobs reuse idle worker threads")
}

func TestThreadsRunConcurrentJobsInParallel(t *testing.T) {
	th := NewThreads(0, func(any) {})
	var wg sync.WaitGroup
	release := make(chan struct{})
	started := make(chan struct{}, 3)
	for range 3 {
		wg.Add(1)
		th.Go(func() {
			defer wg.Done()
			started <- struct{}{}
			<-release
		})
	}
	for range 3 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("a job waited for another one: workers must be added when none is idle")
		}
	}
	close(release)
	wg.Wait()
	assert.GreaterOrEqual(t, th.Running(), 3)
}

func TestThreadsRecoverPanics(t *testing.T) {
	got := make(chan any, 1)
	th := NewThreads(1, func(r any) { got <- r })
	th.Go(func() { panic("boom") })
	require.Equal(t, "boom", <-got)
	done := make(chan struct{})
	th.Go(func() { close(done) })
	<-done
}

func TestSessionEndsWithLastReference(t *testing.T) {
	s := New("id", "desc", nil)
	ended := make(chan struct{})
	s.OnEnd(func() { close(ended) })
	require.True(t, s.Acquire())
	assert.False(t, s.Release(func(fn func()) { go fn() }))
	assert.True(t, s.Release(func(fn func()) { go fn() }))
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("OnEnd did not run")
	}
	assert.False(t, s.Acquire(), "an ended session cannot be acquired again")
	r := NewRegistry()
	assert.True(t, r.Add(s))
	_, ok := r.Acquire("id")
	assert.False(t, ok, "a registry lookup never hands out an ended session")
	assert.False(t, r.Add(New("id", "", nil)), "ids are unique")
	r.Remove(s)
	assert.Equal(t, 0, r.Len())
	assert.Len(t, RandomID(), 40)
}
