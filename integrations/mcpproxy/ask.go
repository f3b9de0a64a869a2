package mcpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hardstop-labs/agentguard/approval"
)

// answered hands the client's answer to one of the proxy's own questions
// to whoever asked, reporting whether it was one.
func (p *Proxy) answered(msg *message) bool {
	key := string(msg.id)
	p.mu.Lock()
	ch, ok := p.asks[key]
	delete(p.asks, key)
	p.mu.Unlock()
	if ok {
		ch <- msg
		return true
	}
	// A late answer to a question nobody waits for any more is the
	// proxy's too: it never goes to the server.
	return strings.HasPrefix(key, `"agentguard-`+p.nonce+`-q`)
}

// ask sends the client a request of the proxy's own and waits for its
// answer's result.
func (p *Proxy) ask(ctx context.Context, method string, params any) (json.RawMessage, error) {
	id, _ := json.Marshal("agentguard-" + p.nonce + "-q" + strconv.FormatInt(p.ownID.Add(1), 10))
	b, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
		Params  any             `json:"params"`
	}{"2.0", id, method, params})
	if err != nil {
		return nil, err
	}
	ch := make(chan *message, 1)
	p.mu.Lock()
	p.asks[string(id)] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.asks, string(id))
		p.mu.Unlock()
	}()
	p.toClient(b)
	select {
	case ans := <-ch:
		if e, ok := ans.m["error"]; ok {
			return nil, fmt.Errorf("%s: %s", method, bounded(e))
		}
		return ans.m["result"], nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// proxyKey marks the context of a call that came through a Proxy.
type proxyKey struct{}

// ClientApprover returns an approver that asks the user of a proxy's
// client whether a call the policy sent for approval may run, with an
// elicitation request (install it with agentguard.WithApprover on the
// Guard given to New). The answer counts as a human's approval: use it
// only with a client that asks its user and shows the question as it was
// put. Calls that did not come through a Proxy, and calls from a client
// that declared no elicitation, are decided by fallback (nil rejects
// them).
func ClientApprover(fallback approval.Approver) approval.Approver {
	return approval.Func(func(ctx context.Context, r *approval.Request) (approval.Verdict, error) {
		p, _ := ctx.Value(proxyKey{}).(*Proxy)
		if p == nil {
			if fallback != nil {
				return fallback.Approve(ctx, r)
			}
			return r.Reject("agentguard", "the call did not come through an MCP proxy"), nil
		}
		p.mu.Lock()
		elicits := p.elicits
		by := "mcp-client"
		if p.clientName != "" {
			by += ":" + p.clientName
		}
		p.mu.Unlock()
		if !elicits {
			if fallback != nil {
				return fallback.Approve(ctx, r)
			}
			return r.Reject("agentguard", "the MCP client cannot be asked"), nil
		}
		msg, schema := ApprovalQuestion(r)
		res, err := p.ask(ctx, "elicitation/create", map[string]any{"mode": "form", "message": msg, "requestedSchema": schema})
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return approval.Verdict{}, err
			}
			return r.Reject(by, "the client could not ask: "+err.Error()), nil
		}
		var ans struct {
			Action  string         `json:"action"`
			Content map[string]any `json:"content"`
		}
		if json.Unmarshal(res, &ans) == nil && ApprovalAnswer(ans.Action, ans.Content) {
			return r.Approve(by, "approved through elicitation"), nil
		}
		return r.Reject(by, "refused through elicitation"), nil
	})
}
