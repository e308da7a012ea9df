# Readers and steps of a plan: a reader yields batches of records, and each
# step wraps the record iterator of the one before it, so that records flow
# through the whole plan inside the interpreter.
#
# Executed into module redisgears after builder.py (same namespace).

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
    scanner = _gears.key_scanner(pattern, _SCAN_BATCH, read_value)
    while (batch := _gears.scan_next(scanner)) is not None:
        if batch:
            yield batch


def _read_key_names(pattern, kw):
    count = kw.get('count', 1000)
    no_scan = kw.get('noScan', False)
    generator = kw.get('patternGenerator')
    if generator is not None:
        pattern, no_scan = generator()
    if no_scan:
        try:
            exists = execute('exists', pattern)
        except GearsError as e:
            if not _not_local(e):
                raise
            exists = False  # another shard's key: read there
        yield [pattern] if exists else []
        return
    cursor = '0'
    while True:
        cursor, keys = execute('scan', cursor, 'MATCH', pattern, 'COUNT', count)
        yield keys
        if cursor == '0':
            return


def _not_local(e):
    """Whether a GearsError says the key is another shard's: a reader of one
    key reads nothing on the shards that do not own it."""
    return 'non local key' in str(e)


def _read_stream(key, kw):
    from_id = kw.get('fromId', '0-0')
    while True:
        try:
            res = execute('xread', 'COUNT', _SCAN_BATCH, 'STREAMS', key, from_id)
        except GearsError as e:
            if not _not_local(e):
                raise
            return
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
