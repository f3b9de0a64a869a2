package guardgenkit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/firebase/genkit/go/ai"
	"github.com/firebase/genkit/go/genkit"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardgenkit "github.com/hardstop-labs/agentguard/integrations/genkit"
)

// fakeModel requests the tools it is told to on the first turn and ends on
// the next, keeping the tool responses it received: what the model saw.
type fakeModel struct {
	calls []string
	mu    sync.Mutex
	seen  map[string]string // ref → the response's output, as JSON
}

func (m *fakeModel) generate(_ context.Context, req *ai.ModelRequest, _ ai.ModelStreamCallback) (*ai.ModelResponse, error) {
	n := 0
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range req.Messages {
		for _, p := range msg.Content {
			if p.ToolResponse != nil {
				b, _ := json.Marshal(p.ToolResponse.Output)
				m.seen[p.ToolResponse.Ref] = string(b)
				n++
			}
		}
	}
	msg := ai.NewModelTextMessage("done")
	if n == 0 {
		msg = &ai.Message{Role: ai.RoleModel}
		for i, name := range m.calls {
			msg.Content = append(msg.Content, ai.NewToolRequestPart(&ai.ToolRequest{Name: name, Ref: fmt.Sprintf("ref_%d", i), Input: map[string]any{"city": "Paris"}}))
		}
	}
	return &ai.ModelResponse{Message: msg, FinishReason: ai.FinishReasonStop}, nil
}

type cityArgs struct {
	City string `json:"city"`
}

type reply struct {
	Text string `json:"text"`
}

func run(t *testing.T, gk *genkit.Genkit, m *fakeModel, tools ...ai.ToolRef) {
	t.Helper()
	model := genkit.DefineModel(gk, "fake/model", &ai.ModelOptions{Supports: &ai.ModelSupports{Tools: true, Multiturn: true}}, m.generate)
	if _, err := genkit.Generate(context.Background(), gk, ai.WithModel(model), ai.WithPrompt("go"), ai.WithTools(tools...)); err != nil {
		t.Fatal(err)
	}
}

func TestDefineTool(t *testing.T) {
	s := adaptertest.New(t)
	gk := genkit.Init(context.Background())
	var mu sync.Mutex
	ran := map[string]int{}
	var inTool []string
	var tools []ai.ToolRef
	for _, name := range []string{adaptertest.Allowed, adaptertest.Denied, adaptertest.Approved} {
		tools = append(tools, guardgenkit.DefineTool(gk, s.Guard, name, name, func(tc *ai.ToolContext, in cityArgs) (reply, error) { // the guard: one line
			mu.Lock()
			defer mu.Unlock()
			ran[name]++
			call, ok := agentguard.CallFrom(tc)
			inTool = append(inTool, fmt.Sprint(ok && call.Tool == name, agentguard.Charge(tc, agentguard.Cost{Unit: "USD", Micros: 3}) == nil))
			return reply{name + " done for " + in.City}, nil
		}))
	}
	m := &fakeModel{calls: []string{adaptertest.Allowed, adaptertest.Denied, adaptertest.Approved}, seen: map[string]string{}}
	run(t, gk, m, tools...)

	if got := m.seen["ref_0"]; got != `{"text":"read_weather done for Paris"}` {
		t.Errorf("allowed call: the model saw %s", got)
	}
	if got := m.seen["ref_1"]; !strings.Contains(got, `"error"`) || !strings.Contains(got, "(policy_denied)") || !strings.Contains(got, adaptertest.DenyRule) {
		t.Errorf("denied call: the model saw %s, want the denial", got)
	}
	if got := m.seen["ref_2"]; got != `{"text":"refund done for Paris"}` || s.Approvals() != 1 {
		t.Errorf("approved call: the model saw %s after %d approvals", got, s.Approvals())
	}
	if ran[adaptertest.Denied] != 0 || ran[adaptertest.Allowed] != 1 || ran[adaptertest.Approved] != 1 {
		t.Errorf("tools ran %v", ran)
	}
	if got, want := fmt.Sprint(inTool), "[true true true true]"; got != want {
		t.Errorf("inside the tools, CallFrom/Charge: %s, want %s", got, want)
	}
}

func TestKillInFlight(t *testing.T) {
	s := adaptertest.New(t)
	gk := genkit.Init(context.Background())
	slow := guardgenkit.NewTool(s.Guard, adaptertest.Slow, "slow", func(tc *ai.ToolContext, _ cityArgs) (reply, error) {
		s.Block() // ignores its context
		return reply{"late"}, nil
	})
	m := &fakeModel{calls: []string{adaptertest.Slow}, seen: map[string]string{}}
	go s.TripWhenStarted()
	run(t, gk, m, slow) // returns although the tool never does
	if got := m.seen["ref_0"]; !strings.Contains(got, "(halted)") || !strings.Contains(got, adaptertest.KillWhy) {
		t.Errorf("the model saw %s, want the halt", got)
	}
	if got, want := fmt.Sprint(s.Outcomes()), "[read_slow:halted]"; got != want {
		t.Errorf("recorded %s, want %s", got, want)
	}
}

// A tool that honours its context ends when the switch trips: the guarded
// context reaches it through *ai.ToolContext.
func TestKillCancelsTheToolsContext(t *testing.T) {
	s := adaptertest.New(t)
	gk := genkit.Init(context.Background())
	ended := make(chan error, 1)
	slow := guardgenkit.NewTool(s.Guard, adaptertest.Slow, "slow", func(tc *ai.ToolContext, _ cityArgs) (reply, error) {
		s.BlockUntil(tc)
		ended <- context.Cause(tc)
		return reply{"late"}, nil
	})
	m := &fakeModel{calls: []string{adaptertest.Slow}, seen: map[string]string{}}
	go s.TripWhenStarted()
	run(t, gk, m, slow)
	if err := <-ended; err == nil || !strings.Contains(err.Error(), adaptertest.KillWhy) {
		t.Errorf("the tool's context ended with %v, want the trip", err)
	}
}
