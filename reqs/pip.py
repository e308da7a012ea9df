# Runs pip inside a sub-interpreter of its own. pip prints to stdout and
# stderr; both are captured and handed back for the Redis log.
import contextlib
import io
import sys
import traceback


def pip(pip_dir, args):
    if pip_dir not in sys.path:
        sys.path.insert(0, pip_dir)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            from pip._internal.cli.main import main
            rc = main(args)
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else 1
        except BaseException:
            traceback.print_exc(file=out)
            rc = 1
    return [rc or 0, out.getvalue()]
