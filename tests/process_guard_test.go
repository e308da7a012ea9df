package tests

// Python that would end, signal, fork or replace the server's process is
// refused with a clear Python error, in both isolation modes, and the
// server lives on.

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPythonCannotEndTheServer(t *testing.T) {
	t.Parallel()
	refused := []struct{ name, code string }{
		{"os._exit", "os._exit(1)"},
		{"os.abort", "os.abort()"},
		{"os._exit", "del sys.modules['posix']\nimport posix\nposix._exit(3)"}, // a fresh copy of the module
		{"os.kill", "os.kill(os.getpid(), signal.SIGKILL)"},
		{"os.kill", "os.kill(0, signal.SIGTERM)"},
		{"os.kill", "os.kill(-1, signal.SIGTERM)"},
		{"os.killpg", "os.killpg(os.getpgrp(), signal.SIGTERM)"},
		{"signal.raise_signal", "signal.raise_signal(signal.SIGTERM)"},
		{"signal.pthread_kill", "signal.pthread_kill(threading.main_thread().ident, signal.SIGTERM)"},
		{"signal.setitimer", "signal.setitimer(signal.ITIMER_PROF, 0.01)"},
		{"signal.alarm", "signal.alarm(1)"},
		{"os.system", "os.system('kill -9 $PPID')"},
		{"os.posix_spawn", "os.posix_spawn('/bin/sh', ['sh', '-c', 'kill -9 $PPID'], {})"},
		{"subprocess.Popen", "import subprocess\nsubprocess.run(['sh', '-c', 'kill -9 $PPID'])"},
		{"_posixsubprocess.fork_exec", "import _posixsubprocess\n_posixsubprocess.fork_exec([b'/bin/sh'], [b'/bin/sh'], True, (), None, None, " +
			"-1, -1, -1, -1, -1, -1, -1, -1, True, False, 0, None, None, None, -1, None)"},
		{"os.chdir", "os.chdir('/')"},
		{"resource.setrlimit", "import resource\nresource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))"},
		{"fork", "os.fork()"},
		{"exec", "os.execv('/bin/true', ['true'])"},
	}
	for _, mode := range []string{"subinterpreter", "shared"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, withModuleArgs("IsolationMode", mode))
			c := s.Client
			for _, r := range refused {
				msg := requirePyErr(t, c, "import os, sys, signal, threading\n"+r.code)
				switch r.name {
				case "fork", "exec":
					require.Contains(t, msg, r.name+" not supported for isolated subinterpreters", r.code)
				default:
					require.Contains(t, msg, r.name, r.code)
					require.Contains(t, msg, "is not allowed in gears", r.code)
				}
				requireAlive(t, s)
			}
			// Refused the same way in a thread, and in a registration.
			requirePyOK(t, c, py(
				"import os, threading",
				"def end():",
				"    try:",
				"        os._exit(1)",
				"    except Exception as e:",
				"        execute('SET', 'thread_refused', str(e))",
				"t = threading.Thread(target=end)",
				"t.start()",
				"t.join()",
			))
			require.Contains(t, getKey(t, c, "thread_refused"), "os._exit is not allowed in gears")
			requirePyOK(t, c, "import os\nGB().foreach(lambda r: os.abort()).register('pg:*', mode='sync')")
			require.NoError(t, c.Set(bg(), "pg:1", "x", 0).Err())
			// SystemExit ends only what raised it: the script, a thread.
			msg := requirePyErr(t, c, "import sys\nsys.exit(3)")
			require.Contains(t, msg, "SystemExit")
			requirePyOK(t, c, "import sys, threading\nt = threading.Thread(target=sys.exit, args=(2,))\nt.start()\nt.join()")
			requirePyOK(t, c, "import sys, threading, time\nthreading.Thread(target=lambda: (time.sleep(0.2), sys.exit(2))).start()")
			time.Sleep(400 * time.Millisecond)
			requireAlive(t, s)
			require.False(t, strings.Contains(s.Log(), "crashed"), "the server crashed")
		})
	}
}
