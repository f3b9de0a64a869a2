// Command budget runs an agent loop around a model until its daily budget
// stops it. The model is a scripted fake that needs no network; every
// completion is charged by the tokens it used, at a fixed price. The
// guard reserves a worst-case estimate before each call, commits the real
// cost after it, and refuses the call that would go past the cap. The
// program prints each turn's cost, the spend, the cap, and the denial the
// model received instead of a completion.
//
// Run it with:
//
//	go run ./examples/budget
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/policy"
)

// The policy: the agent may call the model, within 0.25 USD a day.
const policyYAML = `
version: 1
default: deny
rules:
  - name: model
    match: call.tool == "llm.complete"
    effect: allow
budgets:
  - name: daily-llm-spend
    per: agent
    tools: ["llm.*"]
    limit: "0.25 USD"
    window: day
`

// Prices per token, in micro-dollars: 10 USD per million input tokens, 30
// USD per million output tokens.
const (
	inputPrice  = 10
	outputPrice = 30
)

// Prompt is a request to the model.
type Prompt struct {
	Messages  []string `json:"messages"`
	MaxTokens int      `json:"max_tokens"`
}

// Completion is the model's answer and the tokens it used.
type Completion struct {
	Text         string
	InputTokens  int
	OutputTokens int
}

// fakeModel is a scripted model: each turn it reads the whole conversation
// (300 tokens more each turn) and writes 250 tokens.
type fakeModel struct{}

func (fakeModel) Complete(_ context.Context, p Prompt) (Completion, error) {
	return Completion{
		Text:         fmt.Sprintf("finding %d: more to read, asking for the next source", len(p.Messages)),
		InputTokens:  tokensIn(p),
		OutputTokens: 250,
	}, nil
}

// tokensIn is the prompt's size in tokens, as the model would count it.
func tokensIn(p Prompt) int { return 400 + 300*len(p.Messages) }

func usd(micros int64) budget.Amount { return budget.Amount{Micros: micros, Unit: "USD"} }

// estimate is the worst case of a completion: its whole prompt and
// MaxTokens of output. Integer arguments are exact int64s in call.args; an
// estimate that cannot read them fails, which denies the call.
func estimate(c *agentguard.Call) ([]agentguard.Cost, error) {
	msgs, _ := c.Args["messages"].([]any)
	max, ok := c.Args["max_tokens"].(int64)
	if !ok {
		return nil, fmt.Errorf("max_tokens is %T, not an integer", c.Args["max_tokens"])
	}
	in := int64(tokensIn(Prompt{Messages: make([]string, len(msgs))}))
	return []agentguard.Cost{{Unit: "USD", Micros: in*inputPrice + int64(max)*outputPrice}}, nil
}

// cost is what a completion really cost.
func cost(c Completion) []agentguard.Cost {
	return []agentguard.Cost{{Unit: "USD", Micros: int64(c.InputTokens)*inputPrice + int64(c.OutputTokens)*outputPrice}}
}

func run(w io.Writer) error {
	pol, err := policy.Parse("policy.yaml", []byte(policyYAML))
	if err != nil {
		return err
	}
	now := time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC) // a fixed clock: the output never changes
	g, err := agentguard.New(
		agentguard.WithPolicy(pol),
		agentguard.WithClock(func() time.Time { return now }),
	)
	if err != nil {
		return err
	}
	defer g.Close()

	model := fakeModel{}
	complete := agentguard.Wrap(g, "llm.complete", model.Complete,
		agentguard.EstimateFunc(estimate),
		agentguard.ResultCost(cost))

	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "researcher", Tenant: "acme"})
	var spent int64
	messages := []string{"Research the history of token buckets."}
	for turn := 1; ; turn++ {
		c, err := complete(ctx, Prompt{Messages: messages, MaxTokens: 500})
		var denied *agentguard.DeniedError
		if errors.As(err, &denied) {
			fmt.Fprintf(w, "turn %d: refused by the guard; the model received:\n  %s\n", turn, denied.Error())
			break
		}
		if err != nil {
			return err
		}
		turnCost := cost(c)[0].Micros
		spent += turnCost
		fmt.Fprintf(w, "turn %d: %d tokens in, %d out: %s (spent %s)\n", turn, c.InputTokens, c.OutputTokens, usd(turnCost), usd(spent))
		messages = append(messages, c.Text)
	}
	limit := pol.Spec().Budgets[0].Limit
	fmt.Fprintf(w, "spent today: %s of the %s daily cap\n", usd(spent), limit)
	return nil
}

func main() {
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}
