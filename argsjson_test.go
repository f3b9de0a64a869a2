package agentguard

import (
	"bytes"
	"encoding/json"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestDecodeArgsRefuses lists raw JSON that two readers could read two
// ways, and checks that decodeArgs refuses each, naming where.
func TestDecodeArgsRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"case-folded keys", `{"to":"bob@acme.com","TO":"x@evil.com"}`, `keys "to" and "TO" in args differ only in letter case`},
		{"case-folded path", `{"path":"/srv/x","Path":"/etc/shadow"}`, `"path" and "Path"`},
		{"case-folded budget", `{"max_tokens":1,"MAX_TOKENS":100000}`, `"max_tokens" and "MAX_TOKENS"`},
		{"Kelvin sign", `{"task":"a","tas` + "\u212a" + `":"b"}`, `"task" and "tas` + "\u212a" + `"`},
		{"Kelvin sign escaped", `{"task":"a","tas\u212A":"b"}`, `"task" and "tas` + "\u212a" + `"`},
		{"long s", `{"s":1,"\u017f":2}`, `"s" and "` + "\u017f" + `"`},
		{"exact duplicate", `{"a":1,"a":2}`, `duplicate key "a" in args`},
		{"duplicate via escape", `{"a":1,"\u0061":2}`, `duplicate key "a" in args`},
		{"nested duplicate", `{"x":{"y":[1,{"k":1,"K":2}]}}`, `in args.x.y[1] differ only in letter case`},
		{"odd key in path", `{"a b":{"k":1,"k":2}}`, `in args["a b"]`},
		{"invalid UTF-8 in a string", "{\"to\":\"bob\xff\"}", `a string at args.to is not valid UTF-8`},
		{"invalid UTF-8 in a key", "{\"t\xc0o\":1}", `a key in args is not valid UTF-8`},
		{"lone high surrogate", `{"to":"\ud800"}`, `lone surrogate`},
		{"lone low surrogate", `{"to":"\udc00x"}`, `lone surrogate`},
		{"reversed surrogates", `{"to":"\udc00\ud800"}`, `lone surrogate`},
		{"surrogate then letter", `{"to":"\ud800\u0041"}`, `lone surrogate`},
		{"integer above uint64", `{"id":18446744073709551616}`, `an integer at args.id does not fit in 64 bits`},
		{"integer below int64", `{"id":-9223372036854775809}`, `does not fit in 64 bits`},
		{"rounded integer in float form", `{"id":9007199254740993.0}`, `a number at args.id has more digits than a double holds, so it would be rounded`},
		{"rounded integer in exponent form", `{"id":9007199254740993e0}`, `more digits than a double holds`},
		{"too many digits", `{"x":0.10000000000000001}`, `more digits than a double holds`},
		{"overflow", `{"x":1e400}`, `out of the range of a double`},
		{"not JSON", `{"to":}`, `not valid JSON`},
		{"trailing data", `{"to":"a"} {}`, `data after the arguments`},
		{"leading zero", `{"n":01}`, `leading zero`},
		{"deep", strings.Repeat("[", maxArgsDepth+1) + strings.Repeat("]", maxArgsDepth+1), `nested more than`},
		{"control character", "{\"a\":\"\x01\"}", `control character`},
	} {
		_, err := decodeArgs([]byte(tc.in), strictRaw)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: decodeArgs(%q) = %v, want an error containing %q", tc.name, tc.in, err, tc.want)
		}
	}
}

// TestDecodeArgsValues checks the values decodeArgs gives: integers exact
// as int64 or uint64, floats only in their shortest form.
func TestDecodeArgsValues(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want map[string]any
	}{
		{``, map[string]any{}},
		{`null`, map[string]any{}},
		{` "x" `, map[string]any{"value": "x"}},
		{`[1]`, map[string]any{"value": []any{int64(1)}}},
		{`{"a":9007199254740993}`, map[string]any{"a": int64(9007199254740993)}},
		{`{"a":-9223372036854775808}`, map[string]any{"a": int64(math.MinInt64)}},
		{`{"a":9223372036854775808}`, map[string]any{"a": uint64(1 << 63)}},
		{`{"a":18446744073709551615}`, map[string]any{"a": uint64(math.MaxUint64)}},
		{`{"a":-0}`, map[string]any{"a": int64(0)}},
		{`{"a":0.1,"b":1e21,"c":1E+2,"d":100.0,"e":-0.0,"f":5e-324,"g":123456789012345680000.0}`,
			map[string]any{"a": 0.1, "b": 1e21, "c": 100.0, "d": 100.0, "e": math.Copysign(0, -1), "f": 5e-324, "g": 123456789012345680000.0}},
		{`{"a":0.30000000000000004,"b":1.7976931348623157e308,"c":0.000001,"d":100.50000}`,
			map[string]any{"a": 0.30000000000000004, "b": math.MaxFloat64, "c": 0.000001, "d": 100.5}},
		{`{"to":"a","tO":{"to":1}}`, nil}, // refused: case-folded keys
		{`{"a":"\u00e9\ud83d\ude00\n\/","q":"\u212a","K":{}}`, map[string]any{"a": "é😀\n/", "q": "\u212a", "K": map[string]any{}}},
		{`{"Straße":1,"STRASSE":2}`, map[string]any{"Straße": int64(1), "STRASSE": int64(2)}}, // full folding is not simple folding
	} {
		got, err := decodeArgs([]byte(tc.in), strictRaw)
		if tc.want == nil {
			if err == nil {
				t.Errorf("decodeArgs(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("decodeArgs(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
	// Go values: a whole float64 outside 64-bit integers is written as
	// digits by encoding/json, and read back as the float it came from.
	for _, f := range []float64{1e20, -1e20, 123456789012345678901, 1 << 64} {
		b, _ := json.Marshal(map[string]any{"f": f})
		got, err := decodeArgs(b, fromGo)
		if err != nil || got["f"] != f {
			t.Errorf("decodeArgs(%s, fromGo) = %#v, %v; want %v", b, got, err, f)
		}
		if _, err := decodeArgs(b, strictRaw); err == nil {
			t.Errorf("decodeArgs(%s, strictRaw) accepted an integer beyond 64 bits", b)
		}
	}
	// A large object takes the map path for its key checks.
	var sb strings.Builder
	sb.WriteString("{")
	for i := range 40 {
		sb.WriteString(`"k` + strconv.Itoa(i) + `":1,`)
	}
	big := sb.String()
	if _, err := decodeArgs([]byte(big+`"z":1}`), strictRaw); err != nil {
		t.Errorf("a large object: %v", err)
	}
	for _, end := range []string{`"K39":1}`, `"k39":1}`, `"\u212a3":1}`} {
		if _, err := decodeArgs([]byte(big+end), strictRaw); err == nil {
			t.Errorf("a large object ending in %s: accepted", end)
		}
	}
	if _, err := decodeArgs([]byte(big+`"K39":1}`), fromGo); err != nil {
		t.Errorf("a large Go object with keys differing in case: %v", err)
	}
}

// jsonSeeds are inputs for the decoder's fuzz targets.
var jsonSeeds = []string{
	`{"to":"bob@acme.com","TO":"x@evil.com"}`,
	`{"task":1,"tas` + "\u212a" + `":2}`,
	`{"s":1,"\u017f":2}`,
	`{"a":9007199254740993,"b":18446744073709551615,"c":-9223372036854775808,"d":1e21,"e":0.1}`,
	`{"a":{"b":[1,2,{"c":"\ud83d\ude00"}]},"x":null,"y":true,"z":false}`,
	`{"a":1,"a":2}`,
	`[1,"x",{"k":{}}]`,
	`"\ud800"`,
	"{\"a\":\"\xff\"}",
	`{"n":9007199254740993.0,"m":123e-2}`,
}

// FuzzDecodeArgs checks decodeArgs against encoding/json on any input:
// what it accepts, encoding/json accepts and reads to the same value
// (numbers compared exactly, as decimals); no object it accepts has two
// keys equal under case folding; and what encoding/json refuses, it
// refuses.
func FuzzDecodeArgs(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeValue(b, strictRaw)
		if !json.Valid(b) {
			if err == nil {
				t.Fatalf("decodeValue(%q) = %#v, but encoding/json finds it invalid", b, got)
			}
			return
		}
		if err != nil {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		if !sameJSON(got, want) {
			t.Fatalf("decodeValue(%q) = %#v; encoding/json reads %#v", b, got, want)
		}
	})
}

// sameJSON reports whether ours (decodeArgs) and theirs (encoding/json
// with UseNumber) are the same value, and that ours has no case-folded
// keys.
func sameJSON(ours, theirs any) bool {
	switch o := ours.(type) {
	case map[string]any:
		th, ok := theirs.(map[string]any)
		if !ok || len(o) != len(th) {
			return false
		}
		for k, v := range o {
			for k2 := range o {
				if k != k2 && strings.EqualFold(k, k2) {
					return false
				}
			}
			if !sameJSON(v, th[k]) {
				return false
			}
		}
		return true
	case []any:
		th, ok := theirs.([]any)
		if !ok || len(o) != len(th) {
			return false
		}
		for i := range o {
			if !sameJSON(o[i], th[i]) {
				return false
			}
		}
		return true
	case int64, uint64:
		n, ok := theirs.(json.Number)
		if !ok {
			return false
		}
		exact, ok := new(big.Int).SetString(string(n), 10)
		return ok && exact.String() == fmtInt(o)
	case float64:
		n, ok := theirs.(json.Number)
		if !ok {
			return false
		}
		// The text's exact value must be the float's shortest decimal.
		want, _, err := big.ParseFloat(string(n), 10, 2000, big.ToNearestEven)
		if err != nil {
			return false
		}
		short, _, _ := big.ParseFloat(strconv.FormatFloat(o, 'g', -1, 64), 10, 2000, big.ToNearestEven)
		return want.Cmp(short) == 0
	}
	return reflect.DeepEqual(ours, theirs)
}

func fmtInt(v any) string {
	switch v := v.(type) {
	case int64:
		return strconv.FormatInt(v, 10)
	case uint64:
		return strconv.FormatUint(v, 10)
	}
	return ""
}

// BenchmarkDecodeArgs measures the strict decoder on a typical tool
// call's arguments, next to encoding/json's plain decoding into a map (the
// reader it replaced, which checks none of what the strict one does).
//
//	go test -run '^$' -bench DecodeArgs -benchmem .
func BenchmarkDecodeArgs(b *testing.B) {
	raw := []byte(`{"to":"bob@acme.com","subject":"Your refund","body":"Hello Bob,\nyour refund of 120.50 USD is on its way.\n","amount":120.5,"order":9007199254740993,"cc":["carol@acme.com","dave@acme.com"],"opts":{"priority":"high","retries":3}}`)
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := decodeArgs(raw, strictRaw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCheckFolded checks the key check on maps handed over by frameworks:
// collisions at any depth and in large objects are found, and a clean map
// costs no allocation.
func TestCheckFolded(t *testing.T) {
	large := map[string]any{}
	for i := range 40 {
		large["k"+strconv.Itoa(i)] = i
	}
	clean := map[string]any{"to": "a", "opts": map[string]any{"x": []any{map[string]any{"y": 1, "Y2": 2}}}, "n": 1}
	if _, err := checkFolded(clean); err != nil {
		t.Fatalf("checkFolded(clean) = %v", err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = checkFolded(clean) }); n != 0 {
		t.Errorf("checkFolded(clean) allocates %v times, want none", n)
	}
	clean["large"] = large
	if _, err := checkFolded(clean); err != nil {
		t.Fatalf("checkFolded(clean, with a large object) = %v", err)
	}
	large["K39"] = 1
	if _, err := checkFolded(clean); err == nil || !strings.Contains(err.Error(), `keys "K39" and "k39" in args.large differ only in letter case`) {
		t.Errorf("checkFolded with K39 and k39 in a large object = %v", err)
	}
	deep := map[string]any{}
	m := deep
	for range maxArgsDepth + 1 {
		next := map[string]any{}
		m["a"] = next
		m = next
	}
	if _, err := checkFolded(deep); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("checkFolded(too deep) = %v", err)
	}
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	if _, err := checkFolded(cyclic); err == nil {
		t.Error("checkFolded(a map holding itself) = nil")
	}
}
