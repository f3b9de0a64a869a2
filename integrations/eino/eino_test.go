package guardeino_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cloudwego/eino/components/model"
	"github.com/cloudwego/eino/components/tool"
	"github.com/cloudwego/eino/components/tool/utils"
	"github.com/cloudwego/eino/compose"
	"github.com/cloudwego/eino/flow/agent/react"
	"github.com/cloudwego/eino/schema"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardeino "github.com/hardstop-labs/agentguard/integrations/eino"
)

// fakeModel calls the tools it is told to on the first turn and ends on
// the next, keeping the tool messages it received: what the model saw.
type fakeModel struct {
	calls []string
	mu    sync.Mutex
	seen  map[string]string // tool call ID → content
}

func (m *fakeModel) Generate(_ context.Context, in []*schema.Message, _ ...model.Option) (*schema.Message, error) {
	n := 0
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range in {
		if msg.Role == schema.Tool {
			m.seen[msg.ToolCallID] = msg.Content
			n++
		}
	}
	if n > 0 {
		return schema.AssistantMessage("done", nil), nil
	}
	var calls []schema.ToolCall
	for i, name := range m.calls {
		calls = append(calls, schema.ToolCall{ID: fmt.Sprintf("call_%d", i), Type: "function",
			Function: schema.FunctionCall{Name: name, Arguments: `{"city":"Paris"}`}})
	}
	return schema.AssistantMessage("", calls), nil
}

func (m *fakeModel) Stream(ctx context.Context, in []*schema.Message, opts ...model.Option) (*schema.StreamReader[*schema.Message], error) {
	msg, err := m.Generate(ctx, in, opts...)
	if err != nil {
		return nil, err
	}
	return schema.StreamReaderFromArray([]*schema.Message{msg}), nil
}

func (m *fakeModel) WithTools([]*schema.ToolInfo) (model.ToolCallingChatModel, error) { return m, nil }

type cityArgs struct {
	City string `json:"city"`
}

func run(t *testing.T, m *fakeModel, g *agentguard.Guard, tools ...tool.BaseTool) {
	t.Helper()
	ctx := context.Background()
	a, err := react.NewAgent(ctx, &react.AgentConfig{
		ToolCallingModel: m,
		ToolsConfig: compose.ToolsNodeConfig{
			Tools:               tools,
			ToolCallMiddlewares: []compose.ToolMiddleware{guardeino.Middleware(g)}, // the guard: one line
		},
		MaxStep: 6,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Generate(ctx, []*schema.Message{schema.UserMessage("go")}); err != nil {
		t.Fatal(err)
	}
}

func newTool(t *testing.T, name string, fn func(context.Context, cityArgs) (string, error)) tool.BaseTool {
	t.Helper()
	tl, err := utils.InferTool(name, name, fn)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func TestMiddleware(t *testing.T) {
	s := adaptertest.New(t)
	var mu sync.Mutex
	ran := map[string]int{}
	body := func(name string) func(context.Context, cityArgs) (string, error) {
		return func(ctx context.Context, in cityArgs) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			ran[name]++
			if err := agentguard.Charge(ctx, agentguard.Cost{Unit: "USD", Micros: 2}); err != nil {
				return "", err
			}
			return name + " done for " + in.City, nil
		}
	}
	var tools []tool.BaseTool
	for _, name := range []string{adaptertest.Allowed, adaptertest.Denied, adaptertest.Approved} {
		tools = append(tools, newTool(t, name, body(name)))
	}
	m := &fakeModel{calls: []string{adaptertest.Allowed, adaptertest.Denied, adaptertest.Approved}, seen: map[string]string{}}
	run(t, m, s.Guard, tools...)

	if got := m.seen["call_0"]; got != "read_weather done for Paris" {
		t.Errorf("allowed call: the model saw %q", got)
	}
	if got := m.seen["call_1"]; !strings.Contains(got, "(policy_denied)") || !strings.Contains(got, adaptertest.DenyRule) {
		t.Errorf("denied call: the model saw %q, want the denial", got)
	}
	if got := m.seen["call_2"]; got != "refund done for Paris" || s.Approvals() != 1 {
		t.Errorf("approved call: the model saw %q after %d approvals", got, s.Approvals())
	}
	if ran[adaptertest.Denied] != 0 || ran[adaptertest.Allowed] != 1 || ran[adaptertest.Approved] != 1 {
		t.Errorf("tools ran %v", ran)
	}
	var charged []string
	for _, e := range s.Events() {
		if e.Kind == agentguard.EventResult {
			charged = append(charged, fmt.Sprint(e.Actual))
		}
	}
	if got, want := fmt.Sprint(charged), "[[{USD 2}] [{USD 2}]]"; got != want {
		t.Errorf("recorded costs %s, want %s (what the tools charged)", got, want)
	}
}

func TestKillInFlight(t *testing.T) {
	s := adaptertest.New(t)
	slow := newTool(t, adaptertest.Slow, func(context.Context, cityArgs) (string, error) { s.Block(); return "late", nil })
	m := &fakeModel{calls: []string{adaptertest.Slow}, seen: map[string]string{}}
	go s.TripWhenStarted()
	run(t, m, s.Guard, slow) // returns although the tool never does
	if got := m.seen["call_0"]; !strings.Contains(got, "(halted)") || !strings.Contains(got, adaptertest.KillWhy) {
		t.Errorf("the model saw %q, want the halt", got)
	}
	if got, want := fmt.Sprint(s.Outcomes()), "[read_slow:halted]"; got != want {
		t.Errorf("recorded %s, want %s", got, want)
	}
}

// streamTool is a streaming tool: its output arrives in pieces.
type streamTool struct{ name string }

func (s streamTool) Info(context.Context) (*schema.ToolInfo, error) {
	return &schema.ToolInfo{Name: s.name, Desc: s.name}, nil
}

func (s streamTool) StreamableRun(context.Context, string, ...tool.Option) (*schema.StreamReader[string], error) {
	return schema.StreamReaderFromArray([]string{"chunk1 ", "chunk2"}), nil
}

func TestStreamingTools(t *testing.T) {
	s := adaptertest.New(t)
	m := &fakeModel{calls: []string{adaptertest.Allowed, adaptertest.Denied}, seen: map[string]string{}}
	run(t, m, s.Guard, streamTool{adaptertest.Allowed}, streamTool{adaptertest.Denied})
	if got := m.seen["call_0"]; got != "chunk1 chunk2" {
		t.Errorf("allowed streaming call: the model saw %q", got)
	}
	if got := m.seen["call_1"]; !strings.Contains(got, "(policy_denied)") {
		t.Errorf("denied streaming call: the model saw %q", got)
	}
	if got := s.Outcomes(); len(got) != 2 {
		t.Errorf("recorded %v", got)
	}
}
