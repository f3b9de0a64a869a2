package agentguard_test

import (
	"bufio"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// Tools whose arguments box fewer, as many and more values than a
// denial's box holds (six).
type (
	deny1 struct {
		Table string `json:"table"`
	}
	deny6 struct {
		Table string  `json:"table"`
		Where string  `json:"where"`
		Limit int64   `json:"limit"`
		Frac  float64 `json:"frac"`
		Owner string  `json:"owner"`
		Batch uint64  `json:"batch"`
		Dry   bool    `json:"dry"`
	}
	deny9 struct {
		A, B, C, D, E, F, G string
		N                   int64
		X                   float64
	}
)

// TestDeniedArgsOfAnyWidth: a denied call's arguments, in its denial and
// in its audit record, are the call's own, for tools whose arguments box
// fewer, exactly as many and more values than the denial's box holds; and
// a denial's arguments stay what they were after later calls of the same
// tool (the pooled flight must not write into an earlier denial's map).
func TestDeniedArgsOfAnyWidth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, testPolicy)), agentguard.WithEnv("prod"),
		agentguard.WithKillSwitch(killswitch.New(killswitch.Options{})),
		agentguard.WithAuditFile(path, audit.Options{Sync: audit.SyncNever}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "bot"})
	ran := func(context.Context, any) { t.Error("a denied tool ran") }
	d1 := agentguard.Wrap(g, "db.delete", func(ctx context.Context, a deny1) (string, error) { ran(ctx, a); return "", nil })
	d6 := agentguard.Wrap(g, "db.delete", func(ctx context.Context, a deny6) (string, error) { ran(ctx, a); return "", nil })
	d9 := agentguard.Wrap(g, "db.delete", func(ctx context.Context, a deny9) (string, error) { ran(ctx, a); return "", nil })

	type denial struct {
		got  *agentguard.DeniedError
		want map[string]any
	}
	var all []denial
	check := func(err error, want map[string]any) {
		t.Helper()
		var d *agentguard.DeniedError
		if !errors.As(err, &d) || !errors.Is(err, agentguard.ErrPolicyDenied) {
			t.Fatalf("err = %v, want a policy denial", err)
		}
		all = append(all, denial{d, want})
	}
	for i := range 3 {
		n := int64(i)
		_, err := d1(ctx, deny1{Table: "t" + strings.Repeat("x", i)})
		check(err, map[string]any{"table": "t" + strings.Repeat("x", i)})
		in6 := deny6{Table: "users", Where: "id = 7", Limit: 10 + n, Frac: 0.5 + float64(n), Owner: "o", Batch: uint64(n), Dry: i%2 == 0}
		_, err = d6(ctx, in6)
		check(err, map[string]any{"table": "users", "where": "id = 7", "limit": 10 + n, "frac": 0.5 + float64(n),
			"owner": "o", "batch": n, "dry": i%2 == 0}) // a uint64 that fits is an int64, as everywhere
		in9 := deny9{A: "a", B: "b", C: "c", D: "d", E: "e", F: "f", G: "g" + strings.Repeat("!", i), N: -n, X: 1.25}
		_, err = d9(ctx, in9)
		check(err, map[string]any{"A": "a", "B": "b", "C": "c", "D": "d", "E": "e", "F": "f", "G": "g" + strings.Repeat("!", i), "N": -n, "X": 1.25})
	}
	for i, d := range all {
		if !maps.Equal(d.got.Args, d.want) {
			t.Errorf("denial %d: Args = %#v, want %#v", i, d.got.Args, d.want)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	// Each denial's record holds its own arguments.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []*audit.Record
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		r, err := audit.ParseRecord(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if r.Kind == audit.KindDecision {
			recs = append(recs, r)
		}
	}
	if len(recs) != len(all) {
		t.Fatalf("%d decisions in the log, want %d", len(recs), len(all))
	}
	for i, r := range recs {
		if r.Call != all[i].got.CallID || len(r.Args) != len(all[i].want) {
			t.Errorf("record %d: call %s with %d args, want %s with %d", i, r.Call, len(r.Args), all[i].got.CallID, len(all[i].want))
		}
		for k, v := range all[i].want {
			if s, ok := v.(string); ok && r.Args[k] != s {
				t.Errorf("record %d: args[%s] = %v, want %q", i, k, r.Args[k], s)
			}
		}
	}
}
