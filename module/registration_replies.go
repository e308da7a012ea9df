// What RG.DUMPREGISTRATIONS and RG.PYDUMPSESSIONS reply.

package main

import (
	"fmt"
	"strconv"
	"strings"

	"gears/builder"
	"gears/redismod"
	"gears/session"
)

func cmdDumpRegistrations(c Ctx, argv []string) {
	regs := g.regs.List()
	c.Array(len(regs))
	for _, r := range regs {
		writeRegistrationFields(c, r, visibleStats(c, r), true)
	}
}

// visibleStats are r's statistics as the client of c may see them: the
// last error's text may hold another user's data.
func visibleStats(c Ctx, r *builder.Registration) builder.Stats {
	st := r.Stats()
	if st.LastError != "" && !mayManage(c, r.Session.User) {
		st.LastError = "(hidden: the registration belongs to another user)"
	}
	return st
}

// writeRegistrationFields writes one registration of RG.DUMPREGISTRATIONS
// (and of RG.PYDUMPSESSIONS VERBOSE, without PD).
func writeRegistrationFields(c redismod.Replier, r *builder.Registration, st builder.Stats, withPD bool) {
	if withPD {
		c.Array(12)
	} else {
		c.Array(10)
	}
	c.Bulk("id")
	c.Bulk(r.ID)
	c.Bulk("reader")
	c.Bulk(r.Reader)
	c.Bulk("desc")
	bulkOrNull(c, r.Desc)
	c.Bulk("RegistrationData")
	if r.Reader == "StreamReader" {
		c.Array(26)
	} else {
		c.Array(20)
	}
	c.Bulk("mode")
	c.Bulk(r.Mode)
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"numTriggered", st.Triggered}, {"numSuccess", st.Success}, {"numFailures", st.Failures},
		{"numAborted", st.Aborted}, {"lastRunDurationMS", st.LastRun.Milliseconds()},
		{"totalRunDurationMS", st.TotalRun.Milliseconds()},
	} {
		c.Bulk(f.name)
		c.Int(f.v)
	}
	c.Bulk("avgRunDurationMS")
	avg := 0.0
	if st.Triggered > 0 {
		avg = float64(st.TotalRun.Microseconds()) / 1000 / float64(st.Triggered)
	}
	c.Bulk(strconv.FormatFloat(avg, 'f', -1, 64))
	switch r.Reader {
	case "StreamReader":
		writeStreamData(c, r, st)
	case "CommandReader":
		writeLastError(c, st)
		c.Bulk("args")
		c.Array(4)
		c.Bulk("trigger")
		c.Bulk(r.Trigger)
		c.Bulk("inorder")
		c.Int(boolInt(r.Inorder))
	default:
		writeLastError(c, st)
		c.Bulk("args")
		c.Array(8)
		c.Bulk("regex")
		c.Bulk(r.Prefix)
		c.Bulk("eventTypes")
		writeOptionalList(c, r.EventTypes)
		c.Bulk("keyTypes")
		writeOptionalList(c, r.KeyTypes)
		c.Bulk("hookCommands")
		writeOptionalList(c, r.Commands)
	}
	if withPD {
		c.Bulk("PD")
		c.Bulk(sessionPD(r))
	}
	c.Bulk("ExecutionThreadPool")
	c.Bulk("DefaultPool")
}

func writeLastError(c redismod.Replier, st builder.Stats) {
	c.Bulk("lastError")
	bulkOrNull(c, st.LastError)
}

// bulkOrNull replies nil for an empty string (RedisGears' "not set").
func bulkOrNull(c redismod.Replier, s string) {
	if s == "" {
		c.Null()
	} else {
		c.Bulk(s)
	}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func writeOptionalList(c redismod.Replier, l []string) {
	if l == nil {
		c.Null()
		return
	}
	redismod.WriteValue(c, l)
}

// sessionPD is RedisGears' description of a registration's session.
func sessionPD(r *builder.Registration) string {
	s := r.Session
	var ids []string
	for _, o := range g.regs.OfSession(s) {
		ids = append(ids, "'"+o.ID+"'")
	}
	desc := "null"
	if s.Description != "" {
		desc = "'" + s.Description + "'"
	}
	return fmt.Sprintf("{'sessionName':'%s', 'sessionDescription':%s, 'refCount': %d, 'linkedTo': primary, 'dead': false, 'isInstallationNeeded':0, 'registrationsList':[%s], 'depsList':[]}",
		s.ID, desc, s.Refs(), strings.Join(ids, ", "))
}

// RG.PYDUMPSESSIONS [VERBOSE] [DEAD] [SESSIONS id ...]
func cmdPyDumpSessions(c Ctx, argv []string) {
	verbose := false
	var ids []string
	selected := false
	for i := 1; i < len(argv); i++ {
		switch strings.ToUpper(argv[i]) {
		case "VERBOSE":
			verbose = true
		case "DEAD":
			// Sessions end with their last reference: none is ever dead here.
		case "SESSIONS":
			ids, selected = argv[i+1:], true
			i = len(argv)
		default:
			c.Error("Unknown option " + argv[i])
			return
		}
	}
	var list []*session.Session
	if selected {
		c.Array(len(ids))
		for _, id := range ids {
			if s, ok := g.sessions.Get(id); ok {
				writeSession(c, s, verbose)
			} else {
				c.Bulk("Session " + id + " does not exists")
			}
		}
		return
	}
	list = g.sessions.List()
	c.Array(len(list))
	for _, s := range list {
		writeSession(c, s, verbose)
	}
}

func writeSession(c Ctx, s *session.Session, verbose bool) {
	regs := g.regs.OfSession(s)
	c.Array(16)
	c.Bulk("ID")
	c.Bulk(s.ID)
	c.Bulk("sessionDescription")
	c.BulkOrNull(s.Description)
	c.Bulk("refCount")
	c.Int(int64(s.Refs()))
	c.Bulk("linked")
	c.Bulk("primary")
	c.Bulk("dead")
	c.Bulk("false")
	c.Bulk("requirementInstallationNeeded")
	c.Int(0)
	c.Bulk("requirements")
	c.Array(len(s.Requirements))
	for _, r := range s.Requirements {
		if verbose {
			writeRequirement(c, r)
		} else {
			c.Bulk(r.Name)
		}
	}
	c.Bulk("registrations")
	c.Array(len(regs))
	for _, r := range regs {
		if verbose {
			writeRegistrationFields(c, r, visibleStats(c, r), false)
		} else {
			c.Bulk(r.ID)
		}
	}
}

// The StreamReader's part of RegistrationData, after the common counters.
func writeStreamData(c redismod.Replier, r *builder.Registration, st builder.Stats) {
	status, lastLag, avgLag := r.StreamStatus()
	c.Bulk("lastEstimatedLagMS")
	c.Int(lastLag.Milliseconds())
	c.Bulk("avgEstimatedLagMS")
	c.Bulk(strconv.FormatFloat(float64(avgLag.Microseconds())/1000, 'f', -1, 64))
	writeLastError(c, st)
	c.Bulk("args")
	c.Array(12)
	c.Bulk("batchSize")
	c.Int(int64(r.Stream.Batch))
	c.Bulk("durationMS")
	c.Int(r.Stream.Duration.Milliseconds())
	c.Bulk("stream")
	c.Bulk(r.Prefix)
	c.Bulk("trimStream")
	c.Int(boolInt(r.Stream.Trim))
	c.Bulk("onFailedPolicy")
	c.Bulk(r.Stream.Policy)
	c.Bulk("retryInterval")
	c.Int(int64(r.Stream.RetryInterval.Seconds()))
	c.Bulk("status")
	c.Bulk(status)
}
