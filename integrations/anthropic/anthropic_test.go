package guardanthropic_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/anthropics/anthropic-sdk-go/v2/toolrunner"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardanthropic "github.com/hardstop-labs/agentguard/integrations/anthropic"
)

// result is a tool_result block as the model receives it.
type result struct {
	IsError bool
	Text    string
}

// fakeModel is a Messages API endpoint on loopback: on the first turn it
// uses the tools it was told to, on the next it ends, keeping the
// tool_result blocks it received: exactly what the model saw.
type fakeModel struct {
	calls []string
	mu    sync.Mutex
	seen  map[string]result // tool_use_id → result
}

func (m *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct {
			Content []struct {
				Type      string `json:"type"`
				ToolUseID string `json:"tool_use_id"`
				IsError   bool   `json:"is_error"`
				Content   []struct {
					Text string `json:"text"`
				} `json:"content"`
			} `json:"content"`
		} `json:"messages"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n := 0
	m.mu.Lock()
	for _, msg := range req.Messages {
		for _, c := range msg.Content {
			if c.Type == "tool_result" {
				var text []string
				for _, t := range c.Content {
					text = append(text, t.Text)
				}
				m.seen[c.ToolUseID] = result{c.IsError, strings.Join(text, "")}
				n++
			}
		}
	}
	m.mu.Unlock()
	content := []any{map[string]any{"type": "text", "text": "done"}}
	stop := "end_turn"
	if n == 0 {
		content = nil
		for i, name := range m.calls {
			content = append(content, map[string]any{"type": "tool_use", "id": fmt.Sprintf("toolu_%d", i), "name": name, "input": map[string]any{"city": "Paris"}})
		}
		stop = "tool_use"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"id": "msg_1", "type": "message", "role": "assistant", "model": "fake",
		"content": content, "stop_reason": stop, "stop_sequence": nil, "usage": map[string]any{"input_tokens": 1, "output_tokens": 1}})
}

func run(t *testing.T, m *fakeModel, tools []anthropic.BetaTool) {
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	client := anthropic.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("test"), option.WithMaxRetries(0))
	runner := client.Beta.Messages.NewToolRunner(tools, anthropic.BetaToolRunnerParams{
		BetaMessageNewParams: anthropic.BetaMessageNewParams{
			Model: "fake", MaxTokens: 256,
			Messages: []anthropic.BetaMessageParam{anthropic.NewBetaUserMessage(anthropic.NewBetaTextBlock("go"))},
		},
		MaxIterations: 3,
	})
	if _, err := runner.RunToCompletion(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func textTool(name string, body func(city string) string) anthropic.BetaTool {
	type in struct {
		City string `json:"city"`
	}
	return toolrunner.NewBetaTool(name, name, anthropic.BetaToolInputSchemaParam{Properties: map[string]any{"city": map[string]any{"type": "string"}}},
		func(_ context.Context, a in) (anthropic.BetaToolResultBlockParamContentUnion, error) {
			return anthropic.BetaToolResultBlockParamContentUnion{OfText: &anthropic.BetaTextBlockParam{Text: body(a.City)}}, nil
		})
}

func TestToolRunner(t *testing.T) {
	s := adaptertest.New(t)
	var mu sync.Mutex
	ran := map[string]int{}
	tool := func(name string) anthropic.BetaTool {
		return textTool(name, func(city string) string {
			mu.Lock()
			defer mu.Unlock()
			ran[name]++
			return name + " done for " + city
		})
	}
	tools := []anthropic.BetaTool{tool(adaptertest.Allowed), tool(adaptertest.Denied), tool(adaptertest.Approved)}
	m := &fakeModel{calls: []string{adaptertest.Allowed, adaptertest.Denied, adaptertest.Approved}, seen: map[string]result{}}
	run(t, m, guardanthropic.Tools(s.Guard, tools)) // the guard: one line

	if got := m.seen["toolu_0"]; got != (result{false, "read_weather done for Paris"}) {
		t.Errorf("allowed call: the model saw %+v", got)
	}
	if got := m.seen["toolu_1"]; !got.IsError || !strings.Contains(got.Text, "(policy_denied)") || !strings.Contains(got.Text, adaptertest.DenyRule) {
		t.Errorf("denied call: the model saw %+v, want is_error with the denial", got)
	}
	if got := m.seen["toolu_2"]; got != (result{false, "refund done for Paris"}) || s.Approvals() != 1 {
		t.Errorf("approved call: the model saw %+v after %d approvals", got, s.Approvals())
	}
	if ran[adaptertest.Denied] != 0 || ran[adaptertest.Allowed] != 1 || ran[adaptertest.Approved] != 1 {
		t.Errorf("tools ran %v", ran)
	}
	// The runner runs tools in parallel: compare as a set.
	got := s.Outcomes()
	if len(got) != 3 || !strings.Contains(fmt.Sprint(got), "delete_account:policy_denied") || !strings.Contains(fmt.Sprint(got), "refund:ok") {
		t.Errorf("recorded %v", got)
	}
}

func TestKillInFlight(t *testing.T) {
	s := adaptertest.New(t)
	slow := textTool(adaptertest.Slow, func(string) string { s.Block(); return "late" })
	m := &fakeModel{calls: []string{adaptertest.Slow}, seen: map[string]result{}}
	go s.TripWhenStarted()
	run(t, m, guardanthropic.Tools(s.Guard, []anthropic.BetaTool{slow})) // returns although the tool never does
	if got := m.seen["toolu_0"]; !got.IsError || !strings.Contains(got.Text, "(halted)") || !strings.Contains(got.Text, adaptertest.KillWhy) {
		t.Errorf("the model saw %+v, want the halt", got)
	}
	if got, want := fmt.Sprint(s.Outcomes()), "[read_slow:halted]"; got != want {
		t.Errorf("recorded %s, want %s", got, want)
	}
}
