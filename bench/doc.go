// Package bench holds opt-in benchmarks that run redisgears.so inside a real
// redis-server and compare it with a peer (Lua EVAL/FCALL, client-side code)
// in the same run. They are tests skipped unless GEARS_BENCH is set:
//
//	GEARS_BENCH=1 go test -count=1 -run Bench -v -timeout 30m ./bench/
//
// Each writes its numbers to bench/results/<name>.txt. See README.md.
package bench
