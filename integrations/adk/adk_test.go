package guardadk_test

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"sync"
	"testing"

	"google.golang.org/adk/agent"
	"google.golang.org/adk/agent/llmagent"
	"google.golang.org/adk/model"
	"google.golang.org/adk/plugin"
	"google.golang.org/adk/runner"
	"google.golang.org/adk/session"
	"google.golang.org/adk/tool"
	"google.golang.org/adk/tool/functiontool"
	"google.golang.org/genai"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardadk "github.com/hardstop-labs/agentguard/integrations/adk"
)

// fakeModel calls the tools it is told to on the first turn and ends on
// the next, keeping the function responses it received: exactly what the
// model saw.
type fakeModel struct {
	calls []string
	mu    sync.Mutex
	seen  map[string]map[string]any // function call ID → response
}

func (m *fakeModel) Name() string { return "fake" }

func (m *fakeModel) GenerateContent(_ context.Context, req *model.LLMRequest, _ bool) iter.Seq2[*model.LLMResponse, error] {
	return func(yield func(*model.LLMResponse, error) bool) {
		n := 0
		m.mu.Lock()
		for _, c := range req.Contents {
			for _, p := range c.Parts {
				if p.FunctionResponse != nil {
					m.seen[p.FunctionResponse.ID] = p.FunctionResponse.Response
					n++
				}
			}
		}
		m.mu.Unlock()
		content := genai.NewContentFromText("done", genai.RoleModel)
		if n == 0 {
			content = &genai.Content{Role: genai.RoleModel}
			for i, name := range m.calls {
				content.Parts = append(content.Parts, &genai.Part{FunctionCall: &genai.FunctionCall{
					ID: fmt.Sprintf("fc_%d", i), Name: name, Args: map[string]any{"city": "Paris"}}})
			}
		}
		yield(&model.LLMResponse{Content: content}, nil)
	}
}

type cityArgs struct {
	City string `json:"city"`
}

type reply struct {
	Text string `json:"text"`
}

func run(t *testing.T, m *fakeModel, tools []tool.Tool, plugins ...*plugin.Plugin) {
	t.Helper()
	a, err := llmagent.New(llmagent.Config{Name: "helper", Model: m, Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	r, err := runner.New(runner.Config{AppName: "test", Agent: a, SessionService: session.InMemoryService(),
		AutoCreateSession: true, PluginConfig: runner.PluginConfig{Plugins: plugins}})
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range r.Run(context.Background(), "user", "s1", genai.NewContentFromText("go", genai.RoleUser), agent.RunConfig{}) {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func newTool(t *testing.T, name string, fn functiontool.Func[cityArgs, reply]) tool.Tool {
	t.Helper()
	tl, err := functiontool.New(functiontool.Config{Name: name, Description: name}, fn)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func TestPlugin(t *testing.T) {
	s := adaptertest.New(t)
	var mu sync.Mutex
	ran := map[string]int{}
	var inTool []string
	body := func(name string) functiontool.Func[cityArgs, reply] {
		return func(tc tool.Context, in cityArgs) (reply, error) {
			mu.Lock()
			defer mu.Unlock()
			ran[name]++
			// The guarded call reaches the tool through ADK's own context.
			call, ok := agentguard.CallFrom(tc)
			inTool = append(inTool, fmt.Sprint(ok && call.Tool == name, agentguard.Charge(tc, agentguard.Cost{Unit: "USD", Micros: 1}) == nil,
				agentguard.Context(tc) != context.Context(tc)))
			return reply{name + " done for " + in.City}, nil
		}
	}
	var tools []tool.Tool
	for _, name := range []string{adaptertest.Allowed, adaptertest.Denied, adaptertest.Approved} {
		tools = append(tools, newTool(t, name, body(name)))
	}
	p, err := guardadk.Plugin(s.Guard) // the guard: one line
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeModel{calls: []string{adaptertest.Allowed, adaptertest.Denied, adaptertest.Approved}, seen: map[string]map[string]any{}}
	run(t, m, tools, p)

	if got := m.seen["fc_0"]["text"]; got != "read_weather done for Paris" {
		t.Errorf("allowed call: the model saw %v", m.seen["fc_0"])
	}
	if got, _ := m.seen["fc_1"]["error"].(string); !strings.Contains(got, "(policy_denied)") || !strings.Contains(got, adaptertest.DenyRule) {
		t.Errorf("denied call: the model saw %v, want the denial", m.seen["fc_1"])
	}
	if got := m.seen["fc_2"]["text"]; got != "refund done for Paris" || s.Approvals() != 1 {
		t.Errorf("approved call: the model saw %v after %d approvals", m.seen["fc_2"], s.Approvals())
	}
	if ran[adaptertest.Denied] != 0 || ran[adaptertest.Allowed] != 1 || ran[adaptertest.Approved] != 1 {
		t.Errorf("tools ran %v", ran)
	}
	if got, want := fmt.Sprint(inTool), "[true true true true true true]"; got != want {
		t.Errorf("inside the tools, CallFrom/Charge/Context: %s, want %s", got, want)
	}
	var charged []string
	for _, e := range s.Events() {
		if e.Kind == agentguard.EventResult {
			charged = append(charged, fmt.Sprint(e.Actual))
		}
	}
	if got, want := fmt.Sprint(charged), "[[{USD 1}] [{USD 1}]]"; got != want {
		t.Errorf("recorded costs %s, want %s (what the tools charged)", got, want)
	}
}

func TestPluginKillInFlight(t *testing.T) {
	s := adaptertest.New(t)
	slow := newTool(t, adaptertest.Slow, func(tc tool.Context, _ cityArgs) (reply, error) {
		s.BlockUntil(agentguard.Context(tc)) // the guarded context: a trip cancels it
		return reply{"late"}, nil
	})
	p, err := guardadk.Plugin(s.Guard)
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeModel{calls: []string{adaptertest.Slow}, seen: map[string]map[string]any{}}
	go s.TripWhenStarted()
	run(t, m, []tool.Tool{slow}, p)
	if got, _ := m.seen["fc_0"]["error"].(string); !strings.Contains(got, "(halted)") || !strings.Contains(got, adaptertest.KillWhy) {
		t.Errorf("the model saw %v, want the halt", m.seen["fc_0"])
	}
	if got, want := fmt.Sprint(s.Outcomes()), "[read_slow:halted]"; got != want {
		t.Errorf("recorded %s, want %s", got, want)
	}
}

// A tool that ignores its context: Wrap takes ADK's tool.Context as it is
// and returns the halt at once; ADK shows the error to the model.
func TestWrapKillInFlight(t *testing.T) {
	s := adaptertest.New(t)
	slow := newTool(t, adaptertest.Slow, agentguard.Wrap(s.Guard, adaptertest.Slow, func(tool.Context, cityArgs) (reply, error) {
		s.Block()
		return reply{"late"}, nil
	}, agentguard.Preemptive()))
	m := &fakeModel{calls: []string{adaptertest.Slow}, seen: map[string]map[string]any{}}
	go s.TripWhenStarted()
	run(t, m, []tool.Tool{slow})
	if got, _ := m.seen["fc_0"]["error"].(string); !strings.Contains(got, "(halted)") {
		t.Errorf("the model saw %v, want the halt", m.seen["fc_0"])
	}
	if got := s.Outcomes(); len(got) != 1 || got[0] != "read_slow:halted" {
		t.Errorf("recorded %v", got)
	}
}
