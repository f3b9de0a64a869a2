package bench

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// floorRules is the policy done by hand: the rules' CEL programs, built
// once without cost tracking, indexed by tool and ordered deny, approve,
// allow, so that the first match decides.
type floorRules struct {
	byTool map[string][]floorRule
}

type floorRule struct {
	name   string
	effect string
	prg    cel.Program
}

var effectRank = map[string]int{"deny": 0, "approve": 1, "allow": 2}

func newFloorRules(rules []benchRule) (*floorRules, error) {
	env, err := cel.NewEnv(cel.Variable("call", cel.MapType(cel.StringType, cel.DynType)))
	if err != nil {
		return nil, err
	}
	f := &floorRules{byTool: map[string][]floorRule{}}
	for rank := 0; rank < 3; rank++ {
		for _, r := range rules {
			if effectRank[r.effect] != rank {
				continue
			}
			ast, iss := env.Compile(r.celMatch())
			if iss.Err() != nil {
				return nil, fmt.Errorf("floor: rule %s: %w", r.name, iss.Err())
			}
			prg, err := env.Program(ast)
			if err != nil {
				return nil, fmt.Errorf("floor: rule %s: %w", r.name, err)
			}
			f.byTool[r.tool] = append(f.byTool[r.tool], floorRule{r.name, r.effect, prg})
		}
	}
	return f, nil
}

// activation is the floor's prebuilt CEL input for one call.
func floorActivation(c benchCall) interpreter.Activation {
	a, err := interpreter.NewActivation(map[string]any{"call": map[string]any{
		"tool": c.Tool, "agent": c.Agent, "requester": c.Requester, "tenant": c.Tenant,
		"env": c.Env, "args": c.Args,
	}})
	if err != nil {
		panic(err)
	}
	return a
}

// decide evaluates the rules that apply to tool: the first that matches
// decides; an error denies; no match denies.
func (f *floorRules) decide(tool string, a interpreter.Activation) (effect, rule string) {
	for _, r := range f.byTool[tool] {
		out, _, err := r.prg.Eval(a)
		if err != nil {
			return "deny", r.name
		}
		if out == types.True {
			return r.effect, r.name
		}
		if out != types.False {
			return "deny", r.name
		}
	}
	return "deny", ""
}

// floorLedger is the least a budget cap needs: a mutex and two sums.
type floorLedger struct {
	mu       sync.Mutex
	limit    int64
	spent    int64
	reserved int64
}

var errFloorBudget = errors.New("floor: over budget")

func (l *floorLedger) reserve(est int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spent+l.reserved+est > l.limit {
		return errFloorBudget
	}
	l.reserved += est
	return nil
}

func (l *floorLedger) commit(est, actual int64) {
	l.mu.Lock()
	l.reserved -= est
	l.spent += actual
	l.mu.Unlock()
}

// floorLog is the least a hash-chained log needs: each line is encoded by
// hand, with the same fields as the guard's records, carries the hash of
// the previous one, and is copied into the file's shared mapping (on
// Linux; see mapFile) under a mutex. As in the guard's log (version 3 of
// audit/FORMAT.md), everything up to the seq is encoded and hashed before
// the mutex, from the state after the line's head when the last line of
// its kind had the same head; under the mutex are only the seq, the prev,
// the end of the hash and the copy.
type floorLog struct {
	mu    sync.Mutex
	f     *mapFile
	id    string
	seq   uint64
	prev  [32]byte
	heads [2]floorHead // decisions', results'
}

// floorHead is the head of the last line of a kind, what it is made of
// and the SHA-256 state after it, replaced whole.
type floorHead struct {
	kept atomic.Pointer[floorState]
}

type floorState struct {
	key         floorKey
	head, state []byte
}

// floorKey is what a head is made of.
type floorKey struct {
	tool, agent, requester, tenant, session, env string
	decision, rule, outcome                      string
	actual                                       int64
}

// appendHead appends the head of r's line.
func (l *floorLog) appendHead(b []byte, r *floorRecord) []byte {
	b = append(b, `{"log":`...)
	b = appendString(b, l.id)
	b = append(b, `,"kind":`...)
	b = appendString(b, r.kind)
	b = append(b, `,"principal":{"agent":`...)
	b = appendString(b, r.c.Agent)
	b = append(b, `,"requester":`...)
	b = appendString(b, r.c.Requester)
	b = append(b, `,"tenant":`...)
	b = appendString(b, r.c.Tenant)
	b = append(b, `,"session":`...)
	b = appendString(b, r.c.Session)
	b = append(b, '}')
	if r.kind != "result" {
		b = append(b, `,"env":`...)
		b = appendString(b, r.c.Env)
	}
	b = append(b, `,"tool":`...)
	b = appendString(b, r.c.Tool)
	if r.kind == "result" {
		b = append(b, `,"outcome":`...)
		b = appendString(b, r.outcome)
		return appendCost(b, `,"actual":[{"unit":`, r.actual)
	}
	b = append(b, `,"policy":`...)
	b = appendString(b, floorPolicyVersion)
	b = append(b, `,"decision":`...)
	b = appendString(b, r.decision)
	if r.rule != "" {
		b = append(b, `,"rule":`...)
		b = appendString(b, r.rule)
	}
	return appendCost(b, `,"estimate":[{"unit":`, estimate.Micros)
}

// appendCost appends key (up to the unit's value) and a one-cost array of
// micros of the benchmark's unit.
func appendCost(b []byte, key string, micros int64) []byte {
	b = append(b, key...)
	b = appendString(b, estimate.Unit)
	b = append(b, `,"micros":`...)
	b = strconv.AppendInt(b, micros, 10)
	return append(b, `}]`...)
}

// floorLine is a line being appended: its buffer and the SHA-256 state of
// its prefix.
type floorLine struct {
	b  []byte
	h  hash.Hash
	st interface {
		encoding.BinaryAppender
		encoding.BinaryUnmarshaler
	}
	sum [sha256.Size]byte
}

// hexPairs holds the two lowercase hex digits of each byte: prev's
// digits go two at a time, as in the guard's log.
var hexPairs = func() (t [256][2]byte) {
	for i := range t {
		t[i] = [2]byte{"0123456789abcdef"[i>>4], "0123456789abcdef"[i&0xf]}
	}
	return t
}()

var floorLines = sync.Pool{New: func() any {
	h := sha256.New()
	return &floorLine{b: make([]byte, 0, 1024), h: h, st: h.(interface {
		encoding.BinaryAppender
		encoding.BinaryUnmarshaler
	})}
}}

func openFloorLog(path string) (*floorLog, error) {
	f, err := openMapFile(path)
	if err != nil {
		return nil, err
	}
	return &floorLog{f: f, id: "0193b6c8-7c4e-7000-8000-000000000000"}, nil
}

func (l *floorLog) close() error { return l.f.close() }

// record is what the floor writes about a call: its decision (with the
// arguments) or its result.
type floorRecord struct {
	kind     string
	call     string
	c        *benchCall
	decision string
	rule     string
	outcome  string
	actual   int64
	duration time.Duration
}

// floorPolicyVersion stands for the policy's version in the floor's
// records: as long as the guard's.
const floorPolicyVersion = "a607da2b172e562cee10ad73d6e2f2794b7c2f10cea91da0853f038bc5b08c52"

func (l *floorLog) append(r *floorRecord, now time.Time) error {
	fl := floorLines.Get().(*floorLine)
	defer floorLines.Put(fl)
	// The head (version 3 of audit/FORMAT.md): what the records of a
	// tool's calls by one principal share, encoded and hashed once per
	// kind while what it is made of stays the same.
	c := r.c
	key := floorKey{tool: c.Tool, agent: c.Agent, requester: c.Requester, tenant: c.Tenant, session: c.Session,
		env: c.Env, decision: r.decision, rule: r.rule, outcome: r.outcome, actual: r.actual}
	kind := 0
	if r.kind == "result" {
		kind = 1
		key.decision, key.rule = "", ""
	} else {
		key.outcome = ""
	}
	var b []byte
	if k := l.heads[kind].kept.Load(); k != nil && k.key == key && fl.st.UnmarshalBinary(k.state) == nil {
		b = append(fl.b[:0], k.head...)
	} else {
		b = l.appendHead(fl.b[:0], r)
		fl.h.Reset()
		fl.h.Write(b)
		if state, err := fl.st.AppendBinary(nil); err == nil {
			l.heads[kind].kept.Store(&floorState{key: key, head: bytes.Clone(b), state: state})
		}
	}
	head := len(b)
	b = append(b, `,"time":"`...)
	b = now.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00")
	b = append(b, `","call":`...)
	b = appendString(b, r.call)
	if r.kind == "result" {
		// The guard's result record: only what the decision record does
		// not already say.
		b = append(b, `,"duration_ns":`...)
		b = strconv.AppendInt(b, int64(r.duration), 10)
	} else {
		b = append(b, `,"args":{`...)
		for i, k := range r.c.argOrder {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			switch v := r.c.Args[k].(type) {
			case string:
				b = appendString(b, v)
			case float64:
				b = strconv.AppendFloat(b, v, 'g', -1, 64)
			}
		}
		b = append(b, '}')
	}
	b = append(b, `,"seq":`...)
	fl.h.Write(b[head:])
	n := len(b)
	l.mu.Lock()
	defer l.mu.Unlock()
	b = strconv.AppendUint(b, l.seq, 10)
	b = append(b, `,"prev":"`...)
	var digits [64]byte
	for i, v := range l.prev {
		*(*[2]byte)(digits[2*i:]) = hexPairs[v]
	}
	b = append(b, digits[:]...)
	b = append(b, `"}`...)
	fl.h.Write(b[n:])
	l.prev = [32]byte(fl.h.Sum(fl.sum[:0]))
	b = append(b, '\n')
	fl.b = b
	if err := l.f.write(b); err != nil {
		return err
	}
	l.seq++
	return nil
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
