package killswitch

import (
	"errors"
	"os"
	"os/signal"
	"sync"
)

// OnSignal trips scope on sw whenever the process receives one of sigs,
// with who "signal" and the signal's name as reason. The signals no longer
// have their default effect (a SIGTERM no longer ends the process). stop
// restores them and waits for the watching goroutine to end.
//
// A trip's hook failures are reported only through the switch's
// Options.OnEvent.
func OnSignal(sw *Switch, scope Scope, sigs ...os.Signal) (stop func(), err error) {
	if sw == nil {
		return nil, errors.New("killswitch: signal: nil Switch")
	}
	if len(sigs) == 0 {
		return nil, errors.New("killswitch: signal: no signals given")
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, sigs...)
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case s := <-ch:
				sw.Trip(scope, "signal", "received signal "+s.String()) // hooks report through OnEvent
			case <-quit:
				return
			}
		}
	}()
	return sync.OnceFunc(func() {
		signal.Stop(ch)
		close(quit)
		<-done
	}), nil
}
