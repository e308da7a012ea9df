package bench

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// TestBenchBatch sums the values of 1,000,000 keys: a gears KeysReader
// pipeline against one Lua EVAL that SCANs and GETs every key (target:
// gears <= 1x Lua, issue 13: its reader uses a second core), plus
// client-side SCAN+MGET for context.
func TestBenchBatch(t *testing.T) {
	guard(t)
	const nKeys = 1_000_000
	const want = int64(nKeys) * (nKeys - 1) / 2 // 499999500000
	r := newReport(t, "batch")
	s := startServer(t)
	c := s.Client

	// Load k:<i> = <i> with Lua loops of 100k SETs each.
	const load = `for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  redis.call('SET', 'k:' .. string.format('%d', i), string.format('%d', i))
end
return 1`
	start := time.Now()
	for lo := 0; lo < nKeys; lo += 100_000 {
		if err := c.Eval(bg(), load, nil, lo, lo+100_000-1).Err(); err != nil {
			t.Fatalf("loading keys: %v", err)
		}
	}
	if n := c.DBSize(bg()).Val(); n != nKeys {
		t.Fatalf("DBSIZE = %d after loading, want %d", n, nKeys)
	}
	r.line("keys:      %d string keys k:<i> = <i>, loaded in %s (Lua loops)", nKeys, time.Since(start).Round(time.Millisecond))
	r.line("check:     every run must return sum = %d", want)
	r.line("")

	gearsScript := "import operator\nGB().map(lambda r: int(r['value'])).aggregate(0, operator.add, operator.add).run()"
	gears := func() error {
		res, err := c.Do(bg(), "RG.PYEXECUTE", gearsScript).Result()
		if err != nil {
			return fmt.Errorf("RG.PYEXECUTE: %w", err)
		}
		results, errs, err := gearsReply(res)
		if err != nil {
			return err
		}
		if len(errs) != 0 || len(results) != 1 || results[0] != strconv.FormatInt(want, 10) {
			return fmt.Errorf("gears replied results=%q errors=%q, want [%d] []", results, errs, want)
		}
		return nil
	}

	const luaScan = `local sum, cursor = 0, '0'
repeat
  local r = redis.call('SCAN', cursor, 'COUNT', 1000)
  cursor = r[1]
  for _, k in ipairs(r[2]) do sum = sum + tonumber(redis.call('GET', k)) end
until cursor == '0'
return sum`
	lua := func() error {
		got, err := c.Eval(bg(), luaScan, nil).Int64()
		if err != nil {
			return fmt.Errorf("EVAL: %w", err)
		}
		if got != want {
			return fmt.Errorf("Lua sum = %d, want %d", got, want)
		}
		return nil
	}

	client := func() error {
		var sum int64
		var cursor uint64
		for {
			keys, next, err := c.Scan(bg(), cursor, "", 1000).Result()
			if err != nil {
				return err
			}
			if len(keys) > 0 {
				vals, err := c.MGet(bg(), keys...).Result()
				if err != nil {
					return err
				}
				for _, v := range vals {
					n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
					if err != nil {
						return err
					}
					sum += n
				}
			}
			if cursor = next; cursor == 0 {
				break
			}
		}
		if sum != want {
			return fmt.Errorf("client sum = %d, want %d", sum, want)
		}
		return nil
	}

	gBest, gAll := bestOf(t, 3, gears)
	lBest, lAll := bestOf(t, 3, lua)
	cBest, cAll := bestOf(t, 3, client)
	r.line("gears  RG.PYEXECUTE %q", gearsScript)
	r.line("lua    one EVAL: SCAN cursor loop COUNT 1000 + GET each key, sum in Lua")
	r.line("client SCAN COUNT 1000 + MGET per batch from the Go client, sum in Go (context only)")
	r.line("")
	r.line("%-8s %-12s %s", "", "best of 3", "all runs")
	r.line("%-8s %-12s %s", "gears", ms(gBest), msList(gAll))
	r.line("%-8s %-12s %s", "lua", ms(lBest), msList(lAll))
	r.line("%-8s %-12s %s", "client", ms(cBest), msList(cAll))
	r.line("")
	r.verdict("ratio gears/lua (best of 3):", float64(gBest)/float64(lBest), "<=", 1.0)
	r.line("%-34s %.3f   (context)", "ratio gears/client (best of 3):", float64(gBest)/float64(cBest))
}
