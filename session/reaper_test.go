package session

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReaperWaitsForIdle(t *testing.T) {
	var idle atomic.Bool
	var mu sync.Mutex
	var ran []int
	r := NewReaper(func(fn func()) { go fn() }, idle.Load, func() int { return 3 })
	end := func(i int) func() {
		return func() {
			mu.Lock()
			ran = append(ran, i)
			mu.Unlock()
		}
	}
	for i := range 3 {
		r.Go(end(i))
	}
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	assert.Empty(t, ran, "nothing ends while busy")
	mu.Unlock()
	assert.Equal(t, 3, r.Pending())

	r.Go(end(3)) // over the bound: the oldest ends at once
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(ran) == 1 }, time.Second, time.Millisecond)
	mu.Lock()
	assert.Equal(t, []int{0}, ran)
	mu.Unlock()

	idle.Store(true)
	require.Eventually(t, func() bool { return r.Pending() == 0 }, time.Second, time.Millisecond)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(ran) == 4 }, time.Second, time.Millisecond)
	mu.Lock()
	assert.Equal(t, []int{0, 1, 2, 3}, ran, "in order, once idle")
	mu.Unlock()
}
