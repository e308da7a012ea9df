package config

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// DefaultPythonMemory is MaxPythonMemory's default: half of the memory this
// process may use (the machine's, or its cgroup's limit when lower). One
// script on a default install then gets MemoryError long before it could
// make the kernel kill redis-server, and leaves the other half for Redis's
// own data, the OS and its page cache.
func DefaultPythonMemory() int64 {
	total := memTotal()
	if limit := cgroupLimit(); limit > 0 && (total == 0 || limit < total) {
		total = limit
	}
	if total == 0 {
		return 4 << 30 // cannot tell: a limit that still stops runaway code
	}
	return max(total/2, MinPythonMemory)
}

// memTotal is MemTotal of /proc/meminfo in bytes (0 when unknown).
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// cgroupLimit is the memory limit of this process's cgroup (v2, else v1),
// 0 when there is none.
func cgroupLimit() int64 {
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 && n < 1<<60 { // "max", or v1's huge "unlimited"
			return n
		}
	}
	return 0
}
