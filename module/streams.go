// StreamReader registrations: when a stream's next batch runs, and what
// follows a batch (the next one, a retry, a pause).

package main

import (
	"strings"
	"time"

	"gears/builder"
)

// streamWaker starts a batch of r on stream key later (a duration timer).
func streamWaker(r *builder.Registration, key string) func() {
	return func() { runStream(r, key, false) }
}

// runStream runs one batch of stream key: inline for a sync registration
// (inside the xadd), else on an execution thread.
func runStream(r *builder.Registration, key string, inline bool) {
	payload := []any{key}
	if !inline || eventDepth() >= maxEventDepth {
		startBatch(r, payload)
		return
	}
	if ok, pendingOnly := r.StreamMayRun(key, true); ok {
		runSync(r, []any{key, pendingOnly})
	}
}

// streamBatchDone decides what follows a batch of a StreamReader
// registration: the next batch, a retry later, or nothing.
func streamBatchDone(r *builder.Registration, payload any, o builder.Outcome, err error) {
	key := streamKeyOf(payload)
	ok := err == nil && o.StreamAcked
	if len(o.Errors) > 0 && strings.HasPrefix(o.Errors[0], "PAUSE") {
		r.SetStreamPaused(true) // RedisGears' convention: an error "PAUSE..." pauses it
	}
	if !ok || r.Removed() {
		// A failed batch stops the registration's other streams until
		// its retry: their batches not started yet are aborted.
		defer abortUnstarted(r)
	}
	if r.Removed() { // unregistered: the batch under way was the last
		r.StreamFinished(key, o.StreamRead, false, o.StreamLag, nil)
		return
	}
	again, retry := r.StreamFinished(key, o.StreamRead, ok, o.StreamLag, streamWaker(r, key))
	switch {
	case again:
		startBatch(r, payload)
	case retry > 0:
		retryStream(r, key, retry)
	}
}

// retryStream runs a failed batch again after the retry interval; a replica
// waits until it is a master again (only masters run registrations).
func retryStream(r *builder.Registration, key string, after time.Duration) {
	time.AfterFunc(after, func() {
		if r.Removed() {
			return
		}
		if !isMaster() {
			retryStream(r, key, after)
			return
		}
		for _, k := range r.StreamRetry(key) {
			startBatch(r, []any{k})
		}
	})
}

// streamKeyOf is the stream of a StreamReader batch's payload.
func streamKeyOf(payload any) string {
	p, _ := payload.([]any)
	if len(p) == 0 {
		return ""
	}
	key, _ := p[0].(string)
	return key
}

// startStreams runs a StreamReader registration over the streams that
// exist already: their entries are processed to the end now (at
// registration, after a restart, on promotion), as RedisGears does.
func startStreams(r *builder.Registration) {
	cursor := "0"
	for {
		v, err := call("SCAN", cursor, "MATCH", globOf(r.Prefix), "TYPE", "stream", "COUNT", "1000")
		reply, _ := v.([]any)
		if err != nil || len(reply) != 2 {
			return
		}
		cursor, _ = reply[0].(string)
		for _, kv := range asList(reply[1]) {
			key, _ := kv.(string)
			if !r.Matches(key, "xadd") || !mayRead(r.Session, key) {
				continue
			}
			n, _ := call("XLEN", key)
			if r.StreamCatchUp(key, int(max(int64Of(n), 1)), streamWaker(r, key)) {
				startBatch(r, []any{key})
			}
		}
		if cursor == "0" {
			return
		}
	}
}

// globOf is a SCAN pattern covering a registration prefix.
func globOf(prefix string) string {
	if strings.HasSuffix(prefix, "*") {
		return prefix
	}
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(prefix)
}

// startBatch queues a StreamReader batch (one per stream at a time).
func startBatch(r *builder.Registration, payload any) {
	if _, err := g.engine.StartBatch(r, payload); err == nil {
		r.Triggered()
	}
}
