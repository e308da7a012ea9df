# GearsBuilder: a builder records a plan, a reader and a list of steps, and
# checks its arguments. run() hands the plan to the host, which schedules an
# execution and later calls _run_execution (execution.py) on an execution
# thread; every record then flows through the steps (steps.py) inside the
# interpreter, so the host is crossed once per batch of records, not once per
# record per step.
#
# Executed into module redisgears after gears.py (same namespace), before
# steps.py, execution.py and futures.py.
import itertools as _itertools

__all__ += ['GearsBuilder', 'GB']

_FunctionType = type(lambda: None)  # types.FunctionType, without importing types


_IMMUTABLE = (int, float, complex, str, bytes, bool, type(None))


def _deepcopy(x):
    """An aggregation's zero value, fresh for each use. Immutable ones (the
    common 0 of count(), '' ...) need no copy: importing copy costs every
    session ~3 ms, since each has an interpreter of its own."""
    if type(x) in _IMMUTABLE:
        return x
    import copy
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
        if mode == 'async' and _gears.across_shards():
            # What cannot travel to the other shards fails here, in the
            # script, as in RedisGears.
            plan.dumped = _dist_dump(plan)
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
