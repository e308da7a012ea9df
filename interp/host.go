package interp

/*
#include "interp.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// HostFunc is a Go function callable from Python as _gears.<name>. It runs
// without the GIL (so it may wait for the Redis lock) and must not touch
// Python objects; its arguments and result are plain Go values:
// nil, bool, int64, float64, string, []byte, []any and map[string]any.
type HostFunc func(c *Call) (any, error)

// Call is one invocation of a host function.
type Call struct {
	Interp *Interp
	Args   []any
}

type hostEntry struct {
	name     string
	fn       HostFunc
	keepsGIL bool
}

type nativeEntry struct {
	name  string
	fn    unsafe.Pointer
	flags int
}

var (
	hostFuncs   []hostEntry
	nativeFuncs []nativeEntry
)

// RegisterHost adds a Go host function to every interpreter created after
// the call. Register everything before the first interpreter is created.
func RegisterHost(name string, fn HostFunc) { registerHost(hostEntry{name: name, fn: fn}) }

// RegisterHostKeepingGIL is RegisterHost for a function that runs holding
// the GIL, so the Python code that called it cannot be overtaken by another
// thread of its interpreter before it returns. It must not wait for the
// host's lock.
func RegisterHostKeepingGIL(name string, fn HostFunc) {
	registerHost(hostEntry{name: name, fn: fn, keepsGIL: true})
}

func registerHost(e hostEntry) {
	if len(hostFuncs) >= C.PY_MAX_HOST_FUNCS {
		panic("too many host functions")
	}
	cname := C.CString(e.name) // kept for the life of the process
	C.py_set_host_def(C.int(len(hostFuncs)), cname)
	hostFuncs = append(hostFuncs, e)
}

// UseHost gives the natives of _gears that reach the host (natives.c) the
// host's table (a const pyhost *, see pyhost.h) and adds them to every
// interpreter. Call it once, before the first interpreter is created.
func UseHost(table uintptr) {
	C.py_use_host(C.uintptr_t(table))
	registerNative("execute", C.gears_execute, C.METH_VARARGS)
	registerNative("atomic_enter", C.gears_atomic_enter, C.METH_NOARGS)
	registerNative("atomic_exit", C.gears_atomic_exit, C.METH_NOARGS)
	registerNative("in_atomic", C.gears_in_atomic, C.METH_NOARGS)
	registerNative("key_scanner", C.gears_key_scanner, C.METH_VARARGS)
	registerNative("scan_next", C.gears_scan_next, C.METH_O)
	registerNative("read_key", C.gears_read_key, C.METH_VARARGS)
	registerNative("session_key", C.gears_session_key, C.METH_NOARGS)
}

// registerNative adds a C function (PyCFunction with the given METH_* flags)
// to every interpreter; it receives the interpreter's session cell as an int
// `self` (read it back with the C helper py_native_slot).
func registerNative(name string, fn unsafe.Pointer, flags int) {
	if len(nativeFuncs) >= C.PY_MAX_HOST_FUNCS {
		panic("too many native functions")
	}
	cname := C.CString(name)
	C.py_set_native_def(C.int(len(nativeFuncs)), cname, fn, C.int(flags))
	nativeFuncs = append(nativeFuncs, nativeEntry{name, fn, flags})
}

func installHostFuncs(t *Thread) error {
	d, err := t.ModuleDict("_gears")
	if err != nil {
		return err
	}
	for id := range hostFuncs {
		if C.py_add_host(d.p, C.int(id), C.longlong(t.interp.handle<<8|int64(id))) != 0 {
			return t.fetchError()
		}
	}
	for id := range nativeFuncs {
		if C.py_add_native(d.p, C.int(id), t.interp.slot) != 0 {
			return t.fetchError()
		}
	}
	return nil
}

//export goHostCall
func goHostCall(self, args *C.PyObject) (result *C.PyObject) {
	defer func() {
		if r := recover(); r != nil {
			PanicHandler("host function", r)
			result = raise(fmt.Sprintf("internal error in host function: %v", r))
		}
	}()
	v := int64(C.w_PyLong_AsLongLong(self))
	fid, handle := int(v&0xff), v>>8
	if fid >= len(hostFuncs) {
		return raise("unknown host function")
	}
	itv, ok := registry.Load(handle)
	if !ok {
		return raise("interpreter is gone")
	}
	argv, err := tupleToGo(args)
	if err != nil {
		return raise(err.Error())
	}
	call := &Call{Interp: itv.(*Interp), Args: argv}
	h := hostFuncs[fid]
	var out any
	var ferr error
	if h.keepsGIL {
		out, ferr = runHost(h, call)
	} else {
		// Without the GIL: the host function may wait for the host's lock.
		ts := C.w_PyEval_SaveThread()
		left := C.py_leave_python()
		out, ferr = runHost(h, call)
		C.py_return_to_python(left)
		C.w_PyEval_RestoreThread(ts)
	}
	if ferr != nil {
		return raise(ferr.Error())
	}
	return toPy(out)
}

func runHost(h hostEntry, c *Call) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			PanicHandler("host function "+h.name, r)
			err = fmt.Errorf("internal error in %s: %v", h.name, r)
		}
	}()
	return h.fn(c)
}

// raise sets _gears.error (GearsError) or RuntimeError and returns NULL.
func raise(msg string) *C.PyObject {
	cmsg := C.CString(msg)
	defer C.free(unsafe.Pointer(cmsg))
	return C.py_raise_gears(cmsg, C.Py_ssize_t(len(msg)))
}

func tupleToGo(t *C.PyObject) ([]any, error) {
	n := int(C.w_PyTuple_Size(t))
	out := make([]any, n)
	for i := range n {
		v, err := toGo(C.w_PyTuple_GetItem(t, C.Py_ssize_t(i)))
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// toGo converts a Python value; anything without a Go counterpart becomes
// its str().
func toGo(o *C.PyObject) (any, error) {
	switch C.py_kind(o) {
	case C.PYK_NONE:
		return nil, nil
	case C.PYK_BOOL:
		return C.w_PyLong_AsLongLong(o) != 0, nil
	case C.PYK_INT:
		v := int64(C.w_PyLong_AsLongLong(o))
		if v == -1 && C.w_PyErr_Occurred() != nil {
			C.w_PyErr_Clear()
			return nil, fmt.Errorf("integer out of range")
		}
		return v, nil
	case C.PYK_FLOAT:
		return float64(C.w_PyFloat_AsDouble(o)), nil
	case C.PYK_STR:
		s, ok := goString(o)
		if !ok {
			return nil, fmt.Errorf("string is not valid UTF-8")
		}
		return s, nil
	case C.PYK_BYTES:
		var p *C.char
		var n C.Py_ssize_t
		C.w_PyBytes_AsStringAndSize(o, &p, &n)
		return C.GoBytes(unsafe.Pointer(p), C.int(n)), nil
	case C.PYK_BYTEARRAY:
		return C.GoBytes(unsafe.Pointer(C.w_PyByteArray_AsString(o)), C.int(C.w_PyByteArray_Size(o))), nil
	case C.PYK_LIST:
		n := int(C.w_PyList_Size(o))
		out := make([]any, n)
		for i := range n {
			v, err := toGo(C.w_PyList_GetItem(o, C.Py_ssize_t(i)))
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case C.PYK_TUPLE:
		return tupleToGo(o)
	case C.PYK_DICT:
		out := map[string]any{}
		var pos C.Py_ssize_t
		var k, v *C.PyObject
		for C.w_PyDict_Next(o, &pos, &k, &v) != 0 {
			gv, err := toGo(v)
			if err != nil {
				return nil, err
			}
			out[strOf(k)] = gv
		}
		return out, nil
	}
	return strOf(o), nil
}

// toPy converts a Go value to a new Python reference, or returns nil with a
// Python exception set.
func toPy(v any) *C.PyObject {
	switch x := v.(type) {
	case nil:
		return C.py_new_none()
	case Object: // a borrowed object of this interpreter: passed as it is
		C.w_Py_IncRef(x.p)
		return x.p
	case bool:
		if x {
			return C.py_bool(1)
		}
		return C.py_bool(0)
	case int:
		return C.w_PyLong_FromLongLong(C.longlong(x))
	case int64:
		return C.w_PyLong_FromLongLong(C.longlong(x))
	case float64:
		return C.w_PyFloat_FromDouble(C.double(x))
	case string:
		return C.w_PyUnicode_FromStringAndSize((*C.char)(unsafe.Pointer(unsafe.StringData(x))), C.Py_ssize_t(len(x)))
	case []byte:
		return C.w_PyBytes_FromStringAndSize((*C.char)(unsafe.Pointer(unsafe.SliceData(x))), C.Py_ssize_t(len(x)))
	case []string:
		return listToPy(len(x), func(i int) any { return x[i] })
	case []any:
		return listToPy(len(x), func(i int) any { return x[i] })
	case map[string]any:
		d := C.w_PyDict_New()
		for k, e := range x {
			pv := toPy(e)
			if pv == nil {
				C.w_Py_DecRef(d)
				return nil
			}
			ck := C.CString(k)
			rc := C.w_PyDict_SetItemString(d, ck, pv)
			C.free(unsafe.Pointer(ck))
			C.w_Py_DecRef(pv)
			if rc != 0 {
				C.w_Py_DecRef(d)
				return nil
			}
		}
		return d
	}
	return raise(fmt.Sprintf("host function returned an unsupported %T", v))
}

func listToPy(n int, item func(int) any) *C.PyObject {
	l := C.w_PyList_New(C.Py_ssize_t(n))
	for i := range n {
		e := toPy(item(i))
		if e == nil {
			C.w_Py_DecRef(l)
			return nil
		}
		C.w_PyList_SetItem(l, C.Py_ssize_t(i), e) // steals e
	}
	return l
}
