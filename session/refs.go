package session

import "sync/atomic"

// Refs counts the references to something that ends with its last one: once
// the count has fallen to zero it can never be acquired again, so whoever
// finds it through a lookup that races its end either gets a live one or
// nothing. The zero value has no reference and cannot be acquired.
type Refs struct{ n atomic.Int32 }

// Set starts the count at n (before anyone else can see it).
func (r *Refs) Set(n int32) { r.n.Store(n) }

// Acquire adds a reference unless the count has fallen to zero.
func (r *Refs) Acquire() bool {
	for {
		n := r.n.Load()
		if n <= 0 {
			return false
		}
		if r.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release drops a reference and reports whether it was the last one.
func (r *Refs) Release() bool { return r.n.Add(-1) == 0 }

// Count is the number of references held now.
func (r *Refs) Count() int { return int(r.n.Load()) }
