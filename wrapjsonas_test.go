package agentguard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hardstop-labs/agentguard"
)

type emailArgs struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
	Account uint64 `json:"account"`
}

// roundingArgs has fields that cannot hold every integer exactly.
type roundingArgs struct {
	To     string        `json:"to"`
	Amount float64       `json:"amount"`
	Ratio  float32       `json:"ratio"`
	Nested *roundingArgs `json:"nested"`
}

// TestWrapJSONAs checks the form that decodes raw JSON once into the
// tool's type: the policy sees the value the tool receives, and JSON the
// two could read differently is refused.
func TestWrapJSONAs(t *testing.T) {
	var seen map[string]any
	g := seeingGuard(t, exactPolicy, &seen)
	var got []emailArgs
	tool := func(_ context.Context, a emailArgs) (string, error) { got = append(got, a); return a.To, nil }
	send := agentguard.WrapJSONAs[string](g, "send_email", tool)
	sendBytes := agentguard.WrapJSONAs[json.RawMessage](g, "send_email", tool)

	// A key matched case-insensitively is seen under the field's name:
	// the policy judges the address the tool will use.
	if _, err := send(context.Background(), `{"TO":"eve@evil.com"}`); !errors.Is(err, agentguard.ErrPolicyDenied) {
		t.Errorf(`{"TO":"eve@evil.com"}: %v, want the acme-only rule's denial`, err)
	}
	if seen["to"] != "eve@evil.com" {
		t.Errorf("the policy saw %v, want to: eve@evil.com", seen)
	}
	out, err := sendBytes(context.Background(), json.RawMessage(`{"to":"bob@acme.com","account":18446744073709551615,"subject":"\u00e9"}`))
	if err != nil || out != "bob@acme.com" {
		t.Fatalf("a plain call: %q, %v", out, err)
	}
	want := map[string]any{"to": "bob@acme.com", "subject": "é", "account": uint64(math.MaxUint64)}
	if !reflect.DeepEqual(seen, want) {
		t.Errorf("the policy saw %#v, want %#v", seen, want)
	}
	if len(got) != 1 || got[0] != (emailArgs{To: "bob@acme.com", Subject: "é", Account: math.MaxUint64}) {
		t.Errorf("the tool got %+v", got)
	}
	// Empty arguments are the zero value (which the acme-only rule denies).
	if _, err := send(context.Background(), ``); !errors.Is(err, agentguard.ErrPolicyDenied) || seen["to"] != "" {
		t.Errorf("empty arguments: %v; the policy saw %v", err, seen)
	}
	read := agentguard.WrapJSONAs[string](g, "read_file", tool)
	if _, err := read(context.Background(), ` null `); err != nil || len(got) != 2 || got[1] != (emailArgs{}) {
		t.Errorf("empty arguments: %v, tool got %+v", err, got)
	}

	rounding := agentguard.WrapJSONAs[string](g, "send_email", func(_ context.Context, a roundingArgs) (string, error) { return a.To, nil })
	// Whole numbers a float holds exactly pass.
	if _, err := rounding(context.Background(), `{"to":"bob@acme.com","amount":9007199254740992,"ratio":16777216,"nested":{"amount":1e300}}`); err != nil {
		t.Errorf("exact numbers into float fields: %v", err)
	}
	for _, tc := range []struct {
		raw, want string
		rounding  bool // call the tool with float fields
	}{
		{`{"to":"bob@acme.com","TO":"eve@evil.com"}`, `differ only in letter case`, false},
		{`{"to":"bob@acme.com","to":"eve@evil.com"}`, `duplicate key`, false},
		{`{"to":"bob@acme.com","cc":"eve@evil.com"}`, `a field it does not have`, false},
		{`{"to":"bob@acme.com","account":-1}`, `do not fit the tool's input type agentguard_test.emailArgs: args.account is a JSON number where the tool takes uint64`, false},
		{`{"to":"bob@acme.com","account":18446744073709551616}`, `does not fit in 64 bits`, false},
		{`{"to":["bob@acme.com"]}`, `args.to is a JSON array where the tool takes string`, false},
		{`"bob@acme.com"`, `args is a JSON string where the tool takes agentguard_test.emailArgs`, false},
		{`{"to":"bob@acme.com"}x`, `not valid JSON`, false},
		{`{"to":"bob@acme.com","amount":9007199254740993}`, `a number at args.amount does not fit the tool's input type agentguard_test.roundingArgs exactly`, true},
		{`{"to":"bob@acme.com","ratio":16777217}`, `a number at args.ratio does not fit`, true},
		{`{"to":"bob@acme.com","nested":{"Amount":9007199254740993}}`, `a number at args.nested.Amount does not fit`, true},
	} {
		n := len(got)
		call := send
		if tc.rounding {
			call = rounding
		}
		_, err := call(context.Background(), tc.raw)
		d := wantDenied(t, err, agentguard.CodeInvalidCall, agentguard.ErrInvalidCall)
		if !strings.Contains(d.Reason, tc.want) || len(got) != n {
			t.Errorf("%s: %q (ran %v), want a reason containing %q and no run", tc.raw, d.Reason, len(got) != n, tc.want)
		}
		// The reason names keys and types, never a value the model sent.
		if strings.Contains(d.Reason, "eve@evil.com") || strings.Contains(d.Reason, "-1") || strings.Contains(d.Reason, "18446744073709551616") {
			t.Errorf("%s: the reason %q quotes a value", tc.raw, d.Reason)
		}
	}
}

// seeingGuard returns a Guard with the policy src that stores in *seen the
// call.args of each decision, which is what the policy saw. Calls must not
// run in parallel.
func seeingGuard(t testing.TB, src string, seen *map[string]any) *agentguard.Guard {
	t.Helper()
	g, err := agentguard.New(agentguard.WithPolicy(mustPolicy(t, src)),
		agentguard.WithRecorder(agentguard.RecorderFunc(func(_ context.Context, e *agentguard.Event) error {
			if e.Kind == agentguard.EventDecision {
				*seen = e.Call.Args
			}
			return nil
		})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// fuzzInner and fuzzArgs are a tool's own types for the differential
// fuzz target: flat (the reflection plan) and nested (the JSON path).
type fuzzInner struct {
	K    int64    `json:"k"`
	Tags []string `json:"tags"`
}

type fuzzFlat struct {
	To     string  `json:"to"`
	Amount float64 `json:"amount"`
	ID     uint64  `json:"id"`
	N      int64   `json:"n"`
	Small  int8    `json:"small"`
	Task   string  `json:"task"`
	S      string  `json:"s"`
	OK     bool    `json:"ok"`
}

type fuzzNested struct {
	To     string         `json:"to"`
	Amount float64        `json:"amount"`
	ID     uint64         `json:"id"`
	Task   string         `json:"task"`
	Inner  *fuzzInner     `json:"inner"`
	Meta   map[string]any `json:"meta"`
	List   []any          `json:"list"`
}

var (
	fuzzKeys = []string{"to", "TO", "To", "tO", "amount", "AMOUNT", "id", "ID", "Id", "n", "N", "small", "SMALL",
		"task", "TASK", "tasK", "tas\u212a", "s", "S", "\u017f", "ok", "OK", "inner", "INNER", "meta", "Meta",
		"list", "k", "K", "\u212a", "tags", "Tags", "extra", `\u0074o`, `tas\u212A`}
	fuzzScalars = []string{`"bob@acme.com"`, `"eve@evil.com"`, `"\u212a"`, "\"\xff\"", `"\ud800"`, `"é"`, `""`,
		`0`, `1`, `-1`, `127`, `128`, `-129`, `9007199254740992`, `9007199254740993`, `9223372036854775807`,
		`9223372036854775808`, `18446744073709551615`, `18446744073709551616`, `-9223372036854775808`,
		`-9223372036854775809`, `1.5`, `0.1`, `1e21`, `1e20`, `9007199254740993.0`, `1e400`, `100.0`, `-0`,
		`true`, `false`, `null`}
)

// genJSON writes a JSON value chosen by the bytes of src: objects with
// keys in random case, duplicates, Unicode folding, big integers,
// nesting.
func genJSON(buf *bytes.Buffer, src []byte, pos *int, depth int) {
	next := func() int {
		if *pos >= len(src) {
			return 0
		}
		*pos++
		return int(src[*pos-1])
	}
	switch c := next(); {
	case depth < 3 && c%5 == 0:
		buf.WriteByte('[')
		for i := range next() % 4 {
			if i > 0 {
				buf.WriteByte(',')
			}
			genJSON(buf, src, pos, depth+1)
		}
		buf.WriteByte(']')
	case depth < 3 && c%5 == 1 || depth == 0:
		buf.WriteByte('{')
		for i := range next() % 6 {
			if i > 0 {
				buf.WriteByte(',')
			}
			buf.WriteString(`"` + fuzzKeys[next()%len(fuzzKeys)] + `":`)
			genJSON(buf, src, pos, depth+1)
		}
		buf.WriteByte('}')
	default:
		buf.WriteString(fuzzScalars[next()%len(fuzzScalars)])
	}
}

// FuzzWrapJSONAsMatchesStruct is the differential test of issue 11: for
// generated JSON objects (or raw bytes), a call through WrapJSONAs is
// either refused as invalid without running, or the tool receives what
// encoding/json decodes into its struct, and the policy saw that same
// value, field by field. JSON with keys that collide under case folding,
// or invalid UTF-8, is always refused.
func FuzzWrapJSONAsMatchesStruct(f *testing.F) {
	f.Add(false, []byte{1, 3, 0, 1, 7, 1, 16})
	f.Add(false, []byte{1, 5, 15, 3, 16, 1, 2, 14, 6, 23, 11, 30, 5})
	f.Add(false, []byte{1, 2, 0, 2, 1, 2})
	f.Add(false, []byte{1, 4, 22, 1, 2, 27, 1, 29, 5, 3, 3, 18})
	f.Add(true, []byte(`{"to":"bob@acme.com","meta":{"a":9007199254740993,"b":[1.5,null]},"inner":{"k":-5,"tags":["x"]}}`))
	f.Add(true, []byte(`{"TO":"x","tO":"y"}`))

	var seen map[string]any
	g := seeingGuard(f, "version: 1\ndefault: allow\n", &seen)
	var flatGot fuzzFlat
	var nestedGot fuzzNested
	flat := agentguard.WrapJSONAs[[]byte](g, "flat", func(_ context.Context, a fuzzFlat) (string, error) { flatGot = a; return "", nil })
	nested := agentguard.WrapJSONAs[[]byte](g, "nested", func(_ context.Context, a fuzzNested) (string, error) { nestedGot = a; return "", nil })

	f.Fuzz(func(t *testing.T, asRaw bool, src []byte) {
		raw := src
		if !asRaw {
			var buf bytes.Buffer
			pos := 0
			genJSON(&buf, src, &pos, 0)
			raw = buf.Bytes()
		}
		mustRefuse := !utf8.Valid(raw) || foldedKeys(raw)
		check := func(name string, call func() error, got, want any) {
			seen = nil
			err := call()
			if err != nil {
				var d *agentguard.DeniedError
				if !errors.As(err, &d) || d.Code != agentguard.CodeInvalidCall {
					t.Fatalf("%s(%s): %v, want an invalid-call denial or a run", name, raw, err)
				}
				return
			}
			if mustRefuse {
				t.Fatalf("%s(%s) ran, though its keys collide under case folding or it is not UTF-8", name, raw)
			}
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			dec.UseNumber()
			if len(bytes.TrimSpace(raw)) > 0 {
				if err := dec.Decode(want); err != nil {
					t.Fatalf("%s(%s) ran, but encoding/json refuses it: %v", name, raw, err)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s(%s): the tool got %+v, encoding/json decodes %+v", name, raw, got, want)
			}
			if err := sameView(seen, reflect.ValueOf(want).Elem()); err != nil {
				t.Fatalf("%s(%s): the policy saw %#v, the tool got %+v: %v", name, raw, seen, got, err)
			}
		}
		check("flat", func() error { flatGot = fuzzFlat{}; _, err := flat(context.Background(), raw); return err }, &flatGot, new(fuzzFlat))
		check("nested", func() error { nestedGot = fuzzNested{}; _, err := nested(context.Background(), raw); return err }, &nestedGot, new(fuzzNested))
	})
}

// foldedKeys reports whether some object in raw has two keys equal under
// case folding, read with encoding/json's tokenizer.
func foldedKeys(raw []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	type frame struct {
		obj    bool
		keys   []string
		expect bool // the next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if top != nil && top.obj {
					top.expect = true
				}
				stack = append(stack, &frame{obj: tok == '{', expect: tok == '{'})
				continue
			default:
				stack = stack[:len(stack)-1]
				continue
			}
		case string:
			if top != nil && top.obj && top.expect {
				for _, k := range top.keys {
					if strings.EqualFold(k, tok) {
						return true
					}
				}
				top.keys = append(top.keys, tok)
				top.expect = false
				continue
			}
		}
		if top != nil && top.obj {
			top.expect = true
		}
	}
}

// sameView checks that args, what the policy saw, is v, a value of a
// tool's type, field by field: the same fields under their JSON names,
// strings and booleans equal, integers exact, floats equal.
func sameView(args any, v reflect.Value) error {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			if args != nil {
				return fmt.Errorf("nil, seen as %#v", args)
			}
			return nil
		}
		return sameView(args, v.Elem())
	case reflect.Struct:
		m, ok := args.(map[string]any)
		if !ok || len(m) != v.NumField() {
			return fmt.Errorf("struct %v seen as %#v", v.Type(), args)
		}
		for i := range v.NumField() {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			a, ok := m[name]
			if !ok {
				return fmt.Errorf("field %s not seen", name)
			}
			if err := sameView(a, v.Field(i)); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	case reflect.Map:
		m, ok := args.(map[string]any)
		if v.IsNil() {
			if args != nil {
				return fmt.Errorf("nil map seen as %#v", args)
			}
			return nil
		}
		if !ok || len(m) != v.Len() {
			return fmt.Errorf("map seen as %#v", args)
		}
		for _, k := range v.MapKeys() {
			if err := sameView(m[k.String()], v.MapIndex(k)); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
		}
		return nil
	case reflect.Slice:
		if v.IsNil() {
			if args != nil {
				return fmt.Errorf("nil slice seen as %#v", args)
			}
			return nil
		}
		a, ok := args.([]any)
		if !ok || len(a) != v.Len() {
			return fmt.Errorf("slice seen as %#v", args)
		}
		for i := range a {
			if err := sameView(a[i], v.Index(i)); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	case reflect.String:
		if n, ok := v.Interface().(json.Number); ok {
			return sameNumber(args, string(n))
		}
		if args != v.String() {
			return fmt.Errorf("%q seen as %#v", v.String(), args)
		}
		return nil
	case reflect.Bool:
		if args != v.Bool() {
			return fmt.Errorf("%v seen as %#v", v.Bool(), args)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return sameNumber(args, strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return sameNumber(args, strconv.FormatUint(v.Uint(), 10))
	case reflect.Float64:
		if x, ok := args.(float64); ok {
			if x != v.Float() {
				return fmt.Errorf("%v seen as %v", v.Float(), x)
			}
			return nil
		}
		return sameNumber(args, strconv.FormatFloat(v.Float(), 'f', -1, 64))
	}
	return fmt.Errorf("unexpected kind %v", v.Kind())
}

// sameNumber checks that a number the policy saw has the exact decimal
// value text, and that an integer is an int64 or uint64.
func sameNumber(args any, text string) error {
	var seen *big.Float
	switch a := args.(type) {
	case int64:
		seen = new(big.Float).SetInt64(a)
	case uint64:
		seen = new(big.Float).SetUint64(a)
	case float64:
		if _, err := strconv.ParseInt(text, 10, 64); err == nil {
			return fmt.Errorf("integer %s seen as float64 %v", text, a)
		}
		if f, err := strconv.ParseFloat(text, 64); err != nil || f != a {
			return fmt.Errorf("number %s seen as %v", text, a)
		}
		return nil
	default:
		return fmt.Errorf("number %s seen as %#v", text, args)
	}
	want, _, err := big.ParseFloat(text, 10, 200, big.ToNearestEven)
	if err != nil {
		return err
	}
	if seen.Cmp(want) != 0 {
		return fmt.Errorf("number %s seen as %v", text, args)
	}
	return nil
}

// TestJSONNumbersInMaps checks maps that hold json.Number (a framework's
// decoder with UseNumber, or WrapJSONAs into a map): the policy compares
// them as the exact numbers they are, and the tool keeps its own values.
func TestJSONNumbersInMaps(t *testing.T) {
	var seen map[string]any
	g := seeingGuard(t, exactPolicy, &seen)
	var got map[string]any
	pay := agentguard.WrapJSONAs[string](g, "pay", func(_ context.Context, m map[string]any) (string, error) { got = m; return "", nil })
	if _, err := pay(context.Background(), `{"account":9007199254740993,"list":[1.5]}`); err != nil {
		t.Fatalf("WrapJSONAs into a map: %v", err)
	}
	if seen["account"] != int64(9007199254740993) || !reflect.DeepEqual(seen["list"], []any{1.5}) {
		t.Errorf("the policy saw %#v, want the exact numbers", seen)
	}
	if got["account"] != json.Number("9007199254740993") {
		t.Errorf("the tool got %#v, want its json.Number", got)
	}
	in := map[string]any{"account": json.Number("18446744073709551615")}
	tk, err := g.Check(context.Background(), "pay", in)
	if err != nil {
		t.Fatalf("Check with a json.Number: %v", err)
	}
	if tk.Call().Args["account"] != uint64(18446744073709551615) || in["account"] != json.Number("18446744073709551615") {
		t.Errorf("call.args %#v, the caller's map %#v", tk.Call().Args, in)
	}
	_ = tk.Done(nil, nil)
	_, err = g.Check(context.Background(), "pay", map[string]any{"x": []any{json.Number("9007199254740993.0")}})
	d := wantDenied(t, err, agentguard.CodeInvalidCall, agentguard.ErrInvalidCall)
	if !strings.Contains(d.Reason, "a number at args.x[0] is not one that a 64-bit integer or a double holds exactly") {
		t.Errorf("reason %q", d.Reason)
	}
}
