# Executions across the shards of a cluster: a plan travels to every shard
# as bytes (its callbacks by value: every shard runs the same bundled Python,
# so their code objects load as they are), and runs there in segments cut at
# the steps that move records between shards (collect, repartition, and the
# global half of groupby/batchgroupby). The host ships each segment's output
# to the shard it is for, and starts the next segment once every shard has
# finished the previous one.
#
# Executed into module redisgears after execution.py (same namespace).


def _by_value(f):
    """Whether a function must travel by value: the session's own (its
    script's __main__, lambdas, nested ones), which no shard can import."""
    mod = getattr(f, '__module__', None)
    return mod in (None, '__main__') or '<' in f.__qualname__


def _names_of(code, out):
    out.update(code.co_names)
    for c in code.co_consts:
        if type(c) is type(code):
            _names_of(c, out)
    return out


def _make_function(code, name, qualname, ncells, module):
    """A function skeleton; _fill_function gives it its state once the
    pickle has made what that refers to (itself included). The runtime's
    own closures (aggregate's, ...) live in module redisgears."""
    import types
    cells = tuple(types.CellType() for _ in range(ncells)) or None
    g = globals() if module == 'redisgears' else _loading_globals[-1]
    f = types.FunctionType(code, g, name, None, cells)
    f.__qualname__ = qualname
    return f


def _fill_function(f, state):
    names, defaults, kwdefaults, cells, module, doc = state
    for k, v in names.items():
        f.__globals__.setdefault(k, v)
    f.__defaults__ = defaults
    f.__kwdefaults__ = kwdefaults
    f.__module__ = module
    f.__doc__ = doc
    for cell, (full, v) in zip(f.__closure__ or (), cells):
        if full:
            cell.cell_contents = v


_loading_globals = []  # the globals dict the functions of the plan being loaded share


def _pickler(buf):
    import pickle
    import types
    import marshal

    class Pickler(pickle.Pickler):
        def reducer_override(self, obj):
            if type(obj) is types.FunctionType and _by_value(obj):
                g = obj.__globals__
                names = {}
                if obj.__module__ != 'redisgears':
                    names = {n: g[n] for n in _names_of(obj.__code__, set()) if n in g and n not in _SESSION_NAMES}
                cells = []
                for c in obj.__closure__ or ():
                    try:
                        cells.append((True, c.cell_contents))
                    except ValueError:
                        cells.append((False, None))
                state = (names, obj.__defaults__, obj.__kwdefaults__, cells, obj.__module__, obj.__doc__)
                return (_make_function, (obj.__code__, obj.__name__, obj.__qualname__, len(cells), obj.__module__),
                        state, None, None, _fill_function)
            if type(obj) is types.CodeType:
                return (marshal.loads, (marshal.dumps(obj),))
            if type(obj) is types.ModuleType:
                return (__import__, (obj.__name__,))
            return NotImplemented

    return Pickler(buf, protocol=5)


# What every session's globals hold already: not sent.
_SESSION_NAMES = frozenset(__all__) | {'redisgears', 'rg', '__builtins__'}


def _dumps(obj, what):
    import io
    buf = io.BytesIO()
    try:
        _pickler(buf).dump(obj)
    except Exception as e:
        raise GearsError('Error occured when serialized a python callback, callback=%s error=%s' % (what, e))
    return buf.getvalue()


def _segments(steps):
    """The plan's steps cut where records move between shards: a list of
    (steps, move), move being ('collect',), ('repartition', extractor) or
    None for the last segment."""
    out, cur = [], []
    for step in steps:
        kind = step[0]
        if kind == 'collect':
            out.append((cur, ('collect',)))
            cur = []
        elif kind == 'repartition':
            out.append((cur, ('repartition', step[1])))
            cur = []
        elif kind in ('groupby', 'batchgroupby'):
            # grouped where the key lives: every record of a key on one shard
            out.append((cur, ('repartition', step[1])))
            cur = [step]
        else:
            cur.append(step)
    out.append((cur, None))
    return out


def _dist_prepare(token):
    """The plan of run() `token`, as bytes for the other shards (None: it
    runs on this shard only, mode async_local); the plan stays here for
    _dist_segment."""
    plan = _plans[token]
    if plan.kwargs.get('mode', 'async') != 'async':
        return None
    return plan.dumped if plan.dumped is not None else _dist_dump(plan)


def _dist_dump(plan):
    return _dumps((plan.reader, plan.arg, plan.kwargs, plan.steps), plan.reader)


def _dist_load(data, session_globals=None):
    """A plan another shard sent; returns its token here. With
    session_globals (the session it comes from lives here too: it
    registered), its functions share that session's globals, their own
    values filling only the names it lacks, as in RedisGears; else they
    share a globals dict of their own, as they did where they were made."""
    import pickle
    if session_globals is None:
        session_globals = dict(sys.modules['__main__'].__dict__)
    _loading_globals.append(session_globals)
    try:
        reader, arg, kwargs, steps = pickle.loads(data)
    finally:
        _loading_globals.pop()
    token = next(_tokens)
    _plans[token] = _Plan(reader, arg, kwargs, steps)
    return token


def _dist_dump_registered(token):
    """A registration's plan, made by running code (not by its script), as
    bytes for the other shards."""
    return _dist_dump(_registered[token])


def _dist_register(data, desc, session_globals):
    """Registers here, in this session, the plan another shard's running
    code registered (_dist_dump_registered); its functions share the
    session's globals, as a run()'s do."""
    import pickle
    _loading_globals.append(session_globals)
    try:
        reader, arg, kwargs, steps = pickle.loads(data)
    finally:
        _loading_globals.pop()
    gb = GearsBuilder(reader, desc=desc or None)
    gb.steps = list(steps)  # to-str and collect included already
    return gb.register(arg, convertToStr=False, collect=False, **kwargs)


def _plain(v, depth=0):
    """Whether v is plain data (numbers, strings, bytes, and containers of
    them): what _dist_session_data carries."""
    if v is None or type(v) in (int, float, str, bytes, bool):
        return True
    if depth > 4:
        return False
    if type(v) in (list, tuple, set, frozenset):
        return all(_plain(x, depth + 1) for x in v)
    if type(v) is dict:
        return all(_plain(k, depth + 1) and _plain(x, depth + 1) for k, x in v.items())
    return False


def _dist_session_data(tokens, session_globals):
    """The plain data among the session's globals that registrations
    `tokens` use (through their functions and the session's functions
    they call), pickled: the other shards, which re-run the script, take
    these values from the registering shard, as RedisGears 1.2's pickled
    functions carried them there. None when there is none."""
    import pickle
    import types
    main = session_globals
    out, seen = {}, set()
    todo = [f for t in tokens for step in _registered[t].steps for f in step[1:]]
    while todo:
        f = todo.pop()
        if type(f) is not types.FunctionType or id(f) in seen:
            continue
        seen.add(id(f))
        for c in f.__closure__ or ():
            try:
                todo.append(c.cell_contents)
            except ValueError:
                pass
        if f.__globals__ is not main:
            continue
        for name in _names_of(f.__code__, set()):
            if name in out or name in _SESSION_NAMES or name not in main:
                continue
            v = main[name]
            if type(v) is types.FunctionType:
                todo.append(v)
            elif _plain(v):
                out[name] = v
    return pickle.dumps(out, 5) if out else None


def _dist_set_session_data(data, session_globals):
    """Takes the registering shard's values of _dist_session_data."""
    import pickle
    session_globals.update(pickle.loads(data))


def _slot_of(key):
    import binascii
    b = key.encode() if isinstance(key, str) else bytes(key)
    s = b.find(b'{')
    if s >= 0:
        e = b.find(b'}', s + 1)
        if e > s + 1:
            b = b[s + 1:e]
    return binascii.crc_hqx(b, 0) & 16383


def _dist_segment(token, seg, inputs, routing, nshards, me, initiator, event=None, registered=False):
    """Runs segment `seg` of plan `token` (a registration's with registered,
    on its event's records, which only a CommandReader's trigger gives every
    shard) on this shard: on its reader (segment 0) or on the records other
    shards sent it (`inputs`, pickled lists). Returns [outputs, errors]:
    outputs has one entry per shard (pickled records for it, or None); the
    last segment's records stay here, returned in reply form."""
    import pickle
    plan = _registered[token] if registered else _plans[token]
    segments = _segments(plan.steps)
    steps, move = segments[seg]
    errors = []
    per_shard = [[] for _ in range(nshards)]
    results = []
    try:
        try:
            if seg == 0 and registered and event is not None and plan.reader == 'StreamReader':
                # acknowledged once every shard is done: _dist_stream_end
                batch = _dist_streams[(token, event[0])] = _StreamBatch(plan, event[0], len(event) > 1 and event[1])
                it = iter(batch.records()[0])
            elif seg == 0 and registered:
                it = iter(_event_records(plan, event)[0] if event is not None else [])
            elif seg == 0:
                it = (r for batch in _READER_FUNCS[plan.reader](plan.arg, plan.kwargs) for r in batch)
            else:
                it = (r for data in inputs for r in pickle.loads(data))
            for kind, *fns in steps:
                it = _STEPS[kind](it, errors, *fns)
            for r in it:
                if r is _HOLD:
                    _wait_here(errors)
                    continue
                if move is None:
                    results.append(r)
                elif move[0] == 'collect':
                    per_shard[initiator].append(r)
                else:
                    try:
                        per_shard[routing[_slot_of(_key_of(move[1], r))]].append(r)
                    except GearsError:
                        raise
                    except Exception as e:
                        errors.append(_error_text(e))
        except GearsError as e:
            errors.append(str(e))
        except Exception as e:
            errors.append(_error_text(e))
    except GearsForceStopped:
        errors.append('Execution was aborted')
    _aio_states.pop(id(errors), None)
    if move is None:
        if plan.waiter is not None:  # a run() inside a step: awaiting it gives the records
            plan.dist_records = results
        return [[_to_reply(r) for r in results], errors]
    return [[pickle.dumps(rs, 5) if rs else None for rs in per_shard], errors]


_dist_streams = {}  # (registration token, stream key) -> its batch across the shards


def _dist_stream_end(token, key, errors):
    """Acknowledges a StreamReader batch that ran across the shards, as
    _execution does one that ran here; returns [entries read, lag ms,
    acknowledged]."""
    batch = _dist_streams.pop((token, key), None)
    if batch is None:
        return [0, 0, False]
    try:
        return batch.finish(errors)
    except GearsError as e:
        errors.append(str(e))
        return [len(batch.entries), 0, False]


def _wait_here(errors):
    """Waits, on this thread, until the segment's async records are all
    continued: a segment holds its thread anyway (the host waits for the
    other shards there too), so it does not suspend. Sleeping lets the
    coroutines' loop and other threads run."""
    import time
    while True:
        a = _aio_states.get(id(errors))
        if a is None:
            return
        with a.lock:
            if a.outstanding == 0:
                return
        time.sleep(0.001)


def _dist_segments(token, registered=False):
    return len(_segments((_registered if registered else _plans)[token].steps))


def _dist_end(token, errors=()):
    """Forgets plan `token`; a run() inside a step that ran across the shards
    gives its records and every shard's errors to what awaits it."""
    plan = _plans.pop(token, None)
    if plan is not None and plan.waiter is not None:
        plan.waiter._set([plan.dist_records, list(errors)])
