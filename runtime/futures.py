# Async records, as RedisGears 1.2 has them: a step callback may return a
# gearsFuture() that some thread continues later, or a coroutine, which runs
# on its session's asyncio event loop. The execution then waits without
# holding a thread: its steps yield _HOLD down the chain, the driver
# suspends (builder.py's _suspend), and once every outstanding record has
# been continued the host resumes it (_resume) on an execution thread.
#
# Nothing here costs an execution that never goes async: steps compare each
# record with _HOLD and check _created after a callback; asyncio is imported
# when a session first runs a coroutine.
#
# Executed into module redisgears after builder.py (same namespace).
import _contextvars
import sys as _sys

__all__ += ['gearsFuture', 'isAsyncAllow', 'createFuture', 'setFutureResults', 'setFutureException',
            'runCoroutine']

_HOLD = type('_Hold', (), {'__repr__': lambda self: '<hold>'})()  # "nothing yet: wait"
_END = object()


async def _probe():
    pass


_c = _probe()
_Coroutine = type(_c)  # types.CoroutineType, without importing types
_c.close()
del _c

# RedisGears' bound on the records of one map, flatmap, filter or foreach
# step waiting at once; accumulate and groupby wait for one at a time.
_MAX_PENDING = 1000

_get_ident = _thread.get_ident
_created = {}      # thread id -> the async record a callback on it made and has not returned yet
_aio_states = {}   # id(an execution's errors list) -> _Aio, while that execution has async records
_suspended = {}    # suspension id -> (driver, errors, profile)
_sids = _itertools.count(1)


class _Aio:
    """An execution's async records: how many are outstanding, and whether
    the execution waits for them (suspended under id `sid`)."""
    __slots__ = ('lock', 'outstanding', 'waiting', 'sid', 'aborted', 'tasks')

    def __init__(self):
        self.lock = _thread.allocate_lock()
        self.outstanding = 0
        self.waiting = False
        self.sid = 0
        self.aborted = False
        self.tasks = set()  # the coroutines' tasks running for its records

    def abort(self):
        """The execution was aborted: its coroutines are cancelled."""
        with self.lock:
            self.aborted = True
            tasks, self.tasks = self.tasks, set()
        for task in tasks:
            task.get_loop().call_soon_threadsafe(task.cancel)


def _aio(errors):
    a = _aio_states.get(id(errors))
    if a is None:
        a = _aio_states[id(errors)] = _Aio()
    return a


def _must_wait(errors):
    """True when the execution must wait for its async records; it is then
    marked waiting, so that the last one continued resumes it."""
    a = _aio_states.get(id(errors))
    if a is None:
        return False
    with a.lock:
        if a.outstanding == 0:
            return False
        if not a.sid:
            a.sid = next(_sids)
        a.waiting = True
        return True


def _wait(errors):
    while _must_wait(errors):
        yield


class _Slot:
    """A step's record waiting for its async result (or holding a ready one)."""
    __slots__ = ('done', 'value', 'error', 'record')

    def __init__(self, done, value=None, record=None, error=None):
        self.done = done
        self.value = value
        self.record = record
        self.error = error

    def take(self, errors):
        if self.error is not None:
            errors.append(self.error)
            return None
        return self.value


class _AsyncRecord:
    """What gearsFuture() returns: once the callback has returned it, any
    thread continues the record with continueRun(value) or fails it with
    continueFailed(error)."""
    __slots__ = ('_aio', 'frame', 'outer', '_slot', '_state', '_tid', '_early')

    _MADE, _RETURNED, _USED = 0, 1, 2

    def __init__(self, aio, frame, outer):
        self._aio = aio
        self.frame = frame  # the step that made it
        self.outer = outer  # a record made by a callback further out on this thread
        self._slot = None
        self._state = self._MADE
        self._tid = _get_ident()  # the thread of the callback that made it
        self._early = None  # (value, error) given by another thread before the callback returned

    def _returned(self, record):
        self.frame = self.outer = None
        with self._aio.lock:
            if self._early is not None:  # continued already: ready now
                self._state = self._USED
                value, error = self._early
                return _Slot(True, value, record, error)
            slot = _Slot(False, None, record)
            self._slot = slot
            self._state = self._RETURNED
            self._aio.outstanding += 1
        return slot

    def _drop(self):
        self.frame = self.outer = None
        self._state = self._USED

    def __del__(self):
        # Returned, then let go of without being continued: its record fails
        # (as in RedisGears), so the execution does not wait forever.
        if self._state == self._RETURNED:
            try:
                self._continue(None, 'Async record did not called continue')
            except Exception:
                pass

    def continueRun(self, *args):
        if len(args) != 1:
            raise GearsError('Continue function expect an object')
        self._continue(args[0], None)

    def continueFailed(self, *args):
        if len(args) != 1:
            raise GearsError('Continue function expect an object')
        self._continue(None, str(args[0]))

    def _continue(self, value, error):
        aio = self._aio
        with aio.lock:
            if self._state == self._USED or self._early is not None:
                raise GearsError('Can not continue with the same future twice')
            if self._state == self._MADE:
                if _get_ident() == self._tid:
                    raise GearsError('Can not handle future untill it returned from the callback')
                # Another thread was quicker than the callback's return: the
                # record continues with this as soon as the callback returns.
                self._early = (value, error)
                return
            self._state = self._USED
            slot, self._slot = self._slot, None
            slot.value, slot.error = value, error
            slot.done = True
            aio.outstanding -= 1
            wake = aio.outstanding == 0 and aio.waiting and not aio.aborted
            if wake:
                aio.waiting = False
        if wake:
            _gears.resume(aio.sid)


def _pop_created(frame):
    """The async record the callback just called by step `frame` made, if any."""
    tid = _get_ident()
    rec = _created.get(tid)
    if rec is None or rec.frame is not frame:
        return None
    if rec.outer is None:
        del _created[tid]
    else:
        _created[tid] = rec.outer
    return rec


def _discard_created():
    """A callback that made an async record raised: the record is dropped."""
    rec = _pop_created(_sys._getframe(1))
    if rec is not None:
        rec._drop()


def _failed(errors, e):
    if _created:
        rec = _pop_created(_sys._getframe(1))
        if rec is not None:
            rec._drop()
    errors.append(_error_text(e))


def _settle(res, errors, kind, record):
    """What a step's callback returned, as a slot: ready, or waiting for the
    async record or coroutine it returned."""
    rec = _pop_created(_sys._getframe(1)) if _created else None
    if rec is not None:
        if res is rec:
            return rec._returned(record)
        rec._drop()  # made and not returned: as in RedisGears, it is discarded
        if type(res) is _Coroutine:
            res.close()
            return _Slot(True, error='Can not create async record twice on the same step')
        return _Slot(True, None if kind in ('accumulate', 'groupby') else res, record)
    if type(res) is _Coroutine:
        if not _gears.async_allowed():
            res.close()
            return _Slot(True, error='Creating async record is not allowed')
        rec = _AsyncRecord(_aio(errors), None, None)
        slot = rec._returned(record)
        runCoroutine(res, rec)
        return slot
    return _Slot(True, res, record)


def _async_tail(it, errors, f, kind, slot):
    """The rest of a map, flatmap, filter or foreach step once one of its
    records went async: records keep their order, and up to _MAX_PENDING
    wait at once while the step goes on reading."""
    from collections import deque
    slots = deque((slot,))
    ended = False
    while True:
        while slots and slots[0].done:
            s = slots.popleft()
            if s.error is not None:
                errors.append(s.error)
                continue
            v = s.value
            if kind == 'map':
                yield v
            elif kind == 'flatmap':
                if type(v) is list:
                    yield from reversed(v)
                else:
                    yield v
            elif kind == 'filter':
                if v:
                    yield s.record
            else:
                yield s.record
        if ended or len(slots) >= _MAX_PENDING:
            if ended and not slots:
                return
            yield _HOLD
            continue
        r = next(it, _END)
        if r is _END:
            ended = True
            continue
        if r is _HOLD:
            yield r
            continue
        try:
            v = f(r)
        except Exception as e:
            _failed(errors, e)
            continue
        slots.append(_settle(v, errors, kind, r))
        v = None


# The step frames gearsFuture() looks for, and which may go async (None: the
# step does not support it).
_STEP_KINDS = {
    _step_map.__code__: 'map', _step_flatmap.__code__: 'flatmap', _step_foreach.__code__: 'foreach',
    _step_filter.__code__: 'filter', _step_accumulate.__code__: 'accumulate', _step_groupby.__code__: 'groupby',
    _async_tail.__code__: 'tail', _key_of.__code__: None, _step_batchgroupby.__code__: None,
    _timed_batches.__code__: None,
}
_NOT_STEP = object()


def _step_frame(f):
    """The innermost step running on this thread, and its kind."""
    while f is not None:
        kind = _STEP_KINDS.get(f.f_code, _NOT_STEP)
        if kind is not _NOT_STEP:
            return f, (f.f_locals['kind'] if kind == 'tail' else kind)
        f = f.f_back
    return None, None


def gearsFuture(*args):
    """Inside a map, flatmap, filter, foreach, accumulate or groupby
    callback: a future to return instead of a value; the record continues
    when some thread calls its continueRun(value) or continueFailed(error)."""
    if args:
        raise GearsError('Future gets no arguments')
    frame, kind = _step_frame(_sys._getframe(1))
    if frame is None:
        raise GearsError('Future object can only be created inside certain execution steps')
    tid = _get_ident()
    outer = _created.get(tid)
    if outer is not None and outer.frame is frame:
        raise GearsError('Can not create async record twice on the same step')
    if kind is None:
        raise GearsError('Step does not support async')
    if not _gears.async_allowed():
        raise GearsError('Creating async record is not allowed')
    rec = _AsyncRecord(_aio(frame.f_locals['errors']), frame, outer)
    _created[tid] = rec
    return rec


def isAsyncAllow():
    """Whether a step callback may go async here (not in a sync execution
    inside MULTI, Lua or loading); False outside executions."""
    frame, kind = _step_frame(_sys._getframe(1))
    return frame is not None and bool(_gears.async_allowed())


# ---------------------------------------------------------------------------
# Coroutines: each session's event loop.

# The command or hook a coroutine serves (override_reply, call_next and
# get_command find it here: its loop thread serves many).
_scope = _contextvars.ContextVar('gears_scope', default=0)

_loops = {}  # session key (0 unless IsolationMode shared) -> _Loop
_loops_lock = _thread.allocate_lock()
_future_class = None


def _asyncio():
    global _future_class
    import asyncio
    if _future_class is None:
        class GearsFuture(asyncio.Future):
            """A future of a session's loop: awaiting it inside atomic() is
            refused (the coroutine would wait holding the Redis lock)."""

            def __await__(self):
                if _gears.in_atomic():
                    raise GearsError('await is not allow inside atomic block')
                return (yield from asyncio.Future.__await__(self))

            __iter__ = __await__

        _future_class = GearsFuture
    return asyncio


class _Loop:
    """A session's asyncio event loop, run by a thread of its own while
    coroutines are running on it: an idle loop has no thread."""

    def __init__(self):
        asyncio = _asyncio()
        self.loop = asyncio.new_event_loop()
        self.loop.create_future = lambda: _future_class(loop=self.loop)
        self.lock = _thread.allocate_lock()
        self.tasks = 0
        self.running = False
        self.closing = False

    def submit(self, make):
        """Runs coroutine make() on the loop (thread-safe)."""
        with self.lock:
            if self.closing:
                raise GearsError('the session has ended')
            self.tasks += 1
            start = not self.running
            self.running = True
        self.loop.call_soon_threadsafe(self._spawn, make)
        if start:
            import threading
            try:
                threading.Thread(target=self._run, name='gears-asyncio').start()
            except BaseException:
                with self.lock:
                    self.running = False
                raise

    def _spawn(self, make):
        try:
            task = self.loop.create_task(make())
        except BaseException:
            self._done(None)
            raise
        task.add_done_callback(self._done)

    def _done(self, task):
        with self.lock:
            self.tasks -= 1
            if self.tasks == 0:
                self.loop.stop()

    def _run(self):
        _asyncio().set_event_loop(self.loop)
        while True:
            self.loop.run_forever()
            with self.lock:
                if self.tasks == 0:
                    self.running = False
                    if self.closing:
                        self.loop.close()
                    return

    def stop(self):
        """Cancels what still runs (its session has ended)."""
        with self.lock:
            self.closing = True
            running = self.running
        if running:
            self.loop.call_soon_threadsafe(self._cancel_all)
        else:
            self.loop.close()

    def _cancel_all(self):
        for task in _asyncio().all_tasks(self.loop):
            task.cancel()


def _session_loop():
    key = _gears.session_key()
    with _loops_lock:
        lp = _loops.get(key)
        if lp is None:
            lp = _loops[key] = _Loop()
            _gears.loop_started()  # its end must stop the loop first
    return lp


def _stop_loops(key):
    with _loops_lock:
        lp = _loops.pop(key, None)
    if lp is not None:
        lp.stop()


def createFuture():
    """A future of this session's event loop, to await in coroutines."""
    return _session_loop().loop.create_future()


def _set_result(f, res):
    if not f.done():
        f.set_result(res)


def _set_exception(f, e):
    if not f.done():
        f.set_exception(e)


def setFutureResults(f, res):
    """Sets a createFuture() future's result, from any thread."""
    f.get_loop().call_soon_threadsafe(_set_result, f, res)


def setFutureException(f, exception):
    """Fails a createFuture() future, from any thread."""
    if not isinstance(exception, Exception):
        exception = Exception(str(exception))
    f.get_loop().call_soon_threadsafe(_set_exception, f, exception)


def runCoroutine(cr, f=None, delay=0, s=None):
    """Runs coroutine cr on this session's event loop (after `delay`
    seconds); then f.continueRun(result), or f.continueFailed(error)."""
    scope = _gears.scope_capture()

    async def run():
        _scope.set(scope)
        aio = f._aio if type(f) is _AsyncRecord else None
        if aio is not None:
            task = _asyncio().current_task()
            with aio.lock:
                if aio.aborted:
                    cr.close()
                    return
                aio.tasks.add(task)
        try:
            try:
                if delay:
                    await _asyncio().sleep(delay)
                res = await cr
            except BaseException as e:
                if f is not None:
                    try:
                        f.continueFailed(e if isinstance(e, Exception) else 'the coroutine was cancelled')
                    except Exception as e1:
                        log(str(e1), level='warning')
                if not isinstance(e, Exception):
                    raise
                return
            if f is not None:
                try:
                    f.continueRun(res)
                except Exception as e1:
                    log(str(e1), level='warning')
        finally:
            if aio is not None:
                with aio.lock:
                    aio.tasks.discard(task)
            if scope:
                _gears.scope_release(scope)

    try:
        _session_loop().submit(run)
    except BaseException:
        cr.close()
        if scope:
            _gears.scope_release(scope)
        raise


class _RunWaiter:
    """What run() inside a step returns: awaiting it gives the execution's
    [results, errors] once it has finished."""
    __slots__ = ('_lock', '_value', '_futures')

    def __init__(self):
        self._lock = _thread.allocate_lock()
        self._value = None
        self._futures = []

    def _set(self, value):
        with self._lock:
            self._value = value
            futures, self._futures = self._futures, []
        for f in futures:
            f.get_loop().call_soon_threadsafe(_set_result, f, value)

    def __await__(self):
        with self._lock:
            value = self._value
            if value is None:
                f = _asyncio().get_running_loop().create_future()
                self._futures.append(f)
        if value is not None:
            return value
        return (yield from f.__await__())
