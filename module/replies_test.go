package main

// Unit tests of what gears replies, written to a fake of the binding's
// reply writer: no server needed.

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gears/builder"
	"gears/config"
	"gears/redismod/replytest"
	"gears/session"
)

func written(t *testing.T, write func(w *replytest.Tree)) any {
	t.Helper()
	w := &replytest.Tree{}
	write(w)
	require.False(t, w.Open(), "an array got fewer elements than it announced")
	require.Len(t, w.Out, 1, "one reply")
	return w.Out[0]
}

func TestTriggerReplies(t *testing.T) {
	assert.Equal(t, errors.New("ERR Could not trigger execution, boom"),
		written(t, func(w *replytest.Tree) { replyTrigger(w, builder.Outcome{}, errors.New("boom")) }))
	assert.Equal(t, errors.New("first"), written(t, func(w *replytest.Tree) {
		replyTrigger(w, builder.Outcome{Results: []any{"r"}, Errors: []string{"first", "second"}}, nil)
	}))
	// No results is an empty array, not nil.
	assert.Equal(t, []any{}, written(t, func(w *replytest.Tree) { replyTrigger(w, builder.Outcome{}, nil) }))
	assert.Equal(t, []any{"a", int64(1), replytest.Status("OK")}, written(t, func(w *replytest.Tree) {
		replyTrigger(w, builder.Outcome{Results: []any{"a", int64(1), map[string]any{"+": "OK"}}}, nil)
	}))
}

func TestHookReplies(t *testing.T) {
	assert.Equal(t, "v", written(t, func(w *replytest.Tree) { replyHook(w, []any{"v"}, nil, nil) }))
	assert.Equal(t, errors.New("Command hook must return exactly one result"),
		written(t, func(w *replytest.Tree) { replyHook(w, []any{"a", "b"}, nil, nil) }))
	assert.Equal(t, errors.New("e1"), written(t, func(w *replytest.Tree) { replyHook(w, []any{"a"}, []string{"e1"}, nil) }))
}

func TestResultsReply(t *testing.T) {
	got := written(t, func(w *replytest.Tree) {
		replyResults(w, builder.Snapshot{Results: []any{"x", int64(2)}, Errors: []string{"bad"}})
	})
	assert.Equal(t, []any{[]any{"x", int64(2)}, []any{"bad"}}, got)
}

func TestConfigEntriesReply(t *testing.T) {
	got := written(t, func(w *replytest.Tree) {
		replyEntries(w, []config.Entry{{Err: "Unsupported config parameter: X"}, {IsInt: true, Int: 5}, {Str: "s"}})
	})
	assert.Equal(t, []any{errors.New("Unsupported config parameter: X"), int64(5), "s"}, got)
}

// RG.DUMPREGISTRATIONS' shape per reader, as RedisGears 1.2 gives it.
func TestRegistrationFields(t *testing.T) {
	sess := session.New("sid", "", nil)
	keys := &builder.Registration{ID: "0000000000000000000000000000000000000000-1", Reader: "KeysReader", Mode: "async",
		Session: sess, Prefix: "user:*", EventTypes: []string{"set"}}
	got := written(t, func(w *replytest.Tree) { writeRegistrationFields(w, keys, builder.Stats{LastError: "oops"}, false) })
	fields := replytest.Fields(got)
	assert.Len(t, got, 10)
	assert.Equal(t, keys.ID, fields["id"])
	assert.Equal(t, nil, fields["desc"])
	data := replytest.Fields(fields["RegistrationData"])
	assert.Len(t, fields["RegistrationData"], 20)
	assert.Equal(t, "async", data["mode"])
	assert.Equal(t, "oops", data["lastError"])
	assert.Equal(t, "0", data["avgRunDurationMS"])
	args := replytest.Fields(data["args"])
	assert.Equal(t, "user:*", args["regex"])
	assert.Equal(t, []any{"set"}, args["eventTypes"])
	assert.Nil(t, args["keyTypes"])

	cmd := &builder.Registration{ID: "x-2", Reader: "CommandReader", Mode: "sync", Session: sess, Trigger: "t", Inorder: true}
	data = replytest.Fields(replytest.Fields(written(t, func(w *replytest.Tree) {
		writeRegistrationFields(w, cmd, builder.Stats{}, false)
	}))["RegistrationData"])
	assert.Nil(t, data["lastError"])
	assert.Equal(t, map[string]any{"trigger": "t", "inorder": int64(1)}, replytest.Fields(data["args"]))

	stream := &builder.Registration{ID: "x-3", Reader: "StreamReader", Mode: "async", Session: sess, Prefix: "s",
		Stream: builder.StreamArgs{Batch: 1, Policy: "continue"}}
	got = written(t, func(w *replytest.Tree) { writeRegistrationFields(w, stream, builder.Stats{}, false) })
	assert.Len(t, replytest.Fields(got)["RegistrationData"], 26)
	args = replytest.Fields(replytest.Fields(replytest.Fields(got)["RegistrationData"])["args"])
	assert.Equal(t, "continue", args["onFailedPolicy"])
	assert.Equal(t, int64(1), args["batchSize"])
}
