package killswitch

import (
	"syscall"
	"testing"
)

func TestOnSignal(t *testing.T) {
	tripped := make(chan Event, 1)
	sw := New(Options{OnEvent: func(e Event) { tripped <- e }})
	stop, err := OnSignal(sw, Scope{Tenant: "acme"}, syscall.SIGUSR1)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	e := <-tripped
	if e.Kind != EventTrip || e.Scope != (Scope{Tenant: "acme"}) || e.Who != "signal" || e.Why != "received signal user defined signal 1" {
		t.Errorf("event = %+v", e)
	}
	stop()
	stop() // twice is harmless
	if _, err := OnSignal(sw, Everything); err == nil {
		t.Error("OnSignal with no signals = nil error")
	}
	if _, err := OnSignal(nil, Everything, syscall.SIGUSR1); err == nil {
		t.Error("OnSignal with a nil Switch = nil error")
	}
}
