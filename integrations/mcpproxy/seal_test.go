package mcpproxy_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/integrations/mcpproxy"
)

// TestSealer: a sealed requestState opens once, for the call it was sealed
// for, before its deadline, under the key that sealed it; anything else is
// refused with the reason.
func TestSealer(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := mcpproxy.NewSealer([]byte("k1"), func() time.Time { return now })
	h1, h2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	st, err := s.Seal(h1, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	other := mcpproxy.NewSealer([]byte("k2"), func() time.Time { return now })
	for _, c := range []struct {
		s     *mcpproxy.Sealer
		state string
		hash  string
		want  string
	}{
		{s, st, h2, "not the one asked about"},
		{other, st, h1, "not sealed by this server"},
		{s, "", h1, "malformed"},
		{s, "eyJmb28iOjF9.AAAA", h1, "not sealed by this server"},
		{s, st + "x", h1, "not sealed by this server"},
	} {
		if err := c.s.Open(c.state, c.hash); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%.20q, %.8s): %v, want %q", c.state, c.hash, err, c.want)
		}
	}
	if err := s.Open(st, h1); err != nil {
		t.Fatalf("the right call: %v", err)
	}
	if err := s.Open(st, h1); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("replayed: %v, want already used", err)
	}
	late, _ := s.Seal(h1, now.Add(time.Minute))
	now = now.Add(time.Minute)
	if err := s.Open(late, h1); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at the deadline: %v, want expired", err)
	}
}
