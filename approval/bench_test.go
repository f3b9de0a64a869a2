package approval

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

func BenchmarkHashCall(b *testing.B) {
	args := map[string]any{"to": "bob@example.com", "subject": "hello", "amount": 120.5, "tags": []any{"a", "b"}}
	p := Principal{Agent: "bot", Requester: "alice", Tenant: "acme", Session: "s1"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := HashCall("send_email", args, p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAsk measures the Gate around an approver that answers at once.
func BenchmarkAsk(b *testing.B) {
	g, _ := NewGate(AllowAll, Options{})
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := &Request{ID: fmt.Sprint("r", n.Add(1)), Tool: "refund", Args: map[string]any{"amount": 120}}
			if _, err := g.Ask(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAskCovered measures a call that a grant covers.
func BenchmarkAskCovered(b *testing.B) {
	g, _ := NewGate(Func(func(_ context.Context, r *Request) (Verdict, error) {
		return r.ApproveFor("a", "", Grant{ScopeTool, time.Hour}), nil
	}), Options{})
	if _, err := g.Ask(context.Background(), &Request{ID: "first", Tool: "refund"}); err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := &Request{ID: fmt.Sprint("r", n.Add(1)), Tool: "refund", Args: map[string]any{"amount": 120}}
			out, err := g.Ask(context.Background(), r)
			if err != nil || !out.Covered {
				b.Fatal(out, err)
			}
		}
	})
}
