# Running plans: the drivers of a run() and of a registration's event, stream
# batches, suspension and resumption of executions that wait for async
# records, results in reply form, and profiles.
#
# Executed into module redisgears after steps.py (same namespace).
import _thread
import time as _time

_now = _time.perf_counter


class _Plan:
    """A run()'s reader and steps: plain data plus the user's callables."""

    def __init__(self, reader, arg, kwargs, steps):
        self.reader = reader
        self.arg = arg
        self.kwargs = kwargs
        self.steps = steps
        self.owner = _gears.session_key()
        self._unread = None
        self.waiter = None  # run() inside a step: what awaiting it gives
        self.dist_records = []  # and, across shards, the records it gets
        self.dumped = None  # the plan as bytes for the other shards, once made

    def unread_steps(self):
        """The steps without the trailing str() conversion and collect, which
        only shape results nobody reads (a keyspace event's). Found once: a
        plan's steps do not change, and this runs for every event."""
        if self._unread is None:
            steps = self.steps
            while steps and (steps[-1][0] == 'collect' or (steps[-1][0] == 'map' and steps[-1][1] is _to_str)):
                steps = steps[:-1]
            self._unread = steps
        return self._unread

    def describe(self):
        """[type, name, arg] per step, reader first: what RG.GETEXECUTION shows."""
        out = [['reader', self.reader, self.arg if isinstance(self.arg, str) else _name(self.arg)]]
        for kind, *fns in self.steps:
            names = [_name(f) for f in fns if callable(f)]
            out.append([_STEP_TYPES.get(kind, kind), ', '.join(names), ''])
        return out


def _name(f):
    return getattr(f, '__name__', type(f).__name__)


_plans = {}       # run() plans, by token, until their execution takes them
_registered = {}  # register() plans, by token, while registered
_tokens = _itertools.count(1)


class _Clock:
    __slots__ = ('read',)

    def __init__(self):
        self.read = 0.0


def _timed_batches(batches, clock):
    it = iter(batches)
    while True:
        t = _now()
        try:
            batch = next(it)
        except StopIteration:
            clock.read += _now() - t
            return
        clock.read += _now() - t
        yield from batch


def _profiled(f, spent, i):
    def timed(*args):
        t = _now()
        try:
            return f(*args)
        finally:
            spent[i] += _now() - t
    return timed


def _event_records(plan, payload):
    """The record of one event of a registration: a KeysReader event
    [key, event] is read now (as RedisGears reads it when the execution runs);
    a CommandReader trigger's arguments are the record as they are."""
    if plan.reader == 'KeysReader':
        key, event = payload
        record = _gears.read_key(key, plan.kwargs.get('readValue', True))
        if record is None:  # the session's user may no longer read it
            return [[]]
        record['event'] = event
        return [[record]]
    return [[payload]]


_GROUP = '__gears_consumer_group__'
_CONSUMER = '__gears_client__'


class _StreamBatch:
    """A StreamReader registration's batch of one stream, read through its
    consumer group: first entries read before but never acknowledged (a
    failed batch being retried), else new ones."""

    def __init__(self, plan, key, pending_only):
        self.key = key
        self.args = plan.kwargs
        self.entries = []
        for start in ('0',) if pending_only else ('0', '>'):
            self.entries = self._read(start)
            if self.entries:
                break

    def _read(self, start):
        batch = max(self.args.get('batch', 1), 1)
        try:
            res = execute('XREADGROUP', 'GROUP', _GROUP, _CONSUMER, 'COUNT', batch, 'STREAMS', self.key, start)
        except GearsError as e:
            if 'NOGROUP' not in str(e):
                raise
            try:
                execute('XGROUP', 'CREATE', self.key, _GROUP, '0')
            except GearsError as e2:
                if 'BUSYGROUP' not in str(e2):
                    raise
            res = execute('XREADGROUP', 'GROUP', _GROUP, _CONSUMER, 'COUNT', batch, 'STREAMS', self.key, start)
        return [(eid, fields) for eid, fields in res[0][1] if fields is not None] if res else []

    def records(self):
        return [[{'key': self.key, 'id': eid, 'value': dict(zip(f[::2], f[1::2]))} for eid, f in self.entries]]

    def finish(self, errors):
        """Acknowledges (and trims) the batch unless it failed under the abort
        or retry policy; returns [entries read, lag ms, acknowledged]."""
        lag = 0
        if self.entries:
            lag = max(int(_time.time() * 1000) - int(self.entries[0][0].split('-')[0]), 0)
        # An error beginning 'PAUSE' pauses the registration (RedisGears'
        # convention); its batch is read again when it is unpaused.
        done = not errors or (self.args.get('onFailedPolicy', 'continue').lower() == 'continue'
                              and not errors[0].startswith('PAUSE'))
        if self.entries and done:
            ids = [eid for eid, _ in self.entries]
            execute('XACK', self.key, _GROUP, *ids)
            if self.args.get('trimStream', True):
                ms, seq = ids[-1].split('-')
                execute('XTRIM', self.key, 'MINID', '%s-%d' % (ms, int(seq) + 1))
        return [len(self.entries), lag, done]


def _run_event(token, payload, keep_results):
    """A KeysReader or CommandReader registration's execution on one event,
    not profiled: the short path of _run_execution, without timings. Returns
    [results, errors] when results are kept, else the errors or None (the
    common case crosses back to the host as one object); or, when it waits
    for async records, the id _resume continues it by."""
    plan = _registered[token]
    errors = []
    results = []
    steps = plan.steps if keep_results else plan.unread_steps()
    try:
        try:
            it = iter(_event_records(plan, payload)[0])
            for kind, *fns in steps:
                it = _STEPS[kind](it, errors, *fns)
            for r in it:
                if r is _HOLD:
                    return _suspend(_event_rest(it, errors, results, keep_results), errors, False)
                if keep_results:
                    results.append(_to_reply(r))
        except GearsError as e:
            errors.append(str(e))
        except Exception as e:
            errors.append(_error_text(e))
    except GearsForceStopped:
        errors.append('Execution was aborted')
    if _aio_states:
        _aio_states.pop(id(errors), None)
    if keep_results:
        return [results, errors]
    return errors or None


def _event_rest(it, errors, results, keep_results):
    """The rest of _run_event once it waits for async records; ends with
    _run_execution's outcome."""
    take = (lambda r: results.append(_to_reply(r))) if keep_results else (lambda r: None)
    yield from _pull(lambda: it, errors, take)
    return [results, errors, 0, 0, []]


def _pull(plan_records, errors, take):
    """Pulls the records of plan_records() through take, waiting (a yield)
    whenever async records are outstanding. A failure of the plan (a
    reader's is a Redis error) becomes its error's text."""
    try:
        try:
            yield from _wait(errors)
            for r in plan_records():
                if r is _HOLD:
                    yield from _wait(errors)
                else:
                    take(r)
        except GearsError as e:
            errors.append(str(e))
        except Exception as e:
            errors.append(_error_text(e))
    except GearsForceStopped:
        errors.append('Execution was aborted')


def _suspend(driver, errors, profile):
    """Runs an execution's driver until it ends (its outcome) or waits for
    async records: then it is kept, and its id is what the host resumes it
    by once they have been continued (_gears.resume, then _resume)."""
    try:
        if profile:
            _profile_run(driver.__next__)
        else:
            next(driver)
    except StopIteration as done:
        _aio_states.pop(id(errors), None)
        return done.value
    sid = _aio_states[id(errors)].sid
    _suspended[sid] = (driver, errors, profile)
    return sid


def _resume(sid, abort):
    """Continues suspended execution `sid`; with abort, ends it as aborted."""
    driver, errors, profile = _suspended.pop(sid)
    if abort:
        _aio_states[id(errors)].abort()
        try:
            driver.throw(GearsForceStopped())
        except StopIteration as done:
            _aio_states.pop(id(errors), None)
            return done.value
    return _suspend(driver, errors, profile)


def _run_execution(token, profile, payload=None, keep_results=True):
    """Runs plan `token` (a registration's, on the event `payload`, when
    payload is given); returns [results, errors, total_ms, read_ms, step_ms]
    with results already in reply form (or none, when nobody reads them: an
    event's execution costs less without), and for a stream batch
    [entries read, lag ms, acknowledged]. An execution that waits for async
    records returns the id _resume continues it by instead."""
    plan = _plans.pop(token) if payload is None else _registered[token]
    errors = []
    return _suspend(_execution(plan, profile, payload, keep_results, errors), errors, profile)


def _execution(plan, profile, payload, keep_results, errors):
    stream = None
    results = []
    waiter = plan.waiter
    records = [] if waiter is not None else None
    clock = _Clock()
    spent = [0.0] * (len(plan.steps) + 1)
    start = _now()

    def plan_records():
        nonlocal stream
        if payload is None:
            batches = _READER_FUNCS[plan.reader](plan.arg, plan.kwargs)
        elif plan.reader == 'StreamReader':
            stream = _StreamBatch(plan, payload[0], len(payload) > 1 and payload[1])
            batches = stream.records()
        else:
            batches = _event_records(plan, payload)
        it = _timed_batches(batches, clock)
        for i, (kind, *fns) in enumerate(plan.steps, 1):
            if profile:
                fns = [_profiled(f, spent, i) if callable(f) else f for f in fns]
            it = _STEPS[kind](it, errors, *fns)
        return it

    def take(r):
        if records is not None:
            records.append(r)
        if keep_results:
            results.append(_to_reply(r))

    yield from _pull(plan_records, errors, take)
    spent[0] = clock.read
    ms = lambda s: int(s * 1000)
    out = [results, errors, ms(_now() - start), ms(clock.read), [ms(s) for s in spent]]
    if stream is not None:
        try:
            out.append(stream.finish(errors))
        except GearsError as e:
            errors.append(str(e))
            out.append([len(stream.entries), 0, False])
    if waiter is not None:
        waiter._set([records, list(errors)])
    return out


def _unregister(token):
    _registered.pop(token, None)


def _end_session(key):
    """Drops what an ended session left here. Under IsolationMode shared
    every session runs in this interpreter, which outlives them: plans never
    run or never registered, time events stopped from outside, profiles."""
    for table in (_plans, _registered):
        for token in [t for t, plan in table.items() if plan.owner == key]:
            del table[token]
    for token in [t for t, (_, owner) in _timers.items() if owner == key]:
        del _timers[token]
    _profilers.pop(key, None)
    _stop_loops(key)


def _to_reply(r):
    """A record as RedisGears replies it: lists recursively, int/bool as
    integers, float as '%f' text, '+x'/'-x' strings as status/error, bytes as
    they are, anything else as 'PY RECORD'."""
    if isinstance(r, str):
        if len(r) > 1 and r[0] == '+':
            return {'+': r[1:]}
        if len(r) > 1 and r[0] == '-':
            return {'-': r[1:]}
        return str(r)
    if isinstance(r, list):
        return [_to_reply(x) for x in r]
    if isinstance(r, int):
        return int(r)
    if isinstance(r, float):
        return '%f' % r
    if isinstance(r, (bytes, bytearray)):
        return bytes(r)
    return 'PY RECORD'


# Profiles of sessions' executions while ProfileExecutions is on
# (RG.PYPROFILE STATS / RESET), by session key (one per interpreter, except
# under IsolationMode shared), as pstats.Stats. Each run is profiled by a
# profiler of its own thread (sys.setprofile is per thread; cProfile's hooks
# are the whole interpreter's, and crash when several threads run in it),
# then added to its session's.
_profilers = {}
_profiling = set()  # threads running a profiled run now
_profiles_lock = _thread.allocate_lock()


def _profile_run(fn):
    tid = _thread.get_ident()
    if tid in _profiling:
        return fn()  # nested on this thread: the outer run's profiler sees it
    import profile
    import pstats
    profiler = profile.Profile()
    _profiling.add(tid)
    try:
        return profiler.runcall(fn)
    finally:
        _profiling.discard(tid)
        key = _gears.session_key()
        with _profiles_lock:
            stats = _profilers.get(key)
            if stats is None:
                _profilers[key] = pstats.Stats(profiler)
            else:
                stats.add(profiler)


def _profile_stats(order='tottime'):
    import io
    with _profiles_lock:
        stats = _profilers.get(_gears.session_key())
        if stats is None:
            raise GearsError('no profile data was collected for this session')
        out = io.StringIO()
        stats.stream = out
        stats.sort_stats(order)
        stats.print_stats()
        stats.print_callers()
        stats.print_callees()
    return out.getvalue()


def _profile_reset():
    with _profiles_lock:
        _profilers.pop(_gears.session_key(), None)
