package audit

import (
	"context"
	"fmt"
	"os"

	"github.com/hardstop-labs/agentguard/policy"
)

// Change is a recorded decision that a new policy would decide otherwise.
type Change struct {
	Seq     uint64
	Call    string
	Tool    string
	Old     policy.Effect // what the recorded policy decided
	OldRule string
	New     policy.Decision
}

// ReplayReport is the outcome of Replay.
type ReplayReport struct {
	Decisions int // decision records re-decided
	Skipped   int // decision records stopped before or outside the policy (kill switch, invalid call)
	Changes   []Change
}

// Replay re-decides every decision record of the log made of the files
// at paths (in chain order) under p, and reports the ones whose policy
// effect would change. A record is re-decided from its tool, arguments
// (redacted values stay redacted, so a rule that reads a secret sees the
// mark), principal, environment, labels and time.
//
// The recorded policy effect is read from the record: a policy denial
// (code policy_denied) was deny; an approval code, or an allowed call
// with an approver or grant, was approve; any other allowed call, and a
// call denied by the audit stage, was allow; a call denied by the rate or
// budget stage (before approvals) was allow or approve, and counts as
// changed only when the new policy denies it. Records denied before the
// policy ran (kill switch, invalid call) are skipped. Replay does not
// verify the log; run Verify first.
func Replay(ctx context.Context, p *policy.Policy, paths ...string) (*ReplayReport, error) {
	rep := &ReplayReport{}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("audit: replay: %w", err)
		}
		lineNo := 0
		err = readLines(f, func(line []byte, off int64, complete bool) error {
			lineNo++
			if !complete {
				return &VerifyError{File: path, Line: lineNo, Offset: off, Err: ErrTorn}
			}
			r, err := ParseRecord(line)
			if err != nil {
				return &VerifyError{File: path, Line: lineNo, Offset: off, Err: err}
			}
			if r.Kind != KindDecision {
				return nil
			}
			old, ok := recordedEffect(r)
			if !ok {
				rep.Skipped++
				return nil
			}
			rep.Decisions++
			d := p.Decide(ctx, &policy.Input{Now: r.Time, Call: policy.Call{
				ID: r.Call, Tool: r.Tool, Args: r.Args, Agent: r.Principal.Agent,
				Requester: r.Principal.Requester, Tenant: r.Principal.Tenant,
				Session: r.Principal.Session, Env: r.Env, Labels: r.Labels, Time: r.Time,
			}})
			if changed(r, old, d.Effect) {
				rep.Changes = append(rep.Changes, Change{Seq: r.Seq, Call: r.Call, Tool: r.Tool,
					Old: old, OldRule: r.Rule, New: d})
			}
			return nil
		})
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// recordedEffect returns the policy effect of a decision record, and
// false when the policy did not decide it.
func recordedEffect(r *Record) (policy.Effect, bool) {
	switch r.Code {
	case "policy_denied":
		return policy.Deny, true
	case "approval_required", "approval_rejected", "approval_timeout", "approval_invalid":
		return policy.Approve, true
	case "unavailable", "cancelled":
		// A control failed, or the caller gave up, after the policy
		// decided only when it happened at a later stage.
		switch r.Stage {
		case "approval":
			return policy.Approve, true
		case "rate", "budget", "audit":
		default:
			return policy.Deny, false
		}
	case "", "rate_limited", "budget_exceeded", "audit_unavailable":
	default:
		return policy.Deny, false
	}
	if r.Approver != "" || r.Grant != "" {
		return policy.Approve, true
	}
	return policy.Allow, true
}

func changed(r *Record, old, now policy.Effect) bool {
	if (r.Code == "rate_limited" || r.Code == "budget_exceeded") && old == policy.Allow {
		// Stopped before the approval stage: the policy allowed the call
		// or asked for approval; only a denial is a change.
		return now == policy.Deny
	}
	return old != now
}
