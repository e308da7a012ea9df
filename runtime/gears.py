# The Python side of gears: what every session finds in its globals.
# The native half lives in module _gears (host functions in Go, execute and
# atomic in C); this file gives it RedisGears 1.2's names and checks.
import sys

import _gears

__all__ = [
    'GearsBuilder', 'GB', 'execute', 'atomic', 'configGet', 'gearsConfigGet', 'hashtag', 'log',
    'flat_error', 'GearsError', 'GearsFlatError', 'GearsForceStopped',
    'Log', 'ConfigGet', 'GearsConfigGet', 'registerTE', 'call_next', 'get_command', 'override_reply',
]


class GearsError(Exception):
    """An error raised by gears or by a Redis command run through execute()."""


class GearsFlatError(GearsError):
    """An error whose text is reported as is, without a traceback."""


class GearsForceStopped(BaseException):
    """Raised inside a step when its execution is aborted (a BaseException, so
    the engine's per-record `except Exception` does not swallow it)."""


# RedisGears 1.x named these gears.error, gears.flat_error, gears.forcestopped;
# tracebacks and error texts show those names.
for _cls, _name in ((GearsError, 'error'), (GearsFlatError, 'flat_error'), (GearsForceStopped, 'forcestopped')):
    _cls.__module__ = 'gears'
    _cls.__name__ = _cls.__qualname__ = _name
_gears.error = GearsError
_gears.forcestopped = GearsForceStopped

execute = _gears.execute
executeCommand = execute  # RedisGears' name in module redisgears

_LOG_LEVELS = ('debug', 'verbose', 'notice', 'warning')


def log(message, level='notice'):
    """Write 'GEARS: <message>' to the Redis log."""
    if message in _LOG_LEVELS and isinstance(level, str) and level not in _LOG_LEVELS:
        # RedisGears 1.0's log(level, message) order, still accepted.
        _gears.log('warning', 'GEARS: log(level, message) is deprecated, use log(message, level=level)')
        message, level = level, message
    if not isinstance(message, str):
        raise GearsError('Log message must be a string')
    if level not in _LOG_LEVELS:
        raise GearsError('Log level should be one of the following : debug,verbose,notice,warning')
    _gears.log(level, 'GEARS: ' + message)


def configGet(key, *rest):
    """A value from the extra config dictionary (module arguments and RG.CONFIGSET), or None."""
    if rest:
        raise GearsError('get_config function must get a single key input')
    if not isinstance(key, str):
        raise GearsError('get_config key must be a string')
    return _gears.config_get(key)


def gearsConfigGet(key, default=None):
    value = configGet(key)
    return default if value is None else value


def hashtag():
    """A hash tag that maps to a slot this shard serves ('06S' outside a cluster)."""
    return _gears.hashtag()


def flat_error(msg):
    raise GearsFlatError(msg)


_timers = {}  # token -> (callback, session key)
_timer_count = 0


def registerTE(*args):
    """registerTE(seconds, callback[, keyName]): calls callback() every
    `seconds` seconds in this session until it raises. With a key name the
    event is kept in that key (saved with the data; deleting the key stops
    it) and False is returned when the key exists already."""
    if len(args) < 2 or len(args) > 3:
        raise GearsError('not enough arguments for time event')
    seconds, callback = args[0], args[1]
    key = args[2] if len(args) > 2 else None
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        raise GearsError('time argument must be a long')
    if not callable(callback) or isinstance(callback, type):
        raise GearsError('callback must be a function')
    if key is not None and not isinstance(key, str):
        raise GearsError('key name must be a string')
    global _timer_count
    _timer_count += 1
    token = _timer_count
    _timers[token] = (callback, _gears.session_key())
    try:
        created = _gears.register_timer(token, seconds, key)
    except BaseException:
        del _timers[token]
        raise
    if not created:
        del _timers[token]
    return created


registerTimeEvent = registerTE  # RedisGears' name in module redisgears


def _fire_timer(token):
    """Runs time event `token`; False stops it (after an exception, as in RedisGears)."""
    try:
        _timers[token][0]()
        return True
    except Exception as e:
        _gears.log('warning', 'GEARS: time event stopped after an error: ' + format_error(e))
        del _timers[token]
        return False


def call_next(*args):
    """Runs the next command hook, or the hooked command, with these
    arguments (inside a hook only) and returns its reply."""
    return _gears.call_next([a if isinstance(a, (bytes, bytearray)) else str(a) for a in args], _scope.get())


def get_command():
    """The arguments of the command that fired this execution (KeysReader commands= only)."""
    return _gears.get_command(_scope.get())


def override_reply(*args):
    """Replaces the reply of the command that fired this execution (KeysReader
    commands= only): '+x' replies status x, '-x' error x, as results do."""
    if len(args) != 1:
        raise GearsError('Override reply must get a single argument')
    _gears.override_reply(_to_reply(args[0]), _scope.get())


class atomic:
    """with atomic(): the block runs with the Redis lock held, so no other
    command runs in between."""

    def __enter__(self):
        _gears.atomic_enter()
        return self

    def __exit__(self, *exc):
        _gears.atomic_exit()
        return False


def _deprecated(old, new):
    def wrapper(*args, **kwargs):
        _gears.log('warning', 'GEARS: %s is deprecated, use %s instead' % (old, new.__name__))
        return new(*args, **kwargs)
    wrapper.__name__ = old
    return wrapper


Log = _deprecated('Log', log)
ConfigGet = _deprecated('ConfigGet', configGet)
GearsConfigGet = _deprecated('GearsConfigGet', gearsConfigGet)

def format_error(exc):
    """The text RedisGears reports for an exception (error replies, errors lists)."""
    if isinstance(exc, GearsFlatError):
        return str(exc)
    if isinstance(exc, GearsForceStopped):
        return 'Execution was aborted'  # what was running was stopped on purpose
    if type(exc) is MemoryError and not exc.args:
        try:
            exc.args = (_gears.memory_note(),)  # which limit it hit
        except BaseException:
            pass
    if _gears.attempt_traceback():
        import traceback  # on first error only: it costs a new interpreter ~15 ms
        return str(traceback.format_exception(exc))
    return 'Error type: %s, Value: %s' % (type(exc), exc)


_gears.format_error = format_error


def _hint_isolation_mode():
    """Own-GIL interpreters refuse C extensions with single-phase init
    (numpy, torch, PyO3 modules): their ImportError also names the module
    setting that runs every session in one interpreter, where they load.
    The loader class is this interpreter's own, so only it is changed."""
    loader = sys.modules['_frozen_importlib_external'].ExtensionFileLoader
    create = loader.create_module

    def create_module(self, spec):
        try:
            return create(self, spec)
        except ImportError as e:
            if 'does not support loading in subinterpreters' not in str(e):
                raise
            raise ImportError("%s; load gears with 'IsolationMode shared' to run every session in one "
                              "shared interpreter, where it loads" % e, name=e.name, path=e.path) from None

    loader.create_module = create_module


def _threads_inherit_session():
    """IsolationMode shared: the interpreter cannot tell which session a
    thread started by Python belongs to, so Thread.start() hands its own
    session to the new thread, which holds it alive until it ends (execute()
    then runs as the session's user; run() and register() know it)."""
    import threading
    start = threading.Thread.start

    def start_in_session(self):
        key = _gears.session_key()
        if not key or not _gears.hold_session(key):
            return start(self)
        run = self.run

        def run_in_session():
            _gears.enter_session(key)
            try:
                run()
            finally:
                _gears.leave_session(key)

        self.run = run_in_session
        try:
            return start(self)
        except BaseException:
            _gears.release_session(key)
            raise

    threading.Thread.start = start_in_session


class _LogStream:
    """sys.stdout/sys.stderr: whole lines go to the Redis log."""

    def __init__(self, level):
        self._level = level
        self._buf = ''

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError('write() argument must be str, not %s' % type(text).__name__)
        self._buf += text
        *lines, self._buf = self._buf.split('\n')
        for line in lines:
            _gears.log(self._level, 'GEARS: ' + line)
        return len(text)

    def flush(self):
        if self._buf:
            _gears.log(self._level, 'GEARS: ' + self._buf)
            self._buf = ''

    def isatty(self):
        return False

    def writable(self):
        return True


sys.stdout = _LogStream('notice')
sys.stderr = _LogStream('warning')
# No interpreter binary is bundled; '' tells subprocess and multiprocessing so
# instead of letting them start redis-server.
sys.executable = ''
