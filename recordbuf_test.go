package agentguard

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/policy"
)

func costs(n int, unit string) ([]Cost, []audit.Cost) {
	var cs []Cost
	var as []audit.Cost
	for i := range n {
		cs = append(cs, Cost{Unit: unit, Micros: int64(i + 1)})
		as = append(as, audit.Cost{Unit: unit, Micros: int64(i + 1)})
	}
	return cs, as
}

// TestRecordBufCosts checks that a pooled record carries the event's
// costs whether they fit its room or not, and nothing of a former use.
func TestRecordBufCosts(t *testing.T) {
	for _, n := range [][2]int{{0, 0}, {1, 0}, {1, 1}, {2, 2}, {3, 2}, {4, 1}, {5, 0}, {0, 5}, {6, 7}} {
		est, wantEst := costs(n[0], "USD")
		act, wantAct := costs(n[1], "tokens")
		b := recordBufs.Get().(*recordBuf)
		rec := b.fill(&Event{Kind: EventResult, Estimate: est, Actual: act, Outcome: OutcomeOK}, false)
		if !reflect.DeepEqual(rec.Estimate, wantEst) || !reflect.DeepEqual(rec.Actual, wantAct) {
			t.Errorf("fill(%d estimates, %d actuals): Estimate %v, Actual %v; want %v, %v", n[0], n[1], rec.Estimate, rec.Actual, wantEst, wantAct)
		}
		if rec.Kind != audit.KindResult || rec.Outcome != "ok" {
			t.Errorf("fill: kind %q outcome %q, want result ok", rec.Kind, rec.Outcome)
		}
		b.release()
	}
	b := recordBufs.Get().(*recordBuf)
	defer b.release()
	if rec := b.fill(&Event{Kind: EventDecision}, false); rec.Estimate != nil || rec.Actual != nil || rec.Outcome != "" {
		t.Errorf("a reused record carries %+v", rec)
	}
}

// staleReader is an audit.ArgReader that poison leaves in a record.
type staleReader struct{}

func (staleReader) Len() int               { return 1 }
func (staleReader) Arg(string) (any, bool) { return "stale", true }
func (staleReader) Args() map[string]any   { return map[string]any{"stale": "stale"} }

// poison sets every field of the struct v points to (recursively, for
// nested structs) to a value that is not zero.
func poison(v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString("stale")
		case reflect.Int, reflect.Int64, reflect.Uint64:
			if f.CanInt() {
				f.SetInt(7)
			} else {
				f.SetUint(7)
			}
		case reflect.Struct:
			if f.Type() == reflect.TypeFor[time.Time]() {
				f.Set(reflect.ValueOf(time.Unix(1, 2)))
				continue
			}
			poison(f)
		case reflect.Array:
			f.Index(0).Set(reflect.ValueOf(uint8(1)).Convert(f.Type().Elem()))
		case reflect.Map:
			f.Set(reflect.MakeMap(f.Type()))
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), 1, 1))
		case reflect.Pointer:
			f.Set(reflect.New(f.Type().Elem()))
		case reflect.Interface:
			f.Set(reflect.ValueOf(staleReader{}))
		default:
			panic("poison: field " + v.Type().Field(i).Name + " of kind " + f.Kind().String())
		}
	}
}

// TestRecordBufReuse checks that fill sets every field of the record,
// whatever a former use (or the log) left in it: a pooled record whose
// every field is stale gives the same record as a new one. A field added
// to audit.Record that fill does not set fails it.
func TestRecordBufReuse(t *testing.T) {
	call := &Call{ID: "c", Tool: "t", Env: "prod", Principal: Principal{Agent: "a"},
		Args: map[string]any{"x": 1}, Labels: map[string]string{"l": "v"}}
	est, _ := costs(2, "USD")
	events := []Event{
		{Kind: EventDecision},
		{Kind: EventDecision, Call: call, Decision: policy.Allow, Rule: "r", Reason: "why", PolicyVersion: "v", Estimate: est,
			Shadow: []policy.ShadowHit{{Rule: "s", Effect: policy.Deny}}},
		{Kind: EventResult, Call: call, Outcome: OutcomeError, Err: errors.New("boom"), Duration: 5, Actual: est},
		{Kind: EventDecision, Call: call, Decision: policy.Deny, Code: CodeRateLimited, Stage: StageRate, Reason: "slow", RetryAfter: time.Second},
		{Kind: EventHalt, Control: &Control{Scope: "all", Who: "ops", Why: "stop"}},
		{Kind: EventApproval, Call: call, Decision: policy.Approve, Approver: "bob", Grant: "g", Note: "ok"},
	}
	for i := range events {
		fresh := new(recordBuf).fill(&events[i], false)
		stale := new(recordBuf)
		poison(reflect.ValueOf(&stale.rec).Elem())
		for j := range stale.costs {
			stale.costs[j] = audit.Cost{Unit: "stale", Micros: 9}
		}
		got := stale.fill(&events[i], false)
		if !reflect.DeepEqual(got, fresh) {
			t.Errorf("event %d: a reused record is\n%+v\nwant\n%+v", i, *got, *fresh)
		}
	}
}
