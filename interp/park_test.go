package interp

import (
	"testing"
	"time"
)

func TestParkingKeepsWakeUpsUntilWaited(t *testing.T) {
	p := NewParking()
	p.Wake()
	p.Wake()
	p.Wait() // both were kept: neither blocks
	p.Wait()
	woke := make(chan struct{})
	go func() {
		p.Wait()
		close(woke)
	}()
	select {
	case <-woke:
		t.Fatal("Wait returned without a Wake")
	case <-time.After(50 * time.Millisecond):
	}
	p.Wake()
	select {
	case <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("Wake did not end the Wait")
	}
}
