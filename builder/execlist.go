package builder

// An execution is in up to two lists, linked through its own fields: being
// listed costs no allocation (container/list made two per event).
const (
	keptList  = iota // the engine's kept executions (RG.DUMPEXECUTIONS)
	classList        // its class's (see Engine.class)
)

type links struct{ prev, next *Execution }

// execList is a list of executions, oldest first, linked through links[which].
type execList struct {
	front, back *Execution
	n           int
	which       int
}

func (l *execList) pushBack(e *Execution) {
	ln := &e.links[l.which]
	ln.prev, ln.next = l.back, nil
	if l.back != nil {
		l.back.links[l.which].next = e
	} else {
		l.front = e
	}
	l.back = e
	l.n++
}

func (l *execList) remove(e *Execution) {
	ln := &e.links[l.which]
	if ln.prev != nil {
		ln.prev.links[l.which].next = ln.next
	} else {
		l.front = ln.next
	}
	if ln.next != nil {
		ln.next.links[l.which].prev = ln.prev
	} else {
		l.back = ln.prev
	}
	ln.prev, ln.next = nil, nil
	l.n--
}

// after is the execution listed after e in l.
func (l *execList) after(e *Execution) *Execution { return e.links[l.which].next }
