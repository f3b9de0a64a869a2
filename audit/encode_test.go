package audit

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// refAppendString is appendString as it was written first, one byte at a
// time: the reference the word-at-a-time version must match.
func refAppendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\uFFFD"...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// refHint is Redactor.hint as it was written first, trying the clues at
// every byte: the reference the table-driven version must match.
func (r *Redactor) refHint(s string) bool {
	if r.extra != nil {
		return true
	}
	sep := strings.ContainsAny(s, ":=")
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			if foldsToASCII(s[i:]) {
				return true
			}
			continue
		}
		for _, clue := range cluesByFirst[c] {
			if clue[0] == 0 && hasPrefixFold(s[i:], clue[1:]) || strings.HasPrefix(s[i:], clue) {
				return true
			}
		}
		if sep && keyClueAt(&r.keyClues, s[i:]) {
			return true
		}
	}
	return false
}

// stringSeeds are strings with every byte class appendString and hint
// tell apart, at every offset within an eight-byte word.
var stringSeeds = []string{
	"", "a", "plain ascii text that is long enough for words",
	`quote " and backslash \ in the middle of words`,
	"tab\there\nnewline\rcr\x00nul\x1f\x7f del",
	"héllo wörld, ünïcode ✓ 日本語", "\u2028line\u2029para", "bad \xff\xfe utf-8 \xc3",
	"12345678\"", "1234567\\", "\x80bcdefgh", "abcdefg\x80", "abcdefgh\x1f",
	"Authorization: Bearer abcdefghijklmnop", "token=abc123def", "sk-abcdefghijklmnopqrstuvwx",
	"AKIAABCDEFGHIJKLMNOP", "postgres://user:hunter22@db/x", "password: hunter2",
	"ſecret=x", "\u212aey: v", "BASIC dXNlcjpwYXNz", "ghp_abcdefghijklmnopqrstuvwxyz",
	"eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "-----BEGIN PRIVATE KEY-----", "Hello Bob, your refund of 12.50 USD is on its way.",
}

// TestAppendStringMatchesReference checks the word-at-a-time appendString
// against the byte-at-a-time reference on the seeds, at every offset and
// cut, and on random strings of the bytes that matter.
func TestAppendStringMatchesReference(t *testing.T) {
	check := func(s string) {
		t.Helper()
		if got, want := appendString(nil, s), refAppendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
	for _, s := range stringSeeds {
		for i := 0; i <= len(s); i++ {
			check(s[i:])
			check(s[:i])
		}
	}
	alphabet := []byte("ab \"\\\x00\x1f\x20\x7f\x80\xbf\xc3\xe2\x80\xa8\xff~!")
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
}

// FuzzAppendString checks appendString against the reference on any
// string.
func FuzzAppendString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := appendString(nil, s), refAppendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// hintRedactors are a default Redactor and one with extra keys (whose
// words add key clues, one of them starting with a digit).
func hintRedactors(tb testing.TB) []*Redactor {
	tb.Helper()
	var reds []*Redactor
	for _, r := range []Redaction{{HashKey: []byte("k")}, {HashKey: []byte("k"), Keys: []string{"internal id", "2fa code", "Zebra", "Q"}}} {
		red, err := NewRedactor(r)
		if err != nil {
			tb.Fatal(err)
		}
		reds = append(reds, red)
	}
	return reds
}

// TestHintMatchesReference checks the table-driven hint against the
// reference on the seeds and their cuts.
func TestHintMatchesReference(t *testing.T) {
	for _, red := range hintRedactors(t) {
		for _, s := range append(stringSeeds, "zebra: x", "2FA=1", "internal=3", "id: 5", "a=q", "q", "Q: 1", "aq=1") {
			for i := 0; i <= len(s); i++ {
				for _, x := range []string{s[i:], s[:i]} {
					if got, want := red.hint(x), red.refHint(x); got != want {
						t.Errorf("hint(%q) = %v, want %v", x, got, want)
					}
				}
			}
		}
	}
}

// TestHintNearClues checks hint against the reference on the clues with
// one byte changed to each byte that shares its low six bits (which the
// pair sets do not tell apart), in strings with and without a ':', and on
// random text of such bytes.
func TestHintNearClues(t *testing.T) {
	words := slices.Concat(clues, foldClues, foldRunes, keyClues, []string{"internal", "2fa", "zebra", "q"})
	rng := rand.New(rand.NewPCG(5, 6))
	var alphabet []byte
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			for d := range 4 {
				alphabet = append(alphabet, w[i]+byte(64*d), w[i]^0x20+byte(64*d))
			}
		}
	}
	alphabet = append(alphabet, ':', '=', ' ', 0xc5, 0xbf, 0xe2, 0x84, 0xaa)
	for _, red := range hintRedactors(t) {
		for _, w := range words {
			for i := 0; i < len(w); i++ {
				for d := 1; d < 4; d++ {
					b := []byte(w)
					b[i] += byte(64 * d)
					for _, x := range []string{string(b), "a " + string(b) + " z", string(b) + ": 1", "x=" + string(b)} {
						if got, want := red.hint(x), red.refHint(x); got != want {
							t.Fatalf("hint(%q) = %v, want %v", x, got, want)
						}
					}
				}
			}
		}
		for range 20000 {
			b := make([]byte, rng.IntN(16))
			for i := range b {
				b[i] = alphabet[rng.IntN(len(alphabet))]
			}
			if got, want := red.hint(string(b)), red.refHint(string(b)); got != want {
				t.Fatalf("hint(%q) = %v, want %v", b, got, want)
			}
		}
	}
}

// FuzzHint checks hint against the reference on any string.
func FuzzHint(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	reds := hintRedactors(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, red := range reds {
			if got, want := red.hint(s), red.refHint(s); got != want {
				t.Fatalf("hint(%q) = %v, want %v", s, got, want)
			}
		}
	})
}

// TestAppendTime checks the computed date against package time across
// the fast range's edges, leap days and random instants, and beyond it.
func TestAppendTime(t *testing.T) {
	check := func(tm time.Time) {
		t.Helper()
		if got, want := string(appendTime(nil, tm)), string(appendTimeSlow(nil, tm)); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
		if tm.Year() >= 0 && tm.Year() <= 9999 {
			if want := tm.UTC().Format(timeLayout); string(appendTime(nil, tm)) != want {
				t.Fatalf("appendTime(%v) = %s, want %s", tm, appendTime(nil, tm), want)
			}
		}
	}
	for _, tm := range []time.Time{
		time.Unix(0, 0), time.Unix(-1, 999999999), time.Unix(maxFastTime-1, 999999999), time.Unix(maxFastTime, 0),
		time.Date(2000, 2, 29, 23, 59, 59, 1, time.UTC), time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 31, 12, 0, 0, 0, time.FixedZone("x", 13*3600)), time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		check(tm)
	}
	for d := int64(0); d < 800; d++ { // every day of two years around a leap day
		check(time.Unix(951782400+d*86400-400*86400+d*37, d))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		check(time.Unix(rng.Int64N(maxFastTime+1e9)-1e9, rng.Int64N(1e9)))
	}
}

// FuzzAppendTime checks appendTime against package time at any instant.
func FuzzAppendTime(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(maxFastTime-1), int64(999999999))
	f.Add(int64(951825600), int64(5))
	f.Fuzz(func(t *testing.T, sec, nsec int64) {
		tm := time.Unix(sec, nsec)
		if got, want := string(appendTime(nil, tm)), string(appendTimeSlow(nil, tm)); got != want {
			t.Fatalf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	})
}

// planCase builds a record and a plan from fuzzed text: keys and plan
// keys are comma-separated; the values are taken from vals in turn, each
// made into a string, number, boolean, null, list or object by its first
// byte.
func planCase(red *Redactor, keys, planKeys, vals, env, tool, agent string, labelled bool) (*Record, *Plan) {
	var labels map[string]string
	if labelled {
		labels = map[string]string{"team": "support", "tier": tool}
	}
	pieces := strings.Split(vals, "|")
	val := func(i int) any {
		s := pieces[i%len(pieces)]
		if s == "" {
			return ""
		}
		switch s[0] % 8 {
		case 0:
			return int64(len(s)) * -7
		case 1:
			return float64(len(s)) / 3
		case 2:
			return s[0]%16 == 2
		case 3:
			return nil
		case 4:
			return []any{s[1:], int64(1)}
		case 5:
			return map[string]any{"password": s[1:], "note": s}
		}
		return s
	}
	args := map[string]any{}
	for i, k := range strings.Split(keys, ",") {
		args[k] = val(i)
	}
	if keys == "" {
		args = nil
	}
	r := &Record{Kind: KindDecision, Call: "c", Principal: Principal{Agent: agent, Tenant: "acme"}, Env: env, Tool: tool,
		Args: args, Labels: labels, Decision: "allow", Reason: vals, Error: agent}
	p := red.Plan("prod", "send_email", labels, strings.Split(planKeys, ","))
	return r, p
}

// mapReader is an ArgReader over a map that counts the calls of Args.
type mapReader struct {
	m    map[string]any
	maps int
}

func (r *mapReader) Len() int                    { return len(r.m) }
func (r *mapReader) Arg(name string) (any, bool) { v, ok := r.m[name]; return v, ok }
func (r *mapReader) Args() map[string]any        { r.maps++; return r.m }

// checkPlan redacts and encodes r with and without p, twice each (the
// second time with the plan's principal cached), and fails on any
// difference in the lines.
func checkPlan(t *testing.T, red *Redactor, r *Record, p *Plan) {
	t.Helper()
	line := func(plan *Plan, agent string) string {
		c := *r
		c.Plan = plan
		c.Principal.Agent = agent
		if err := red.prepare(&c, "Log"); err != nil {
			t.Fatal(err)
		}
		b, err := c.AppendJSON(nil)
		if err != nil {
			return "error: " + err.Error()
		}
		return string(b)
	}
	for _, agent := range []string{r.Principal.Agent, "other", r.Principal.Agent} {
		want := line(nil, agent)
		if got := line(p, agent); got != want {
			t.Fatalf("with a plan:\n%s\nwithout:\n%s", got, want)
		}
		if r.Args == nil {
			continue
		}
		// The same arguments from a Reader: the same line, and the map
		// asked for exactly when the plan cannot vouch for them.
		for _, plan := range []*Plan{p, nil} {
			c := *r
			rd := &mapReader{m: r.Args}
			c.Args, c.Reader, c.Plan = nil, rd, plan
			c.Principal.Agent = agent
			if err := red.prepare(&c, "Log"); err != nil {
				t.Fatal(err)
			}
			b, err := c.AppendJSON(nil)
			got := string(b)
			if err != nil {
				got = "error: " + err.Error()
			}
			if got != want {
				t.Fatalf("from a Reader (plan %v):\n%s\nfrom the map:\n%s", plan != nil, got, want)
			}
			clean := plan != nil && plan.cleanArgs(mapArgs(r.Args))
			if clean && err == nil && rd.maps > 0 || !clean && len(r.Args) > 0 && rd.maps == 0 {
				t.Fatalf("from a Reader (plan %v): the map asked for %d times; clean = %v", plan != nil, rd.maps, clean)
			}
		}
	}
	// Clean's true is certain: Args finds nothing to redact.
	if r.Args != nil && p.Clean(mapArgs(r.Args)) {
		if out, secrets := red.Args(r.Args); len(secrets) > 0 || !sameMap(out, r.Args) {
			t.Fatalf("Plan.Clean(%v) = true, but Args redacts it to %v, secrets %q", r.Args, out, secrets)
		}
	}
	if (*Plan)(nil).Clean(mapArgs(r.Args)) {
		t.Fatal("a nil plan says arguments are clean")
	}
	res := *r
	res.Kind, res.Env, res.Args, res.Labels = KindResult, "", nil, nil
	c := res
	c.Plan = p
	a, _ := c.AppendJSON(nil)
	b, _ := res.AppendJSON(nil)
	if string(a) != string(b) {
		t.Fatalf("result with a plan:\n%s\nwithout:\n%s", a, b)
	}
}

// TestPlanMatchesGeneral checks that a Plan changes no line: records
// whose keys the plan knows, does not know, or knows only some of; secret
// keys and values; another env, tool, labels or principal.
func TestPlanMatchesGeneral(t *testing.T) {
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	vals := []string{"hello|Bearer abcdefghijkl|x", "plain|words|here", "\x05nested|\x04list|\x00\x01\x02", "password: hunter2|sk-abcdefghijklmnopqrstu|{\"token\":\"x\"}"}
	keySets := []string{"to,subject,body", "to,password", "apiKey,to", "to", "", "to,subject,body,extra"}
	for _, vs := range vals {
		for _, ks := range keySets {
			for _, pks := range []string{"to,subject,body", "body,to,subject,to", "password,to,apiKey", ""} {
				for _, env := range []string{"prod", "dev", ""} {
					for _, tool := range []string{"send_email", "other"} {
						for _, labelled := range []bool{false, true} {
							r, p := planCase(red, ks, pks, vs, env, tool, "support-bot", labelled)
							checkPlan(t, red, r, p)
						}
					}
				}
			}
		}
	}
}

// FuzzPlan checks that a Plan changes no line, on any record.
func FuzzPlan(f *testing.F) {
	f.Add("to,subject,body", "to,subject,body", "bob@example.com|hi|Hello Bob", "prod", "send_email", "bot", true)
	f.Add("to,password", "password,to", "x|hunter22", "prod", "send_email", "", false)
	f.Add("a,b", "a", "ghp_abcdefghijklmnopqrstuvwxyz|\x05n", "dev", "send_email", "bot", false)
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, keys, planKeys, vals, env, tool, agent string, labelled bool) {
		r, p := planCase(red, keys, planKeys, vals, env, tool, agent, labelled)
		checkPlan(t, red, r, p)
	})
}

// TestTextSecretsOrder checks that Text gives one answer whatever the
// order of the secrets (a map's walk gives them), the longer one marked
// whole.
func TestTextSecretsOrder(t *testing.T) {
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	s := "failed for xhunter22x and hunter22"
	a := red.Text(s, []string{"hunter22", "xhunter22x"})
	b := red.Text(s, []string{"xhunter22x", "hunter22"})
	if a != b {
		t.Fatalf("Text depends on the secrets' order: %q, %q", a, b)
	}
	if want := "failed for " + red.Mark("xhunter22x") + " and " + red.Mark("hunter22"); a != want {
		t.Fatalf("Text = %q, want %q", a, want)
	}
}

// TestPlanConcurrent encodes records with one plan from several
// goroutines, principals alternating (the plan's cache of the first one
// races with the others), and checks every line against the general
// path. Run it with -race.
func TestPlanConcurrent(t *testing.T) {
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	p := red.Plan("prod", "send_email", nil, []string{"to", "body"})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				r := Record{Kind: KindDecision, Call: "c", Env: "prod", Tool: "send_email",
					Principal: Principal{Agent: fmt.Sprintf("agent-%d", (g+i)%3)},
					Args:      map[string]any{"to": "x", "body": fmt.Sprint(i), "extra": i % 2}}
				if i%2 == 0 {
					delete(r.Args, "extra")
				}
				with := r
				with.Plan = p
				if err := red.prepare(&with, "Log"); err != nil {
					errs <- err.Error()
					return
				}
				a, _ := with.AppendJSON(nil)
				b, _ := r.AppendJSON(nil)
				if string(a) != string(b) {
					errs <- fmt.Sprintf("with a plan %s, without %s", a, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	if !p.Missed() {
		t.Error("a record with a key the plan does not know left Missed false")
	}
}

// TestPlanLongKey checks that a plan leaves out a key too long to keep,
// and that a record with it is still written as without a plan.
func TestPlanLongKey(t *testing.T) {
	red, err := NewRedactor(Redaction{HashKey: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("k", maxPlanKey+1)
	p := red.Plan("prod", "send_email", nil, []string{"to", long})
	if p.NumKeys() != 1 {
		t.Fatalf("plan keeps %d keys, want 1 (the long one left out)", p.NumKeys())
	}
	r := &Record{Kind: KindDecision, Env: "prod", Tool: "send_email", Args: map[string]any{"to": "x", long: "y"}}
	checkPlan(t, red, r, p)
	if p.Missed() {
		t.Error("a record with a key too long to plan set Missed: the guard would remake the plan on every call")
	}
	r.Args["cc"] = "z"
	checkPlan(t, red, r, p)
	if !p.Missed() {
		t.Error("a record with a key the plan could know left Missed false")
	}
}
