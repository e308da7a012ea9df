// Package interp binds the bundled CPython: loading libpython without
// headers, creating and destroying sub-interpreters, attaching OS threads to
// them, running code, and module _gears, through which Python reaches the
// process that embeds it: Go host functions (host.go) and C natives
// (natives.c, events.c) that call the host through a table of plain C
// functions (pyhost.h) the host's binding fills. It is the only code of
// gears that touches CPython; it never includes the host's API.
package interp

/*
#cgo CFLAGS: -O2
#cgo LDFLAGS: -ldl
#include <locale.h>
#include "interp.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Isolation selects how a new interpreter is separated from the others.
type Isolation int

const (
	// OwnGIL interpreters have their own GIL, allocator and modules: they run
	// in parallel and see nothing of each other.
	OwnGIL Isolation = iota
	// SharedGIL interpreters share the main GIL and allocator; they can load
	// single-phase C extensions that refuse OwnGIL interpreters.
	SharedGIL
)

// Object is a Python object reference; it is valid only while the interpreter
// that owns it is attached to the calling thread.
type Object struct{ p *C.PyObject }

var (
	version    string
	mainThread atomic.Uint64 // the thread that initialized Python
)

// Init loads libpython from pyHome and initializes the main interpreter on
// the calling thread, then releases its GIL. It must be called once.
func Init(pyHome string) error {
	lib := filepath.Join(pyHome, "lib", "libpython3.14.so.1.0")
	clib := C.CString(lib)
	defer C.free(unsafe.Pointer(clib))
	if msg := C.py_load(clib); msg != nil {
		return errors.New(C.GoString(msg))
	}
	// Python reads these at initialization; Go's environment is not
	// redis-server's, so set them in the C environment.
	for k, v := range map[string]string{
		"PYTHONHOME":          pyHome,
		"PYTHONNOUSERSITE":    "1",
		"PYTHONUTF8":          "1",
		"PYTHONCOERCECLOCALE": "0",
	} {
		setenv(k, v)
	}
	// Bytecode is written into the extracted tree (ours, 0700): without it
	// every new interpreter compiles each module it imports from source.
	for _, k := range []string{"PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PYTHONMALLOC", "PYTHONTRACEMALLOC"} {
		unsetenv(k)
	}
	// Python switches LC_CTYPE to the user's locale; Redis expects its own.
	saved := C.GoString(C.setlocale(C.LC_CTYPE, nil))
	C.py_install_memory_counters()
	if C.py_install_process_guard() != 0 {
		return errors.New("cannot install the process guard (PySys_AddAuditHook failed)")
	}
	C.w_Py_InitializeEx(0)
	csaved := C.CString(saved)
	C.setlocale(C.LC_CTYPE, csaved)
	C.free(unsafe.Pointer(csaved))

	version = C.GoString(C.w_Py_GetVersion())
	if !strings.HasPrefix(version, "3.14.") {
		return fmt.Errorf("bundled libpython reports version %q, expected 3.14", version)
	}
	if msg := C.py_guard_functions(); msg != nil {
		return fmt.Errorf("guarding the functions that end the process: %s", C.GoString(msg))
	}
	ts := C.w_PyEval_SaveThread()
	C.py_set_main(ts)
	mainThread.Store(ThreadID())
	return nil
}

// Version is the bundled Python's version string.
func Version() string { return version }

// Memory reports bytes Python allocated in total, at peak, and now.
func Memory() (total, peak, current int64) {
	var t, p, c C.longlong
	C.py_memory(&t, &p, &c)
	return int64(t), int64(p), int64(c)
}

// SetMemoryLimit makes allocations that would take Python's memory
// (Memory's current) beyond n bytes fail with MemoryError; 0 removes the
// limit.
func SetMemoryLimit(n int64) { C.py_set_memory_limit(C.longlong(n)) }

// MemoryRefused is the number of allocations the limit refused so far.
func MemoryRefused() int64 { return int64(C.py_memory_refused()) }

func setenv(k, v string) {
	ck, cv := C.CString(k), C.CString(v)
	C.setenv(ck, cv, 1)
	C.free(unsafe.Pointer(ck))
	C.free(unsafe.Pointer(cv))
}

func unsetenv(k string) {
	ck := C.CString(k)
	C.unsetenv(ck)
	C.free(unsafe.Pointer(ck))
}

// Interp is one sub-interpreter.
type Interp struct {
	ID     int64
	handle int64
	state  *C.PyInterpreterState
	slot   unsafe.Pointer // C memory handed to native functions as self: the session cell

	// mu guards the interpreter's life: attached counts the threads attached
	// now; once closing is set no thread can attach any more, and Close
	// ends the interpreter when attached falls to 0 (idle signals it).
	mu       sync.Mutex
	idle     sync.Cond
	attached int
	closing  bool
	// Thread states kept between attaches on the thread that initialized
	// Python (Redis's main thread): making one there costs CPython a walk of
	// /proc/self/maps (its stack limits). Other threads make and delete one
	// per attach: a thread state deleted by another thread (this
	// interpreter's closer) proved unsafe under load. Under mu.
	cache map[uint64]*cachedState

	funcs map[funcKey]*C.PyObject // see Thread.function; under the GIL
}

type funcKey struct{ module, name string }

type cachedState struct {
	ts   *C.PyThreadState
	busy bool // attached now (a nested attach on the thread gets its own)
}

var (
	registry   sync.Map // handle -> *Interp
	nextHandle atomic.Int64
	live       atomic.Int64
)

// Live is the number of sub-interpreters that exist now.
func Live() int64 { return live.Load() }

// New creates a sub-interpreter and runs setup in it (with the interpreter
// attached, the goroutine pinned to its thread) before returning it
// detached. It takes ~5 ms: never call it from the Redis main thread while
// serving. Threads may create interpreters in parallel.
func New(iso Isolation, setup func(*Thread) error) (*Interp, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ts *C.PyThreadState
	var msg *C.char
	shared := C.int(0)
	if iso == SharedGIL {
		shared = 1
	}
	if C.py_create(shared, &ts, &msg) != 0 {
		return nil, fmt.Errorf("creating a sub-interpreter: %s", C.GoString(msg))
	}
	it := &Interp{
		handle: nextHandle.Add(1),
		state:  C.w_PyThreadState_GetInterpreter(ts),
		slot:   C.calloc(1, C.size_t(unsafe.Sizeof(uintptr(0)))),
	}
	it.idle.L = &it.mu
	it.ID = int64(C.w_PyInterpreterState_GetID(it.state))
	registry.Store(it.handle, it)
	live.Add(1)
	t := &Thread{interp: it, ts: ts, tid: ThreadID()}
	err := installHostFuncs(t)
	if err == nil && setup != nil {
		err = setup(t)
	}
	if err != nil {
		it.end(ts)
		return nil, err
	}
	// The interpreter lives on without a thread state until a thread attaches.
	C.w_PyThreadState_Clear(ts)
	C.w_PyThreadState_DeleteCurrent()
	return it, nil
}

// end destroys the interpreter; ts, its only thread state, must be current.
func (i *Interp) end(ts *C.PyThreadState) {
	C.py_end(ts)
	registry.Delete(i.handle)
	C.free(i.slot)
	live.Add(-1)
}

// ErrClosed is Attach's error once the interpreter is being closed.
var ErrClosed = errors.New("the Python interpreter of this session has ended")

// Close ends the interpreter: from now on Attach fails, and once the threads
// attached now have detached it is destroyed, joining the non-daemon Python
// threads it started first. Call it from a locked thread that is not
// attached to any interpreter. Only the first call does anything.
func (i *Interp) Close() {
	i.mu.Lock()
	if i.closing {
		i.mu.Unlock()
		return
	}
	i.closing = true
	for i.attached > 0 {
		i.idle.Wait()
	}
	i.mu.Unlock()
	runtime.LockOSThread() // the last thread state is made and ended here
	defer runtime.UnlockOSThread()
	ts := C.py_new_thread_state(i.state)
	C.w_PyEval_RestoreThread(ts)
	for _, f := range i.funcs {
		C.w_Py_DecRef(f)
	}
	i.funcs = nil
	// Py_EndInterpreter wants its thread state to be the only one left.
	i.mu.Lock()
	for _, c := range i.cache { // the main thread's, detached
		C.w_PyThreadState_Clear(c.ts)
		C.w_PyThreadState_Delete(c.ts)
	}
	i.cache = nil
	i.mu.Unlock()
	i.end(ts)
}

// Closing reports whether Close was called.
func (i *Interp) Closing() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.closing
}

// SetSession fills the interpreter's session cell with the host's handle of
// the session it serves (see pyhost.h): the natives pass it to the host,
// which falls back on it on threads that Python started.
func (i *Interp) SetSession(h uintptr) { *(*uintptr)(i.slot) = h }

// Session is what SetSession put in the cell (0: nothing).
func (i *Interp) Session() uintptr { return *(*uintptr)(i.slot) }

// Thread is an OS thread attached to an interpreter: it holds that
// interpreter's GIL. It must be used and detached on the same OS thread.
type Thread struct {
	interp *Interp
	ts     *C.PyThreadState
	cached *cachedState     // nil: ts is deleted at Detach
	prev   *C.PyThreadState // the thread state this one interrupted, if any
	tid    uint64
}

// Attach makes the calling OS thread run Python in i, or fails with
// ErrClosed once Close was called: an interpreter is ended only when no
// thread is attached and none can attach any more. A Python thread state
// belongs to one OS thread, so the goroutine stays on this thread
// (runtime.LockOSThread) until Detach. Attach never waits for the host's
// lock, so it is safe to call without it or with it.
func (i *Interp) Attach() (*Thread, error) {
	runtime.LockOSThread()
	tid := ThreadID()
	t := &Thread{interp: i, tid: tid}
	i.mu.Lock()
	if i.closing {
		i.mu.Unlock()
		runtime.UnlockOSThread()
		return nil, ErrClosed
	}
	i.attached++
	if i.cache == nil {
		i.cache = map[uint64]*cachedState{}
	}
	c := i.cache[tid]
	switch {
	case tid != mainThread.Load(): // a thread state per attach, deleted by its own thread
	case c != nil && !c.busy:
		c.busy = true
		t.cached, t.ts = c, c.ts
	case c == nil:
		t.cached = &cachedState{busy: true}
	default: // nested on this thread: a thread state of its own, not kept
	}
	i.mu.Unlock()
	if cur := C.w_PyThreadState_GetUnchecked(); cur != nil {
		t.prev = C.w_PyEval_SaveThread()
	}
	if t.ts == nil {
		t.ts = C.py_new_thread_state(i.state)
		if t.ts == nil {
			t.restorePrev()
			i.detached(t.cached, true)
			runtime.UnlockOSThread()
			return nil, errors.New("cannot attach to the Python interpreter: out of memory")
		}
		if t.cached != nil {
			t.cached.ts = t.ts
			i.mu.Lock()
			i.cache[tid] = t.cached
			i.mu.Unlock()
		}
	}
	C.w_PyEval_RestoreThread(t.ts)
	return t, nil
}

// Detach releases the interpreter (and its GIL); the thread state is kept
// for this thread's next Attach unless it was a nested one.
func (t *Thread) Detach() {
	if t.cached != nil {
		C.w_PyEval_SaveThread()
	} else {
		C.w_PyThreadState_Clear(t.ts)
		C.w_PyThreadState_DeleteCurrent()
	}
	t.restorePrev()
	t.interp.detached(t.cached, false)
	runtime.UnlockOSThread()
}

func (t *Thread) restorePrev() {
	if t.prev != nil {
		C.w_PyEval_RestoreThread(t.prev)
	}
}

// detached ends an attach: the cached thread state (if any) is free again
// (or forgotten when it was never made), and Close may go on once the last
// thread has left.
func (i *Interp) detached(c *cachedState, unmade bool) {
	i.mu.Lock()
	if c != nil {
		c.busy = false
		if unmade && i.cache[ThreadID()] == c {
			delete(i.cache, ThreadID())
		}
	}
	i.attached--
	if i.attached == 0 && i.closing {
		i.idle.Broadcast()
	}
	i.mu.Unlock()
}

// ID is the attached OS thread's Python thread identifier (ThreadID).
func (t *Thread) ID() uint64 { return t.tid }

// Interp is the interpreter this thread is attached to.
func (t *Thread) Interp() *Interp { return t.interp }

// Error is a Python exception, formatted by the interpreter's formatter.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

// ModuleDict returns the dict of module name, creating an empty module if it
// does not exist (borrowed: the module lives in sys.modules).
func (t *Thread) ModuleDict(name string) (Object, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	m := C.w_PyImport_AddModuleRef(cname)
	if m == nil {
		return Object{}, t.fetchError()
	}
	d := C.w_PyModule_GetDict(m)
	C.w_Py_DecRef(m)
	return Object{d}, nil
}

// MainGlobals is the dict of this interpreter's __main__ module.
func (t *Thread) MainGlobals() (Object, error) { return t.ModuleDict("__main__") }

// NewDict returns a new empty dict (a new reference; see Decref).
func (t *Thread) NewDict() Object { return Object{C.w_PyDict_New()} }

// CopyDict returns a shallow copy of dict d (a new reference; see Decref).
func (t *Thread) CopyDict(d Object) (Object, error) {
	c := C.w_PyDict_Copy(d.p)
	if c == nil {
		return Object{}, t.fetchError()
	}
	return Object{c}, nil
}

// Decref drops a reference.
func (t *Thread) Decref(o Object) {
	if o.p != nil {
		C.w_Py_DecRef(o.p)
	}
}

// Exec runs src as a module body with globals as its namespace.
func (t *Thread) Exec(src string, globals Object) error {
	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	r := C.py_exec(csrc, globals.p)
	if r == nil {
		return t.fetchError()
	}
	C.w_Py_DecRef(r)
	return nil
}

// fetchError takes the raised exception and formats it with the function
// `format_error` of module _gears when the runtime installed one.
func (t *Thread) fetchError() error {
	exc := C.w_PyErr_GetRaisedException()
	if exc == nil {
		return &Error{Msg: "unknown Python error"}
	}
	defer C.w_Py_DecRef(exc)
	if f := gearsAttr("format_error"); f != nil {
		s := C.w_PyObject_CallOneArg(f, exc)
		if s != nil {
			defer C.w_Py_DecRef(s)
			if msg, ok := goString(s); ok && msg != "" {
				return &Error{Msg: msg}
			}
		}
		C.w_PyErr_Clear()
	}
	// Formatting needs memory, which a MemoryError may have left none of.
	if C.py_is_memory_error(exc) != 0 {
		return &Error{Msg: MemoryErrorText()}
	}
	if msg := strOf(exc); msg != "" {
		return &Error{Msg: msg}
	}
	return &Error{Msg: "unknown Python error"}
}

// MemoryErrorText is the text of a MemoryError that could not be formatted;
// the layer above says what limit was reached.
var MemoryErrorText = func() string { return "MemoryError" }

// gearsAttr looks up a name in module _gears of the current interpreter
// (borrowed reference, or nil).
func gearsAttr(name string) *C.PyObject {
	cmod := C.CString("_gears")
	defer C.free(unsafe.Pointer(cmod))
	m := C.w_PyImport_AddModuleRef(cmod)
	if m == nil {
		C.w_PyErr_Clear()
		return nil
	}
	d := C.w_PyModule_GetDict(m)
	C.w_Py_DecRef(m)
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	return C.w_PyDict_GetItemString(d, cname)
}

func strOf(o *C.PyObject) string {
	s := C.w_PyObject_Str(o)
	if s == nil {
		C.w_PyErr_Clear()
		return "<unprintable Python object>"
	}
	defer C.w_Py_DecRef(s)
	msg, _ := goString(s)
	return msg
}

func goString(o *C.PyObject) (string, bool) {
	var n C.Py_ssize_t
	p := C.w_PyUnicode_AsUTF8AndSize(o, &n)
	if p == nil {
		C.w_PyErr_Clear()
		return "", false
	}
	return C.GoStringN(p, C.int(n)), true
}

// PanicHandler receives Go panics caught at the cgo boundary (the layer above
// logs them); it must not panic.
var PanicHandler = func(where string, r any) {
	fmt.Fprintf(os.Stderr, "gears: panic in %s: %v\n", where, r)
}

func recoverTo(where string) {
	if r := recover(); r != nil {
		PanicHandler(where, r)
	}
}

// Call calls function name of module (already imported) with args converted
// from Go, and converts its result back (see HostFunc for the types).
func (t *Thread) Call(module, name string, args ...any) (any, error) {
	f, err := t.function(module, name)
	if err != nil {
		return nil, err
	}
	tuple := C.w_PyTuple_New(C.Py_ssize_t(len(args)))
	for i, a := range args {
		v := toPy(a)
		if v == nil {
			C.w_Py_DecRef(tuple)
			return nil, t.fetchError()
		}
		C.w_PyTuple_SetItem(tuple, C.Py_ssize_t(i), v)
	}
	r := C.w_PyObject_CallObject(f, tuple)
	C.w_Py_DecRef(tuple)
	if r == nil {
		return nil, t.fetchError()
	}
	defer C.w_Py_DecRef(r)
	return toGo(r)
}

// function finds module.name, remembering it per interpreter: hot paths
// call the same few functions for every event. The cache is used only with
// the interpreter's GIL held, which serializes it.
func (t *Thread) function(module, name string) (*C.PyObject, error) {
	key := funcKey{module, name}
	if f, ok := t.interp.funcs[key]; ok {
		return f, nil
	}
	d, err := t.ModuleDict(module)
	if err != nil {
		return nil, err
	}
	cname := C.CString(name)
	f := C.w_PyDict_GetItemString(d.p, cname)
	C.free(unsafe.Pointer(cname))
	if f == nil {
		return nil, fmt.Errorf("%s.%s does not exist", module, name)
	}
	C.w_Py_IncRef(f) // kept for the interpreter's life
	if t.interp.funcs == nil {
		t.interp.funcs = map[funcKey]*C.PyObject{}
	}
	t.interp.funcs[key] = f
	return f, nil
}

// ThreadID is the calling OS thread's Python thread identifier.
func ThreadID() uint64 { return uint64(C.py_thread_ident()) }

// ClearInterrupt drops an Interrupt of this thread that its code finished
// before seeing.
func (t *Thread) ClearInterrupt() {
	C.w_PyThreadState_SetAsyncExc(C.ulong(t.tid), nil)
}

// Interrupt raises _gears.forcestopped in thread threadID of interpreter i
// at its next bytecode boundary (at once in time.sleep), if still(), checked
// while holding i's GIL, says that thread still runs the code to stop. It
// attaches to i, so it may wait for the GIL: call it on a locked thread,
// never the Redis main thread. Code inside one long C call (a C loop that
// never returns to bytecode) is beyond its reach.
func (i *Interp) Interrupt(threadID uint64, still func() bool) {
	t, err := i.Attach()
	if err != nil {
		return // ended: nothing runs there any more
	}
	defer t.Detach()
	if !still() {
		return
	}
	if exc := gearsAttr("forcestopped"); exc != nil {
		C.w_PyThreadState_SetAsyncExc(C.ulong(threadID), exc)
		C.py_wake(C.ulong(threadID))
	}
}

// WithoutGIL runs fn with this thread's GIL released (other threads of the
// interpreter run meanwhile); fn must not touch Python.
func (t *Thread) WithoutGIL(fn func()) {
	ts := C.w_PyEval_SaveThread()
	defer C.w_PyEval_RestoreThread(ts)
	fn()
}
