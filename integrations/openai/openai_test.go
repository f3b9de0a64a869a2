package guardopenai_test

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

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/hardstop-labs/agentguard/integrations/adaptertest"
	guardopenai "github.com/hardstop-labs/agentguard/integrations/openai"
)

// fakeModel is an OpenAI-compatible chat-completions endpoint on loopback:
// on the first turn it calls the tools it was given, on the next it
// answers with the tool messages it received, so the test sees exactly
// what the model saw.
type fakeModel struct {
	calls []string // tool names to call on the first turn
	mu    sync.Mutex
	seen  map[string]string // tool_call_id → the tool message's content
}

func (m *fakeModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct {
			Role       string          `json:"role"`
			Content    json.RawMessage `json:"content"`
			ToolCallID string          `json:"tool_call_id"`
		} `json:"messages"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var toolMsgs []string
	m.mu.Lock()
	for _, msg := range req.Messages {
		if msg.Role == "tool" {
			var s string
			json.Unmarshal(msg.Content, &s)
			m.seen[msg.ToolCallID] = s
			toolMsgs = append(toolMsgs, s)
		}
	}
	m.mu.Unlock()
	message := map[string]any{"role": "assistant", "content": strings.Join(toolMsgs, "\n")}
	finish := "stop"
	if len(toolMsgs) == 0 {
		var calls []map[string]any
		for i, name := range m.calls {
			calls = append(calls, map[string]any{"id": fmt.Sprintf("call_%d", i), "type": "function",
				"function": map[string]any{"name": name, "arguments": `{"city":"Paris","amount":30}`}})
		}
		message = map[string]any{"role": "assistant", "content": nil, "tool_calls": calls}
		finish = "tool_calls"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake",
		"choices": []any{map[string]any{"index": 0, "finish_reason": finish, "message": message}},
	})
}

// agentLoop is the loop a user writes: ask, dispatch the tool calls, ask
// again. The guard is one line in it.
func agentLoop(t *testing.T, client openai.Client, tools *guardopenai.Tools) string {
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:    "fake",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("go")},
	}
	for range 3 {
		resp, err := client.Chat.Completions.New(ctx, params)
		if err != nil {
			t.Fatal(err)
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 {
			return msg.Content
		}
		params.Messages = append(params.Messages, msg.ToParam())
		params.Messages = append(params.Messages, tools.Dispatch(ctx, msg.ToolCalls)...) // the guard
	}
	t.Fatal("the loop did not end")
	return ""
}

func newClient(t *testing.T, m *fakeModel) openai.Client {
	srv := httptest.NewServer(m)
	t.Cleanup(srv.Close)
	return openai.NewClient(option.WithBaseURL(srv.URL), option.WithAPIKey("test"), option.WithMaxRetries(0))
}

func TestDispatchThroughTheRealClient(t *testing.T) {
	s := adaptertest.New(t)
	ran := map[string]int{}
	var mu sync.Mutex
	tool := func(name string) guardopenai.Func {
		return func(_ context.Context, args string) (string, error) {
			mu.Lock()
			ran[name]++
			mu.Unlock()
			return name + " done with " + args, nil
		}
	}
	tools := guardopenai.New(s.Guard, map[string]guardopenai.Func{
		adaptertest.Allowed:  tool(adaptertest.Allowed),
		adaptertest.Denied:   tool(adaptertest.Denied),
		adaptertest.Approved: tool(adaptertest.Approved),
	})
	m := &fakeModel{calls: []string{adaptertest.Allowed, adaptertest.Denied, adaptertest.Approved, "no_such_tool"}, seen: map[string]string{}}
	agentLoop(t, newClient(t, m), tools)

	if got := m.seen["call_0"]; got != `read_weather done with {"city":"Paris","amount":30}` {
		t.Errorf("allowed call: the model saw %q", got)
	}
	if got := m.seen["call_1"]; !strings.Contains(got, "(policy_denied)") || !strings.Contains(got, adaptertest.DenyRule) || !strings.Contains(got, "tell the user") {
		t.Errorf("denied call: the model saw %q, want the denial text", got)
	}
	if got := m.seen["call_2"]; !strings.HasPrefix(got, "refund done") || s.Approvals() != 1 {
		t.Errorf("approved call: the model saw %q after %d approvals", got, s.Approvals())
	}
	if got := m.seen["call_3"]; !strings.Contains(got, "no tool named") {
		t.Errorf("unknown tool: the model saw %q", got)
	}
	if ran[adaptertest.Denied] != 0 || ran[adaptertest.Allowed] != 1 || ran[adaptertest.Approved] != 1 {
		t.Errorf("tools ran %v", ran)
	}
	if got, want := fmt.Sprint(s.Outcomes()), "[read_weather:ok delete_account:policy_denied refund:ok]"; got != want {
		t.Errorf("recorded %s, want %s", got, want)
	}
}

func TestKillInFlight(t *testing.T) {
	s := adaptertest.New(t)
	tools := guardopenai.New(s.Guard, map[string]guardopenai.Func{
		adaptertest.Slow: func(context.Context, string) (string, error) { s.Block(); return "late", nil },
	})
	m := &fakeModel{calls: []string{adaptertest.Slow}, seen: map[string]string{}}
	go s.TripWhenStarted()
	agentLoop(t, newClient(t, m), tools) // returns although the tool never does
	if got := m.seen["call_0"]; !strings.Contains(got, "(halted)") || !strings.Contains(got, adaptertest.KillWhy) {
		t.Errorf("the model saw %q, want the halt", got)
	}
	if got, want := fmt.Sprint(s.Outcomes()), "[read_slow:halted]"; got != want {
		t.Errorf("recorded %s, want %s", got, want)
	}
}
