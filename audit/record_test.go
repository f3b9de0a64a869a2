package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func fullRecord() *Record {
	return &Record{
		Seq: 7, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Log: "L", Kind: KindResult,
		Call: "c", Principal: Principal{Agent: "a", Requester: "r", Tenant: "t", Session: "s"},
		Env: "prod", Tool: "tool",
		Args: map[string]any{"s": "x\"\\\n\t\x01<>&\u2028é", "i": int64(-3), "f": 1.5, "big": 1e21,
			"small": 1e-7, "b": true, "n": nil, "a": []any{int64(1), "two", map[string]any{"z": false}},
			"m": map[string]any{}, "e": []any{}},
		Labels:   map[string]string{"team": "x", "a": "b"},
		Decision: "deny", Code: "policy_denied", Stage: "policy", Rule: "r1", Reason: "because",
		Shadow:        []Shadow{{Rule: "s1", Effect: "deny", Reason: "maybe"}, {Rule: "s2", Effect: "allow"}},
		PolicyVersion: "v", Approver: "bob", Grant: "g", Note: "n",
		Estimate: []Cost{{Unit: "USD", Micros: 5}}, Actual: []Cost{{Unit: "USD", Micros: 4}, {Unit: "tokens", Micros: 9}},
		Outcome: "error", Error: "boom", Duration: 3 * time.Second,
		Control: &Control{Scope: "agent:a", Who: "ops", Why: "test"},
		Prev:    HashLine([]byte("x")),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, r := range []*Record{fullRecord(), {Kind: KindHalt, Time: time.Unix(0, 0)}} {
		v3, err := r.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		v2, err := r.appendJSONV2(nil)
		if err != nil {
			t.Fatal(err)
		}
		v1, err := r.appendJSONV1(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(v3, []byte(`{"log":`)) || !bytes.HasPrefix(v2, []byte(`{"time":`)) || !bytes.HasPrefix(v1, []byte(`{"seq":`)) {
			t.Fatalf("versions 3, 2 and 1 start\n%s\n%s\n%s", v3, v2, v1)
		}
		for _, line := range [][]byte{v3, v2, v1} {
			got, err := ParseRecord(line)
			if err != nil {
				t.Fatalf("ParseRecord(%s) = %v", line, err)
			}
			again, err := encodeLike(got, line)
			if err != nil || !bytes.Equal(again, line) {
				t.Fatalf("round trip:\n%s\n%s", line, again)
			}
			if got.Seq != r.Seq || got.Tool != r.Tool || got.Duration != r.Duration || got.Prev != r.Prev {
				t.Errorf("ParseRecord lost fields: %+v", got)
			}
		}
	}
}

func TestAppendJSONValues(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{3.0, `3`}, {1.5, `1.5`}, {1e21, `1e+21`}, {1e-7, `1e-7`}, {0.000001, `0.000001`},
		{uint64(math.MaxUint64), `18446744073709551615`}, {uint64(1<<63 + 1), `9223372036854775809`}, {json.Number("18446744073709551615"), `18446744073709551615`}, {float32(0.5), `0.5`},
		{"a\u2029b", `"a\u2029b"`}, {"\xff", "\"\uFFFD\""}, {[]string{"x"}, `["x"]`},
		{map[string]string{"b": "1", "a": "2"}, `{"a":"2","b":"1"}`},
		{struct{ A int }{1}, `{"A":1}`},
	} {
		got, err := appendValue(nil, c.v, 0)
		if err != nil || string(got) != c.want {
			t.Errorf("appendValue(%#v) = %s, %v; want %s", c.v, got, err, c.want)
		}
	}
	for _, bad := range []any{math.NaN(), math.Inf(1), make(chan int)} {
		if _, err := appendValue(nil, bad, 0); err == nil {
			t.Errorf("appendValue(%v) succeeded", bad)
		}
	}
}

func TestParseRecordStrict(t *testing.T) {
	r := &Record{Seq: 12, Kind: KindDecision, Log: "L", Tool: "t", Args: map[string]any{"n": int64(1)}}
	good3, _ := r.AppendJSON(nil)
	good, _ := r.appendJSONV2(nil)
	goodV1, _ := r.appendJSONV1(nil)
	zero := strings.Repeat("0", 64)
	var bads []string
	for _, g := range []string{string(good3), string(good), string(goodV1)} {
		bads = append(bads,
			strings.Replace(g, `"n":1`, `"n":1.0`, 1),
			strings.Replace(g, `"n":1`, `"n":1,"n":1`, 1),
			strings.Replace(g, `"tool":"t"`, `"tool":"\u0074"`, 1),
			strings.Replace(g, `"tool":"t"`, `"tool":""`, 1),
			strings.Replace(g, `"tool":"t",`, `"tool":"t","bogus":1,`, 1),
			strings.Replace(g, `"log":"L","kind":"decision"`, `"kind":"decision","log":"L"`, 1),
			strings.Replace(g, `"kind":"decision","tool":"t"`, `"tool":"t","kind":"decision"`, 1),
			strings.Replace(g, zero, strings.ToUpper(zero[:63])+"A", 1),
			strings.Replace(g, zero, zero[:63], 1),
			strings.Replace(g, `.000000000Z`, `Z`, 1),
			strings.Replace(g, `"kind":"decision"`, `"kind":""`, 1),
			g+" ",
			g+"{}",
			strings.Replace(g, `"args":{"n":1}`, `"args":{}`, 1),
			strings.Replace(g, `"args":{"n":1}`, `"args":[1]`, 1),
			strings.Replace(g, `"seq":12`, `"seq":012`, 1),
			strings.Replace(g, `"seq":12`, `"seq":-12`, 1),
			strings.Replace(g, `"seq":12`, `"seq":+12`, 1),
			strings.Replace(g, `"seq":12`, `"seq":12.0`, 1),
			strings.Replace(g, `"seq":12`, `"seq":"12"`, 1),
			strings.Replace(g, `"seq":12`, `"seq": 12`, 1),
		)
	}
	g, g1, g3 := string(good), string(goodV1), string(good3)
	bads = append(bads, "", "{}",
		// version 3: time missing, twice, or elsewhere; seq missing
		strings.Replace(g3, `"time":"0001-01-01T00:00:00.000000000Z",`, ``, 1),
		strings.Replace(g3, `"time":"0001-01-01T00:00:00.000000000Z",`, `"time":"0001-01-01T00:00:00.000000000Z","time":"0001-01-01T00:00:00.000000000Z",`, 1),
		strings.Replace(strings.Replace(g3, `"time":"0001-01-01T00:00:00.000000000Z",`, ``, 1), `,"seq"`, `,"time":"0001-01-01T00:00:00.000000000Z","seq"`, 1),
		strings.Replace(strings.Replace(g3, `,"time":"0001-01-01T00:00:00.000000000Z"`, ``, 1), `,"tool"`, `,"time":"0001-01-01T00:00:00.000000000Z","tool"`, 1),
		strings.Replace(g3, `"seq":12,`, ``, 1),
		strings.Replace(g3, `{"log":"L",`, `{"log":"L","time":"0001-01-01T00:00:00.000000000Z",`, 1),
		// version 3's start with version 2's order
		`{"log":"L",`+strings.Replace(g[1:], `"log":"L",`, ``, 1),
		// version 2: seq missing, twice, or elsewhere
		strings.Replace(g, `"seq":12,`, ``, 1),
		strings.Replace(g, `"seq":12,`, `"seq":12,"seq":12,`, 1),
		strings.Replace(g, `{"time"`, `{"seq":12,"time"`, 1),
		strings.Replace(strings.Replace(g, `,"seq":12`, ``, 1), `,"tool"`, `,"seq":12,"tool"`, 1),
		strings.Replace(g, `"seq":12,"prev"`, `"prev"`, 1)+`,"seq":12`,
		// version 1: seq missing, twice, or moved to the end
		strings.Replace(g1, `"seq":12,"time"`, `"time"`, 1),
		strings.Replace(g1, `{"seq":12,`, `{"seq":12 ,`, 1),
		strings.Replace(g1, `,"prev"`, `,"seq":12,"prev"`, 1),
		// neither start
		strings.Replace(g, `{"time"`, `{"log":"L","time"`, 1),
		` `+g,
	)
	for _, bad := range bads {
		if _, err := ParseRecord([]byte(bad)); !errors.Is(err, ErrSyntax) {
			t.Errorf("ParseRecord(%s) = %v, want ErrSyntax", bad, err)
		}
	}
	for _, line := range [][]byte{good3, good, goodV1} {
		if got, err := ParseRecord(line); err != nil || got.Seq != 12 {
			t.Errorf("ParseRecord(%s) = %+v, %v; want seq 12", line, got, err)
		}
	}
}

func FuzzParseRecord(f *testing.F) {
	line, _ := fullRecord().AppendJSON(nil)
	f.Add(line)
	line, _ = fullRecord().appendJSONV2(nil)
	f.Add(line)
	line, _ = fullRecord().appendJSONV1(nil)
	f.Add(line)
	f.Add([]byte(`{"log":"","kind":"x","time":"2026-01-01T00:00:00.000000000Z","seq":0,"prev":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"time":"2026-01-01T00:00:00.000000000Z","log":"","kind":"x","seq":0,"prev":"` + strings.Repeat("0", 64) + `"}`))
	f.Add([]byte(`{"seq":0,"time":"2026-01-01T00:00:00.000000000Z","log":"","kind":"x","prev":"` + strings.Repeat("0", 64) + `"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("ParseRecord error %v does not wrap ErrSyntax", err)
			}
			return
		}
		again, err := encodeLike(r, line)
		if err != nil || !bytes.Equal(again, line) {
			t.Fatalf("ParseRecord accepted a non-canonical line:\n%q\n%q", line, again)
		}
	})
}

func FuzzParseCheckpoint(f *testing.F) {
	cp, err := SignCheckpoint(Checkpoint{Log: "L", Size: 3, Head: HashLine([]byte("x")), Time: time.Unix(1, 0)}, testSKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cp.Note)
	f.Add([]byte("agentguard audit checkpoint v1\nL\n0\n" + strings.Repeat("0", 64) + "\n1970-01-01T00:00:00.000000000Z\n\n— x y\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		c, err := ParseCheckpoint(msg, nil)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("error %v does not wrap ErrCheckpoint", err)
			}
			return
		}
		if !strings.HasPrefix(string(msg), c.Text()+"\n") {
			t.Fatalf("parsed %q from %q", c.Text(), msg)
		}
		if _, err := ParseCheckpoint(msg, mustVerifier(t)); err == nil && !bytes.Equal(msg, cp.Note) {
			// A different message with a valid signature would be a forgery.
			c2, _ := ParseCheckpoint(cp.Note, nil)
			if c2.Text() != c.Text() {
				t.Fatalf("forged checkpoint verified: %q", msg)
			}
		}
	})
}

// FuzzAppendJSON checks that whatever the Log writes, it can read back.
func FuzzAppendJSON(f *testing.F) {
	f.Add("x", "y", 1.5, int64(2))
	f.Add("\xff\u2028", "\x00\"", 1e300, int64(-1))
	f.Fuzz(func(t *testing.T, s, k string, fl float64, i int64) {
		r := &Record{Kind: Kind("k" + s), Tool: s, Reason: k, Args: map[string]any{k: s, "f": fl, "i": i, "a": []any{s, fl}},
			Labels: map[string]string{k: s}}
		line, err := r.AppendJSON(nil)
		if err != nil {
			if math.IsNaN(fl) || math.IsInf(fl, 0) {
				return
			}
			t.Fatal(err)
		}
		if _, err := ParseRecord(line); err != nil {
			t.Fatalf("ParseRecord(AppendJSON(...)) = %v for %s", err, line)
		}
		line, err = r.appendJSONV2(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRecord(line); err != nil {
			t.Fatalf("ParseRecord of version 2 = %v for %s", err, line)
		}
		line, err = r.appendJSONV1(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseRecord(line); err != nil {
			t.Fatalf("ParseRecord of version 1 = %v for %s", err, line)
		}
	})
}

func TestTimeFormat(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 11, 30, 9, 5, 1, 7, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("x", 3600)),
		time.Unix(0, 0),
	} {
		got := string(appendTime(nil, tm))
		if want := tm.UTC().Format(timeLayout); got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
		back, ok := parseTime([]byte(got))
		if !ok || !back.Equal(tm) {
			t.Errorf("parseTime(%s) = %v, %v", got, back, ok)
		}
	}
	for _, bad := range []string{"2026-02-30T00:00:00.000000000Z", "2026-01-01T24:00:00.000000000Z", "2026-01-01T00:00:00.00000000xZ"} {
		for _, line := range []string{
			`{"seq":0,"time":"` + bad + `","log":"","kind":"k","prev":"` + strings.Repeat("0", 64) + `"}`,
			`{"time":"` + bad + `","log":"","kind":"k","seq":0,"prev":"` + strings.Repeat("0", 64) + `"}`,
			`{"log":"","kind":"k","time":"` + bad + `","seq":0,"prev":"` + strings.Repeat("0", 64) + `"}`,
		} {
			if _, err := ParseRecord([]byte(line)); err == nil {
				t.Errorf("ParseRecord accepted the time %s in %s", bad, line)
			}
		}
	}
}
