package agentguard

import (
	"reflect"
	"testing"

	"github.com/hardstop-labs/agentguard/audit"
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
		rec := b.fill(&Event{Kind: EventResult, Estimate: est, Actual: act, Outcome: OutcomeOK})
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
	if rec := b.fill(&Event{Kind: EventDecision}); rec.Estimate != nil || rec.Actual != nil || rec.Outcome != "" {
		t.Errorf("a reused record carries %+v", rec)
	}
}
