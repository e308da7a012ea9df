package interp

/*
#include <semaphore.h>
#include <stdlib.h>

static sem_t *park_new(void) {
    sem_t *s = malloc(sizeof(sem_t));
    if (s && sem_init(s, 0, 0) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

// Retries when a signal interrupts the wait.
static void park_wait(sem_t *s) {
    while (sem_wait(s) != 0) {
    }
}
*/
import "C"

// Parking is where idle worker threads wait for work: the locked threads
// that run Python, which is why it lives with the interpreter's threads (it
// is POSIX, not CPython; the only C here that is not). It blocks the OS thread
// itself: waking a goroutine locked to its thread through the Go scheduler
// takes a second thread and four context switches, paid for every event that
// finds the workers idle; a semaphore wakes the sleeping thread directly.
type Parking struct{ sem *C.sem_t }

// NewParking returns a Parking with no wake-up pending.
func NewParking() *Parking {
	s := C.park_new()
	if s == nil {
		panic("session: cannot make a semaphore")
	}
	return &Parking{sem: s}
}

// Wait blocks the calling thread until a Wake not yet consumed.
func (p *Parking) Wait() { C.park_wait(p.sem) }

// Wake lets one Wait return, now or when it comes.
func (p *Parking) Wake() { C.sem_post(p.sem) }
