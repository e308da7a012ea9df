package interp

/*
#include "interp.h"
*/
import "C"

import "unsafe"

// Trigger calls module.fn (runtime's _run_event) for a trigger with token
// and the host command's arguments argv[1:argc) (host handles, see
// pyhost.h). When the plan succeeded with results a reply can carry, it
// writes them to the host's ctx itself and returns replied; otherwise it
// returns what fn returned, converted as Call converts results.
func (t *Thread) Trigger(module, fn string, token int64, ctx, argv uintptr, argc int) (replied bool, result any, err error) {
	f, err := t.function(module, fn)
	if err != nil {
		return false, nil, err
	}
	var res *C.PyObject
	switch C.w_py_trigger(C.uintptr_t(ctx), f, C.longlong(token), C.uintptr_t(argv), C.int(argc), &res) {
	case C.TRIGGER_REPLIED:
		return true, nil, nil
	case C.TRIGGER_RAISED:
		return false, nil, t.fetchError()
	}
	result, err = t.take(res)
	return false, result, err
}

// KeyEvent calls module.fn (runtime's _run_event) for a keyspace event with
// token, [key, event] and keep. A None result (no errors, nothing kept)
// stays in C: none is true.
func (t *Thread) KeyEvent(module, fn string, token int64, key, event string, keep bool) (result any, none bool, err error) {
	f, err := t.function(module, fn)
	if err != nil {
		return nil, false, err
	}
	k := 0
	if keep {
		k = 1
	}
	var res *C.PyObject
	switch C.py_key_event(f, C.longlong(token), cData(key), C.size_t(len(key)), cData(event), C.size_t(len(event)), C.int(k), &res) {
	case C.EVENT_RAISED:
		return nil, false, t.fetchError()
	case C.EVENT_NONE:
		return nil, true, nil
	}
	result, err = t.take(res)
	return result, false, err
}

// take converts a new reference as Call converts results, and drops it.
func (t *Thread) take(p *C.PyObject) (any, error) {
	defer C.w_Py_DecRef(p)
	return toGo(p)
}

// cData points at s's bytes for a C call that does not keep them.
func cData(s string) *C.char {
	if s == "" {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}
