# The GearsBuilder engine. A builder records a plan: a reader and a list of
# steps. run() hands the plan to the host, which schedules an execution and
# later calls _run_execution on an execution thread; every record then flows
# through the steps here, inside the interpreter, so the host is crossed once
# per batch of records, not once per record per step.
#
# Executed into module redisgears after gears.py (same namespace).
import _thread
import itertools as _itertools
import time as _time

__all__ += ['GearsBuilder', 'GB']

_now = _time.perf_counter
_FunctionType = type(lambda: None)  # types.FunctionType, without importing types


def _deepcopy(x):
    import copy  # on first use: importing it costs every new interpreter ~1 ms
    return copy.deepcopy(x)


def _check_count(name, args, *counts):
    if len(args) not in counts:
        raise GearsError('wrong number of args to %s function' % name)


def _check_function(what, f):
    # RedisGears wants a real Python function here, not any callable.
    if not isinstance(f, _FunctionType):
        raise GearsError('%s must be a function' % what)


_READERS = ('KeysReader', 'KeysOnlyReader', 'StreamReader', 'PythonReader', 'ShardsIDReader', 'CommandReader')
_MODES = ('async', 'async_local')


def _to_str(x):
    return str(x)


_to_str.__name__ = '<lambda>'


class GearsBuilder:
    """Builds a pipeline of operations over a reader's records."""

    def __init__(self, reader='KeysReader', defaultArg='*', desc=None):
        if not isinstance(reader, str):
            raise GearsError('reader argument must be a string')
        if desc is not None and not isinstance(desc, str):
            raise GearsError('desc argument must be a string')
        if reader not in _READERS:
            raise GearsError('The given reader does not exists')
        self.reader = reader
        self.defaultArg = defaultArg
        self.desc = desc
        self.steps = []

    def _add(self, kind, *fns):
        self.steps.append((kind,) + fns)
        return self

    # Operations that take one function.
    def map(self, *args):
        return self._one('map', args)

    def flatmap(self, *args):
        return self._one('flatmap', args)

    def foreach(self, *args):
        return self._one('foreach', args)

    def filter(self, *args):
        return self._one('filter', args)

    def accumulate(self, *args):
        return self._one('accumulate', args)

    def repartition(self, *args):
        return self._one('repartition', args)

    def _one(self, kind, args):
        _check_count(kind, args, 1)
        _check_function('%s argument' % kind, args[0])
        return self._add(kind, args[0])

    # Grouping: an extractor gives each record's key, a reducer folds.
    def localgroupby(self, *args):
        return self._group('groupby', 'localgroupby', args)

    def groupby(self, *args):
        return self._group('groupby', 'groupby', args)

    def batchgroupby(self, *args):
        return self._group('batchgroupby', 'batchgroupby', args)

    def _group(self, name, kind, args):
        _check_count(name, args, 2)
        _check_function('%s extractor argument' % name, args[0])
        _check_function('%s reducer argument' % name, args[1])
        return self._add(kind, args[0], args[1])

    def collect(self, *args):
        _check_count('collect', args, 0)
        return self._add('collect')

    def limit(self, *args):
        _check_count('limit', args, 1, 2)
        for a in args:
            if not isinstance(a, int) or isinstance(a, bool):
                raise GearsError('limit argument must be a number')
        length, start = args[0], (args[1] if len(args) > 1 else 0)
        return self._add('limit', length, start)

    # Operations built from the ones above, as RedisGears 1.2 composes them
    # (users' results depend on it: e.g. sort() is ascending because flatmap
    # emits a list's elements last to first).
    def aggregate(self, zero, seqOp, combOp):
        self.accumulate(lambda a, r: seqOp(a if a else _deepcopy(zero), r))
        self.collect()
        return self.accumulate(lambda a, r: combOp(a if a else _deepcopy(zero), r))

    def __localAggregateby__(self, extractor, zero, aggregator):
        return self.localgroupby(extractor, lambda k, a, r: aggregator(k, a if a else _deepcopy(zero), r))

    def aggregateby(self, extractor, zero, seqOp, combOp):
        self.__localAggregateby__(extractor, zero, seqOp)
        return self.groupby(lambda r: r['key'], lambda k, a, r: combOp(k, a if a else _deepcopy(zero), r['value']))

    def count(self):
        return self.aggregate(0, lambda a, r: a + 1, lambda a, r: a + r)

    def countby(self, extractor=lambda x: x):
        return self.aggregateby(extractor, 0, lambda k, a, r: a + 1, lambda k, a, r: a + r)

    def avg(self, extractor=lambda x: float(x)):
        def seq(a, r):
            return (a[0] + r, a[1] + 1)

        def comb(a, r):
            return (a[0] + r[0], a[1] + r[1])

        return self.map(extractor).aggregate((0, 0), seq, comb).map(lambda x: x[0] / x[1])

    def sort(self, reverse=True):
        return (self.aggregate([], lambda a, r: a.append(r) or a, lambda a, r: a.extend(r) or a)
                .map(lambda r: sorted(r, reverse=reverse))
                .flatmap(lambda r: r))

    def distinct(self):
        return self.aggregate(set(), lambda a, r: a.add(r) or a, lambda a, r: a.update(r) or a).flatmap(lambda x: list(x))

    def run(self, arg=None, convertToStr=True, collect=True, **kwargs):
        """Runs the pipeline once over the reader's records."""
        mode = kwargs.get('mode', 'async')
        if not isinstance(mode, str):
            raise GearsError('execution mode must be a string')
        if mode not in _MODES:
            raise GearsError('unknown execution mode')
        arg = self.defaultArg if arg is None else arg
        _READER_CHECKS[self.reader](arg, kwargs)
        steps = list(self.steps)
        if convertToStr:
            steps.append(('map', _to_str))
        if collect:
            steps.append(('collect',))
        plan = _Plan(self.reader, arg, kwargs, steps)
        # Inside a step, run() starts the execution now and returns what
        # awaits it; the script's own run() replies to RG.PYEXECUTE.
        plan.waiter = _RunWaiter()
        token = next(_tokens)
        _plans[token] = plan
        try:
            in_step = _gears.run(token, plan.describe(), self.desc or '')
        except BaseException:
            _plans.pop(token, None)
            raise
        if not in_step:
            plan.waiter = None
            return None
        return plan.waiter


    def register(self, prefix='*', convertToStr=True, collect=True, **kwargs):
        """Runs the pipeline on every event of the reader; returns the registration id."""
        if 'regex' in kwargs:
            _gears.log('warning', 'GEARS: regex argument is deprecated, use prefix instead')
            prefix = kwargs.pop('regex')
        mode = kwargs.get('mode', 'async')
        if not isinstance(mode, str):
            raise GearsError('execution mode must be a string')
        if mode not in _REGISTER_MODES:
            raise GearsError('unknown execution mode')
        on_registered = kwargs.get('onRegistered')
        if on_registered is not None and not isinstance(on_registered, _FunctionType):
            raise GearsError('OnRegistered argument must be a function')
        check = _REGISTER_CHECKS.get(self.reader)
        if check is None:
            raise GearsError('given reader does not exists or does not support register')
        args = check(prefix, kwargs, mode)
        steps = list(self.steps)
        if convertToStr:
            steps.append(('map', _to_str))
        if collect:
            steps.append(('collect',))
        plan = _Plan(self.reader, prefix, kwargs, steps)
        token = next(_tokens)
        _registered[token] = plan
        try:
            reg_id = _gears.register(token, self.reader, mode, self.desc or '', plan.describe(), args)
        except BaseException:
            _registered.pop(token, None)
            raise
        if on_registered is not None:
            on_registered()
        return reg_id


GB = GearsBuilder

# ---------------------------------------------------------------------------
# register(): each reader's arguments, checked and reduced to plain data for
# the host.

_REGISTER_MODES = ('async', 'async_local', 'sync')
_KEY_TYPES = ('empty', 'string', 'list', 'hash', 'set', 'zset', 'module', 'stream')


def _str_list(value, name, item):
    if value is None:
        return None
    try:
        items = list(value)
    except TypeError:
        raise GearsError('given %s is not iterable' % name)
    for i in items:
        if not isinstance(i, str):
            raise GearsError('given %s is not string' % item)
    return items


def _register_keys(prefix, kw, mode):
    if not isinstance(prefix, str):
        raise GearsError('regex argument must be a string')
    event_types = _str_list(kw.get('eventTypes'), 'eventTypes', 'event type')
    key_types = _str_list(kw.get('keyTypes'), 'keyTypes', 'key type')
    for t in key_types or ():
        if t not in _KEY_TYPES:
            raise GearsError('unknown key type')
    commands = _str_list(kw.get('commands'), 'commands', 'command type')
    read_value = kw.get('readValue', True)
    if not isinstance(read_value, bool):
        raise GearsError('readValue value is not boolean')
    for c in commands or ():
        # As RedisGears: a command whose keys move cannot be watched.
        _check_hook(c, '', 'hook')
    return {'prefix': prefix, 'eventTypes': event_types, 'keyTypes': key_types, 'readValue': read_value,
            'commands': [c.lower() for c in commands] if commands is not None else None}


def _register_commands(prefix, kw, mode):
    trigger, hook, keyprefix = kw.get('trigger'), kw.get('hook'), kw.get('keyprefix')
    if trigger is not None and (hook is not None or keyprefix is not None):
        raise GearsError('trigger argument can not be given with keyprefix or hook')
    if trigger is None and hook is None:
        raise GearsError('no trigger or hook argument was given')
    inorder = kw.get('inorder', False)
    if not isinstance(inorder, bool):
        raise GearsError('inorder argument is be boolean')
    if trigger is None:
        _check_hook(hook, keyprefix)
        return {'hook': hook.lower(), 'keyprefix': keyprefix or ''}
    if not isinstance(trigger, str):
        raise GearsError('trigger argument is not string')
    return {'trigger': trigger, 'inorder': inorder}


def _check_hook(hook, keyprefix, verb='override'):
    if not isinstance(hook, str):
        raise GearsError('hook argument is not string')
    if keyprefix is not None and not isinstance(keyprefix, str):
        raise GearsError('keyprefix argument is not string')
    info = execute('COMMAND', 'INFO', hook)
    if not info or info[0] is None:
        raise GearsError('Can not %s an unexisting command' % verb if verb == 'override' else 'bad reply on COMMAND command')
    flags = info[0][2]
    if 'noscript' in flags:
        raise GearsError('Can not %s a command which are not allowed inside a script' % verb)
    if keyprefix is not None and 'movablekeys' in flags:
        raise GearsError('Can not %s a command with moveable keys by key prefix' % verb)


def _register_stream(prefix, kw, mode):
    if not isinstance(prefix, str):
        raise GearsError('regex argument must be a string')
    for name in ('batch', 'duration', 'onFailedRetryInterval'):
        value = kw.get(name, 1)
        if not isinstance(value, int) or isinstance(value, bool):
            raise GearsError('%s argument must be a number' % ('retryInterval' if name == 'onFailedRetryInterval' else name))
    policy = kw.get('onFailedPolicy', 'continue')
    if not isinstance(policy, str):
        raise GearsError('onFailedPolicy must be a string (Continue/Abort/Retry)')
    if policy.lower() not in ('continue', 'abort', 'retry'):
        raise GearsError('onFailedPolicy must be Continue/Abort/Retry')
    if not isinstance(kw.get('trimStream', True), bool):
        raise GearsError('pyTrimmStream argument must be a boolean')
    if mode == 'sync' and policy.lower() != 'continue':
        raise GearsError('ExecutionMode sync can only be combined with OnFailedPolicy Continue')
    return {'prefix': prefix, 'batch': max(kw.get('batch', 1), 1), 'duration': kw.get('duration', 0),
            'onFailedPolicy': policy.lower(), 'retryInterval': kw.get('onFailedRetryInterval', 1),
            'trimStream': kw.get('trimStream', True)}


_REGISTER_CHECKS = {
    'KeysReader': _register_keys,
    'CommandReader': _register_commands,
    'StreamReader': _register_stream,
}

# ---------------------------------------------------------------------------
# Readers: each returns an iterator of batches (lists) of records.


def _check_keys(arg, kw):
    if not isinstance(arg, str):
        raise GearsError('regex argument must be a string')
    if not isinstance(kw.get('noScan', False), bool):
        raise GearsError('exactMatch value is not boolean')
    if not isinstance(kw.get('readValue', True), bool):
        raise GearsError('readValue value is not boolean')


def _check_pattern(arg, kw):
    if not isinstance(arg, str):
        raise GearsError('regex argument must be a string')


def _check_stream(arg, kw):
    _check_pattern(arg, kw)
    if not isinstance(kw.get('fromId', '0-0'), str):
        raise GearsError('fromId argument must be a string')


def _check_python(arg, kw):
    if not isinstance(arg, _FunctionType):
        raise GearsError('pyreader argument must be a function')


def _check_no_run(arg, kw):
    raise GearsError('Given reader do not support run or not exists')


_READER_CHECKS = {
    'KeysReader': _check_keys,
    'KeysOnlyReader': _check_pattern,
    'StreamReader': _check_stream,
    'PythonReader': _check_python,
    'ShardsIDReader': lambda arg, kw: None,
    'CommandReader': _check_no_run,
}

_SCAN_BATCH = 1000  # keys read per Redis lock hold


def _read_keys(pattern, kw):
    read_value = kw.get('readValue', True)
    if kw.get('noScan', False):
        record = _gears.read_key(pattern, read_value)  # None: the user may not read it
        yield [record] if record is not None else []
        return
    cursor = '0'
    while True:
        cursor, batch = _gears.scan_keys(cursor, pattern, _SCAN_BATCH, read_value)
        if batch:
            yield batch
        if cursor == '0':
            return


def _read_key_names(pattern, kw):
    count = kw.get('count', 1000)
    no_scan = kw.get('noScan', False)
    generator = kw.get('patternGenerator')
    if generator is not None:
        pattern, no_scan = generator()
    if no_scan:
        yield [pattern] if execute('exists', pattern) else []
        return
    cursor = '0'
    while True:
        cursor, keys = execute('scan', cursor, 'MATCH', pattern, 'COUNT', count)
        yield keys
        if cursor == '0':
            return


def _read_stream(key, kw):
    from_id = kw.get('fromId', '0-0')
    while True:
        res = execute('xread', 'COUNT', _SCAN_BATCH, 'STREAMS', key, from_id)
        if not res:
            return
        entries = res[0][1]
        if not entries:
            return
        yield [{'key': key, 'id': eid, 'value': dict(zip(fields[::2], fields[1::2]))} for eid, fields in entries]
        from_id = entries[-1][0]


def _read_python(factory, kw):
    it = iter(factory())
    while True:
        batch = list(_itertools.islice(it, 256))
        if not batch:
            return
        yield batch


def _read_shard_ids(arg, kw):
    yield ['1']


def shardReaderCallback():
    """RedisGears' ShardsIDReader as a PythonReader function: this shard's id."""
    yield from next(_read_shard_ids(None, {}))


__all__ += ['shardReaderCallback']


_READER_FUNCS = {
    'KeysReader': _read_keys,
    'KeysOnlyReader': _read_key_names,
    'StreamReader': _read_stream,
    'PythonReader': _read_python,
    'ShardsIDReader': _read_shard_ids,
}

# ---------------------------------------------------------------------------
# Steps: each wraps the record iterator of the step before it. A callback's
# exception becomes an error record (its text in the errors list) and the
# record is dropped; the execution goes on.


def _error_text(e):
    return format_error(e)


def _step_map(it, errors, f):
    for r in it:
        if r is _HOLD:
            yield r
            continue
        try:
            r = f(r)
        except Exception as e:
            _failed(errors, e)
            continue
        if _created or type(r) is _Coroutine:
            slot = _settle(r, errors, 'map', None)
            r = None  # a future nobody else holds fails its record (__del__)
            yield from _async_tail(it, errors, f, 'map', slot)
            return
        yield r


def _step_flatmap(it, errors, f):
    for r in it:
        if r is _HOLD:
            yield r
            continue
        try:
            r = f(r)
        except Exception as e:
            _failed(errors, e)
            continue
        if _created or type(r) is _Coroutine:
            slot = _settle(r, errors, 'flatmap', None)
            r = None  # a future nobody else holds fails its record (__del__)
            yield from _async_tail(it, errors, f, 'flatmap', slot)
            return
        if type(r) is list:
            yield from reversed(r)  # RedisGears pops the list from its end
        else:
            yield r


def _step_foreach(it, errors, f):
    for r in it:
        if r is _HOLD:
            yield r
            continue
        try:
            v = f(r)
        except Exception as e:
            _failed(errors, e)
            continue
        if _created or type(v) is _Coroutine:
            slot = _settle(v, errors, 'foreach', r)
            v = None  # a future nobody else holds fails its record (__del__)
            yield from _async_tail(it, errors, f, 'foreach', slot)
            return
        yield r


def _step_filter(it, errors, f):
    for r in it:
        if r is _HOLD:
            yield r
            continue
        try:
            keep = f(r)
        except Exception as e:
            _failed(errors, e)
            continue
        if _created or type(keep) is _Coroutine:
            slot = _settle(keep, errors, 'filter', r)
            keep = None  # a future nobody else holds fails its record (__del__)
            yield from _async_tail(it, errors, f, 'filter', slot)
            return
        if keep:
            yield r


def _step_accumulate(it, errors, f):
    acc, seen = None, False
    for r in it:
        if r is _HOLD:
            yield r
            continue
        seen = True
        try:
            acc = f(acc, r)
        except Exception as e:
            if _created:  # as RedisGears: a future made and not returned leaves None
                _discard_created()
                acc = None
            else:
                errors.append(_error_text(e))
            continue
        if _created or type(acc) is _Coroutine:
            slot = _settle(acc, errors, 'accumulate', None)
            acc = None
            while not slot.done:
                yield _HOLD
            acc = slot.take(errors)
    if seen:
        yield acc


def _key_of(extractor, r):
    k = extractor(r)
    if type(k) is _Coroutine:
        k.close()
        raise GearsError('coroutine are not allow on extractor')
    return k if isinstance(k, str) else repr(k)


def _step_groupby(it, errors, extractor, reducer):
    groups = {}
    for r in it:
        if r is _HOLD:
            yield r
            continue
        try:
            k = _key_of(extractor, r)
            v = reducer(k, groups.get(k), r)
        except Exception as e:
            if _created:  # as in accumulate
                _discard_created()
                groups[k] = None
            else:
                errors.append(_error_text(e))
            continue
        if _created or type(v) is _Coroutine:
            slot = _settle(v, errors, 'groupby', None)
            v = None
            while not slot.done:
                yield _HOLD
            v = slot.take(errors)
        groups[k] = v
    for k, v in groups.items():
        yield {'key': k, 'value': v}


def _step_batchgroupby(it, errors, extractor, reducer):
    groups = {}
    for r in it:
        if r is _HOLD:
            yield r
            continue
        try:
            groups.setdefault(_key_of(extractor, r), []).append(r)
        except Exception as e:
            errors.append(_error_text(e))
    for k, records in groups.items():
        try:
            v = reducer(k, records)
            if type(v) is _Coroutine:
                v.close()
                raise GearsError('coroutine are not allow on reduce')
            yield {'key': k, 'value': v}
        except Exception as e:
            errors.append(_error_text(e))


def _step_repartition(it, errors, extractor):
    # One shard: records stay here, but the key is still computed (its
    # errors are reported as in a cluster).
    for r in it:
        if r is not _HOLD:
            try:
                _key_of(extractor, r)
            except Exception as e:
                errors.append(_error_text(e))
                continue
        yield r


def _step_collect(it, errors):
    return it


def _step_limit(it, errors, length, start):
    if length < 0 or start < 0:
        raise ValueError('limit arguments must not be negative')
    if not length:
        return
    seen = 0
    for r in it:
        if r is _HOLD:
            yield r
            continue
        seen += 1
        if seen > start:
            yield r
            if seen >= start + length:
                return


_STEPS = {
    'map': _step_map, 'flatmap': _step_flatmap, 'foreach': _step_foreach, 'filter': _step_filter,
    'accumulate': _step_accumulate, 'localgroupby': _step_groupby, 'groupby': _step_groupby,
    'batchgroupby': _step_batchgroupby, 'repartition': _step_repartition, 'collect': _step_collect,
    'limit': _step_limit,
}

# RG.GETEXECUTION's step type names.
_STEP_TYPES = {
    'localgroupby': 'accumulatebykey', 'groupby': 'accumulatebykey', 'batchgroupby': 'reduce',
    'repartition': 'repartition',
}


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
    try:
        try:
            yield from _wait(errors)
            for r in it:
                if r is _HOLD:
                    yield from _wait(errors)
                elif keep_results:
                    results.append(_to_reply(r))
        except GearsError as e:
            errors.append(str(e))
        except Exception as e:
            errors.append(_error_text(e))
    except GearsForceStopped:
        errors.append('Execution was aborted')
    return [results, errors, 0, 0, []]


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
    try:
        try:
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
            for r in it:
                if r is _HOLD:
                    yield from _wait(errors)
                    continue
                if records is not None:
                    records.append(r)
                if keep_results:
                    results.append(_to_reply(r))
        except GearsError as e:
            # A reader's failure (e.g. a Redis error) is reported as its text.
            errors.append(str(e))
        except Exception as e:
            errors.append(_error_text(e))
    except GearsForceStopped:
        errors.append('Execution was aborted')
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
