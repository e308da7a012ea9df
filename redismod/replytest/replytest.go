// Package replytest is a fake of redismod's reply writer for unit tests of
// what gears replies, without a server.
package replytest

import "errors"

// Status is a simple-string reply.
type Status string

// Tree records a reply as nested values: bulk strings as string, statuses
// as Status, errors as error, integers as int64, nil, arrays as []any.
type Tree struct {
	Out   []any // the top-level replies, in order
	stack []*[]any
	want  []int
}

func (t *Tree) add(v any) {
	if len(t.stack) == 0 {
		t.Out = append(t.Out, v)
		return
	}
	top := t.stack[len(t.stack)-1]
	*top = append(*top, v)
	if len(*top) == t.want[len(t.want)-1] {
		t.stack, t.want = t.stack[:len(t.stack)-1], t.want[:len(t.want)-1]
		t.add(*top)
	}
}

func (t *Tree) Error(msg string) { t.add(errors.New(msg)) }
func (t *Tree) Simple(s string)  { t.add(Status(s)) }
func (t *Tree) Bulk(s string)    { t.add(s) }
func (t *Tree) Int(v int64)      { t.add(v) }
func (t *Tree) Null()            { t.add(nil) }

// Array opens an array that the next n replies fill.
func (t *Tree) Array(n int) {
	if n == 0 {
		t.add([]any{})
		return
	}
	l := make([]any, 0, n)
	t.stack, t.want = append(t.stack, &l), append(t.want, n)
}

// Open reports whether an array still waits for elements (a short reply).
func (t *Tree) Open() bool { return len(t.stack) > 0 }

// Fields reads a flat [name, value, ...] array as a map.
func Fields(v any) map[string]any {
	l, _ := v.([]any)
	m := map[string]any{}
	for i := 0; i+1 < len(l); i += 2 {
		if k, ok := l[i].(string); ok {
			m[k] = l[i+1]
		}
	}
	return m
}
