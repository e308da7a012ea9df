package tests

// A user can do through gears only what it could do with Redis commands:
// internal commands are refused from clients, readers and events see only
// the keys the session's user may read, command hooks neither widen nor
// reveal a command, and one user's executions and registrations are not
// another's to read or control.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// aclUser creates an ACL user (password pw) and returns a client logged in
// as it.
func aclUser(t *testing.T, s *server, name string, rules ...any) *redis.Client {
	t.Helper()
	args := append([]any{"ACL", "SETUSER", name, "on", ">pw"}, rules...)
	require.NoError(t, s.Client.Do(bg(), args...).Err())
	c := s.NewClient(func(o *redis.Options) { o.Username, o.Password = name, "pw" })
	t.Cleanup(func() { c.Close() })
	require.NoError(t, c.Ping(bg()).Err())
	return c
}

func requireNoKey(t *testing.T, c *redis.Client, key string) {
	t.Helper()
	n, err := c.Exists(bg(), key).Result()
	require.NoError(t, err)
	require.Zero(t, n, "key %s exists", key)
}

// The reproductions: RG.INNERHOOK made u3 an unrestricted user, and
// RG.INNERREGISTER registered code running as the default user.
func TestInternalCommandsRefusedFromClients(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := s.Client
	require.NoError(t, admin.Set(bg(), "secret:1", "s3cr3t", 0).Err())
	u3 := aclUser(t, s, "u3", "~allowed:*", "+@all", "-@admin", "-@dangerous")

	for _, c := range []*redis.Client{u3, admin} {
		err := c.Do(bg(), "RG.INNERHOOK", "ACL", "SETUSER", "u3", "~*", "+@all").Err()
		require.Error(t, err)
		require.Contains(t, err.Error(), "RG.INNERHOOK is internal to gears")
	}
	require.Error(t, u3.Get(bg(), "secret:1").Err(), "u3 became able to read every key")

	saved := `{"ID":"evil","Desc":"","User":"default","Script":"GB().foreach(lambda r: execute('SET','pwned','1')).register('allowed:*', mode='sync')","Registrations":["` + shardZero + `-9223372036854775807"]}`
	internal := [][]any{
		{"RG.INNERREGISTER", saved, ""},
		{"RG.INNERUNREGISTER", shardZero + "-1"},
		{"RG.INNERIMPORTREQ", "blob"},
	}
	for _, c := range []*redis.Client{u3, admin} {
		for _, argv := range internal {
			err := c.Do(bg(), argv...).Err()
			require.Error(t, err, "%v", argv[0])
			require.Contains(t, err.Error(), "is internal to gears", "%v", argv[0])
		}
	}
	require.Empty(t, regDump(t, admin), "a client registered code through RG.INNERREGISTER")
	require.NoError(t, u3.Set(bg(), "allowed:1", "x", 0).Err())
	requireNoKey(t, admin, "pwned")

	// Ids continue from where they are, not from the id that was sent.
	res, err := pyexec(admin, "GB('ShardsIDReader').run()", "UNBLOCKING")
	require.NoError(t, err)
	require.Equal(t, shardZero+"-0", res)
}

// Admin commands of gears: RG.CONFIGSET changes every user's server,
// RG.PYIMPORTREQ installs code every session may import.
func TestAdminCommands(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u3 := aclUser(t, s, "u3", "~allowed:*", "+@all", "-@admin", "-@dangerous")
	for _, argv := range [][]any{{"RG.CONFIGSET", "MaxExecutions", "1"}, {"RG.PYIMPORTREQ", "blob"}} {
		err := u3.Do(bg(), argv...).Err()
		require.Error(t, err, "%v", argv[0])
		require.Contains(t, err.Error(), "NOPERM", "%v", argv[0])
	}
	require.Equal(t, []any{int64(1000)}, s.Client.Do(bg(), "RG.CONFIGGET", "MaxExecutions").Val())
	require.Equal(t, []any{"OK"}, s.Client.Do(bg(), "RG.CONFIGSET", "MaxExecutions", "999").Val())
}

// KeysReader runs see only keys the user may read; KeysOnlyReader lists
// names as SCAN does for that user.
func TestKeysReaderSeesOnlyReadableKeys(t *testing.T) {
	for _, mode := range isolationModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, mode.opts...)
			admin := s.Client
			require.NoError(t, admin.MSet(bg(), "secret:1", "s1", "secret:2", "s2", "allowed:1", "a1").Err())
			u2 := aclUser(t, s, "u2", "~allowed:*", "+@all")
			require.Error(t, u2.Get(bg(), "secret:1").Err())

			require.Empty(t, gbRunStrings(t, u2, "GB().map(lambda r: r['value']).run('secret:*')"))
			require.Equal(t, []string{"a1"}, gbRunStrings(t, u2, "GB().map(lambda r: r['value']).run('*')"))
			require.Empty(t, gbRunStrings(t, u2, "GB().map(lambda r: r['value']).run('secret:1', noScan=True)"))
			require.Equal(t, []string{"allowed:1"}, gbRunStrings(t, u2, "GB().map(lambda r: r['key']).run('*', readValue=False)"))
			// The admin sees everything.
			require.Equal(t, []string{"a1", "s1", "s2"}, gbSorted(gbRunStrings(t, admin, "GB().map(lambda r: r['value']).run('*')")))
		})
	}
}

// regDataOf is each registration's RegistrationData, whatever its reader.
func regDataOf(t *testing.T, c *redis.Client) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, v := range c.Do(bg(), "RG.DUMPREGISTRATIONS").Val().([]any) {
		out = append(out, regPairs(t, v.([]any)[7], "RegistrationData"))
	}
	return out
}

var isolationModes = []struct {
	name string
	opts []serverOpt
}{
	{"subinterpreter", nil},
	{"shared", []serverOpt{withModuleArgs("IsolationMode", "shared")}},
}

// A registration fires only for keys its user may read, sync or not, and a
// StreamReader reads only streams its user may read.
func TestRegistrationsSeeOnlyReadableKeys(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := s.Client
	u2 := aclUser(t, s, "u2", "~allowed:*", "+@all")
	requirePyOK(t, u2, "GB().foreach(lambda r: execute('RPUSH', 'allowed:seen:sync', r['key'] + '=' + str(r['value']))).register('*', mode='sync', eventTypes=['set'])")
	requirePyOK(t, u2, "GB().foreach(lambda r: execute('RPUSH', 'allowed:seen:async', r['key'])).register('*', eventTypes=['set'])")
	requirePyOK(t, u2, "GB('StreamReader').foreach(lambda r: execute('RPUSH', 'allowed:seen:stream', r['key'])).register('*')")

	require.NoError(t, admin.Set(bg(), "secret:1", "s3cr3t", 0).Err())
	require.NoError(t, admin.Set(bg(), "allowed:x", "visible", 0).Err())
	require.NoError(t, admin.XAdd(bg(), &redis.XAddArgs{Stream: "secret:s", Values: []any{"f", "v"}}).Err())
	require.NoError(t, admin.XAdd(bg(), &redis.XAddArgs{Stream: "allowed:s", Values: []any{"f", "v"}}).Err())

	eventually(t, 10*time.Second, func() bool {
		return admin.LLen(bg(), "allowed:seen:async").Val() == 1 && admin.LLen(bg(), "allowed:seen:stream").Val() == 1
	}, "the allowed key and stream were not processed")
	time.Sleep(200 * time.Millisecond) // what would have fired for the secret keys has fired
	require.Equal(t, []string{"allowed:x=visible"}, admin.LRange(bg(), "allowed:seen:sync", 0, -1).Val())
	require.Equal(t, []string{"allowed:x"}, admin.LRange(bg(), "allowed:seen:async", 0, -1).Val())
	require.Equal(t, []string{"allowed:s"}, admin.LRange(bg(), "allowed:seen:stream", 0, -1).Val())
	for _, data := range regDataOf(t, admin) {
		require.Equal(t, int64(0), data["numFailures"], "a registration failed: %v", data["lastError"])
	}
	// The secret stream was never read by the user's consumer group.
	groups, err := admin.XInfoGroups(bg(), "secret:s").Result()
	require.NoError(t, err)
	require.Empty(t, groups)
}

// A hooked command is held to the client's own permissions, and a hook runs
// only for commands its own user may run (it sees their keys and values).
func TestHooksKeepACLBoundaries(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := s.Client
	u2 := aclUser(t, s, "u2", "~allowed:*", "+@all")

	// The admin's hook on SET passes every command on: u2 still cannot
	// write a key it may not write.
	requirePyOK(t, admin, "GB('CommandReader').map(lambda a: call_next(*a[1:])).register(hook='set', mode='sync')", "ID", "adminhook")
	err := u2.Set(bg(), "secret:1", "x", 0).Err()
	require.Error(t, err)
	require.Contains(t, err.Error(), "NOPERM")
	requireNoKey(t, admin, "secret:1")
	require.NoError(t, u2.Set(bg(), "allowed:1", "x", 0).Err())
	require.Equal(t, "x", getKey(t, admin, "allowed:1"))
	exRequireOK(t, admin, "RG.UNREGISTER", regDump(t, admin)[0].ID)

	// u2's hook on SET would copy every value written: it sees only what u2
	// may write itself, and what it passes on runs as u2.
	requirePyOK(t, u2, py(
		"def spy(a):",
		"    execute('RPUSH', 'allowed:spied', ' '.join(a))",
		"    return call_next(*a[1:])",
		"GB('CommandReader').map(spy).register(hook='set', mode='sync')",
	))
	require.NoError(t, admin.Set(bg(), "secret:2", "s3cr3t", 0).Err())
	require.Equal(t, "s3cr3t", getKey(t, admin, "secret:2"))
	require.NoError(t, admin.Set(bg(), "allowed:2", "fine", 0).Err())
	require.Equal(t, []string{"set allowed:2 fine"}, admin.LRange(bg(), "allowed:spied", 0, -1).Val())

	// A hook that rewrites the command to a key its user may not write.
	requirePyOK(t, u2, "GB('CommandReader').map(lambda a: call_next('secret:3', 'x')).register(hook='set', mode='sync', keyprefix='allowed:redirect')")
	err = admin.Set(bg(), "allowed:redirect", "y", 0).Err()
	require.Error(t, err)
	require.Contains(t, err.Error(), "NOPERM")
	requireNoKey(t, admin, "secret:3")
}

// One user's executions and registrations are not another's to read or
// control; a user that may administer ACLs may (it could become anyone).
func TestExecutionsAndRegistrationsBelongToTheirUser(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := s.Client
	require.NoError(t, admin.Set(bg(), "secret:1", "s3cr3t", 0).Err())
	// u2 may not administer users: otherwise it could become anyone.
	u2 := aclUser(t, s, "u2", "~allowed:*", "+@all", "-@admin", "-@dangerous")

	id := exUnblocking(t, admin, "GB().map(lambda r: r['value']).run('secret:*')")
	exWaitStatus(t, admin, id, "done", 10*time.Second)
	for _, cmd := range []string{"RG.GETRESULTS", "RG.GETRESULTSBLOCKING", "RG.GETEXECUTION", "RG.DROPEXECUTION", "RG.ABORTEXECUTION"} {
		err := u2.Do(bg(), cmd, id).Err()
		require.Error(t, err, cmd)
		require.Contains(t, err.Error(), "NOPERM this execution belongs to another user", cmd)
	}
	results, _ := exResults(t, admin, "RG.GETRESULTS", id)
	require.Equal(t, []any{"s3cr3t"}, results)

	// The admin manages u2's executions.
	id2 := exUnblocking(t, u2, "GB().map(lambda r: r['value']).run('allowed:*')")
	exWaitStatus(t, admin, id2, "done", 10*time.Second)
	exRequireOK(t, admin, "RG.DROPEXECUTION", id2)

	// Registrations: u2 cannot unregister, pause, upgrade or profile the
	// admin's, nor read its last error.
	requirePyOK(t, admin, "GB().foreach(lambda r: int(r['value'])).register('secret:*', mode='sync')", "ID", "adm")
	require.NoError(t, admin.Set(bg(), "secret:2", "not-a-number-s3cr3t", 0).Err())
	reg := regDump(t, admin)[0]
	require.Contains(t, fmt.Sprint(reg.Data["lastError"]), "s3cr3t")
	require.NotContains(t, fmt.Sprint(regDataOf(t, u2)[0]["lastError"]), "s3cr3t")
	for _, argv := range [][]any{
		{"RG.UNREGISTER", reg.ID},
		{"RG.PAUSEREGISTRATIONS", reg.ID},
		{"RG.PYPROFILE", "RESET", "adm"},
		{"RG.PYEXECUTE", "GB().register('x:*')", "ID", "adm", "UPGRADE"},
		{"RG.PYEXECUTE", "GB().register('x:*')", "ID", "mine", "REPLACE_WITH", "adm"},
	} {
		err := u2.Do(bg(), argv...).Err()
		require.Error(t, err, "%v", argv)
		require.Contains(t, err.Error(), "NOPERM", "%v", argv)
	}
	require.Len(t, regDump(t, admin), 1)
	exRequireOK(t, admin, "RG.UNREGISTER", reg.ID)
	require.True(t, strings.HasPrefix(id, shardZero))
}
