package approval

import (
	"context"
	"errors"
	"fmt"
)

// Chain returns an Approver that asks every approver at once; the first
// verdict (approval or rejection) wins and the others are cancelled. An
// approver that fails is not an answer: Chain waits for the others and
// fails only when all of them fail, with all their errors. A Chain of no
// approvers fails every request. It is safe for concurrent use when its
// approvers are.
func Chain(approvers ...Approver) Approver {
	as := append([]Approver(nil), approvers...)
	return Func(func(ctx context.Context, r *Request) (Verdict, error) {
		if len(as) == 0 {
			return Verdict{}, errors.New("approval: empty chain")
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		ch := make(chan answer, len(as))
		for i, a := range as {
			go func() {
				defer func() {
					if x := recover(); x != nil {
						ch <- answer{err: fmt.Errorf("approval: chain approver %d panicked: %v", i, x)}
					}
				}()
				if a == nil {
					ch <- answer{err: fmt.Errorf("approval: chain approver %d is nil", i)}
					return
				}
				v, err := a.Approve(ctx, r)
				ch <- answer{v, err}
			}()
		}
		var errs []error
		for range as {
			select {
			case ans := <-ch:
				if ans.err == nil {
					return ans.v, nil
				}
				errs = append(errs, ans.err)
			case <-ctx.Done():
				return Verdict{}, context.Cause(ctx)
			}
		}
		return Verdict{}, fmt.Errorf("approval: every approver in the chain failed: %w", errors.Join(errs...))
	})
}
