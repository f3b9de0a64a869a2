package guardlangchaingo_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/tmc/langchaingo/agents"
	"github.com/tmc/langchaingo/chains"
	"github.com/tmc/langchaingo/llms"
	"github.com/tmc/langchaingo/tools"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardlangchaingo "github.com/hardstop-labs/agentguard/integrations/langchaingo"
)

// fakeModel answers in the MRKL format: one action per turn from its
// script, then a final answer. It keeps the last prompt, whose scratchpad
// holds every observation: what the model saw.
type fakeModel struct {
	script []string // "tool|input"
	mu     sync.Mutex
	turn   int
	last   string
}

func (m *fakeModel) GenerateContent(_ context.Context, msgs []llms.MessageContent, _ ...llms.CallOption) (*llms.ContentResponse, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, msg := range msgs {
		for _, p := range msg.Parts {
			if t, ok := p.(llms.TextContent); ok {
				b.WriteString(t.Text)
			}
		}
	}
	m.last = b.String()
	out := "Thought: I am done.\nFinal Answer: done"
	if m.turn < len(m.script) {
		tool, input, _ := strings.Cut(m.script[m.turn], "|")
		out = fmt.Sprintf("Thought: I need %s.\nAction: %s\nAction Input: %s", tool, tool, input)
	}
	m.turn++
	return &llms.ContentResponse{Choices: []*llms.ContentChoice{{Content: out}}}, nil
}

func (m *fakeModel) Call(ctx context.Context, prompt string, opts ...llms.CallOption) (string, error) {
	return llms.GenerateFromSinglePrompt(ctx, m, prompt, opts...)
}

// textTool is a langchaingo tool.
type textTool struct {
	name string
	call func(string) string
}

func (t textTool) Name() string        { return t.name }
func (t textTool) Description() string { return t.name }
func (t textTool) Call(_ context.Context, in string) (string, error) {
	return t.call(in), nil
}

func run(t *testing.T, m *fakeModel, ts []tools.Tool) {
	t.Helper()
	ex := agents.NewExecutor(agents.NewOneShotAgent(m, ts), agents.WithMaxIterations(6))
	if _, err := chains.Run(context.Background(), ex, "go"); err != nil {
		t.Fatal(err)
	}
}

func TestTools(t *testing.T) {
	s := adaptertest.New(t)
	var mu sync.Mutex
	ran := map[string]int{}
	tool := func(name string) tools.Tool {
		return textTool{name, func(in string) string {
			mu.Lock()
			defer mu.Unlock()
			ran[name]++
			return name + " done for " + in
		}}
	}
	ts := []tools.Tool{tool(adaptertest.Allowed), tool(adaptertest.Denied), tool(adaptertest.Approved)}
	m := &fakeModel{script: []string{adaptertest.Allowed + "|Paris", adaptertest.Denied + "|bob", adaptertest.Approved + `|{"order": "A-1", "amount": 30}`}}
	run(t, m, guardlangchaingo.Tools(s.Guard, ts)) // the guard: one line

	if !strings.Contains(m.last, "read_weather done for Paris") {
		t.Errorf("allowed call: the model did not see its result in\n%s", m.last)
	}
	if !strings.Contains(m.last, `call to tool "delete_account"`) || !strings.Contains(m.last, "(policy_denied)") || !strings.Contains(m.last, adaptertest.DenyRule) {
		t.Errorf("denied call: the model did not see the denial in\n%s", m.last)
	}
	if !strings.Contains(m.last, `refund done for {"order": "A-1", "amount": 30}`) || s.Approvals() != 1 {
		t.Errorf("approved call: after %d approvals the model saw\n%s", s.Approvals(), m.last)
	}
	if ran[adaptertest.Denied] != 0 || ran[adaptertest.Allowed] != 1 || ran[adaptertest.Approved] != 1 {
		t.Errorf("tools ran %v", ran)
	}
	// The policy saw the text input as call.args.value and the JSON input's fields.
	var args []string
	for _, e := range s.Events() {
		if e.Kind == "decision" {
			args = append(args, fmt.Sprint(e.Call.Args))
		}
	}
	if got, want := fmt.Sprint(args), "[map[value:Paris] map[value:bob] map[amount:30 order:A-1]]"; got != want {
		t.Errorf("the policy saw %s, want %s", got, want)
	}
}

func TestKillInFlight(t *testing.T) {
	s := adaptertest.New(t)
	slow := textTool{adaptertest.Slow, func(string) string { s.Block(); return "late" }}
	m := &fakeModel{script: []string{adaptertest.Slow + "|x"}}
	go s.TripWhenStarted()
	run(t, m, guardlangchaingo.Tools(s.Guard, []tools.Tool{slow})) // returns although the tool never does
	if !strings.Contains(m.last, "(halted)") || !strings.Contains(m.last, adaptertest.KillWhy) {
		t.Errorf("the model did not see the halt in\n%s", m.last)
	}
	if got, want := fmt.Sprint(s.Outcomes()), "[read_slow:halted]"; got != want {
		t.Errorf("recorded %s, want %s", got, want)
	}
}
