package redismod

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"gears/redismod/replytest"
)

func TestWriteValueShapes(t *testing.T) {
	r := &replytest.Tree{}
	WriteValue(r, []any{
		"s", []byte("b"), int64(7), true, false, 1.5, nil,
		[]string{"x", "y"}, map[string]any{"+": "OK"}, map[string]any{"-": "ERR no"},
		map[string]any{"a": 1, "b": 2}, uint8(3), []any{},
	})
	assert.False(t, r.Open())
	assert.Equal(t, []any{[]any{
		"s", "b", int64(7), int64(1), int64(0), "1.500000", nil,
		[]any{"x", "y"}, replytest.Status("OK"), errors.New("ERR no"),
		"PY RECORD", "3", []any{},
	}}, r.Out)
}
