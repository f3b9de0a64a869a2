package audit

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A store that fails refuses the append, leaves nothing behind, and the
// next append after it recovers continues the chain.
func TestStoreLogRecovers(t *testing.T) {
	st := new(MemStore)
	l, err := OpenStore(st, StoreOptions{ID: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := l.Append(ctx, &Record{Kind: KindDecision, Call: "a"}); err != nil {
		t.Fatal(err)
	}
	st.SetErr(errors.New("connection reset"))
	if err := l.Append(ctx, &Record{Kind: KindDecision, Call: "b"}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Append to a broken store = %v, want ErrUnavailable", err)
	}
	st.SetErr(nil)
	if err := l.Append(ctx, &Record{Kind: KindDecision, Call: "c"}); err != nil {
		t.Fatal(err)
	}
	var calls []string
	st.Read(ctx, "fleet", 0, func(_ uint64, line []byte) error {
		r, err := ParseRecord(line)
		if err != nil {
			return err
		}
		calls = append(calls, r.Call)
		return nil
	})
	if len(calls) != 2 || calls[0] != "a" || calls[1] != "c" {
		t.Fatalf("log holds calls %v, want [a c]", calls)
	}
}

func TestOpenStoreChecks(t *testing.T) {
	for _, o := range []StoreOptions{{}, {ID: "a\nb"}, {ID: "x", CheckpointEvery: 5}, {ID: "x", CheckpointEvery: -1}} {
		if _, err := OpenStore(new(MemStore), o); err == nil {
			t.Errorf("OpenStore(%+v) succeeded", o)
		}
	}
	if _, err := OpenStore(nil, StoreOptions{ID: "x"}); err == nil {
		t.Error("OpenStore(nil) succeeded")
	}
}

// hungStore never answers until its context ends.
type hungStore struct{ MemStore }

func (h *hungStore) Append(ctx context.Context, log string, line func(uint64, Hash) ([]byte, error)) error {
	<-ctx.Done()
	return ctx.Err()
}

// A store that hangs fails the append within Timeout, even for a caller
// whose context never ends.
func TestStoreLogHungStore(t *testing.T) {
	l, err := OpenStore(new(hungStore), StoreOptions{ID: "fleet", Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Append(context.Background(), &Record{Kind: KindDecision}) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Append to a hung store = %v, want ErrUnavailable and the deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Append to a hung store did not return")
	}
}
