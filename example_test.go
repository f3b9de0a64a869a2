package agentguard_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/policy"
)

const examplePolicy = `
version: 1
default: deny
rules:
  - name: reads
    match: call.tool.startsWith("read_")
    effect: allow
  - name: no-deletes
    match: call.tool == "delete_file"
    effect: deny
    reason: files are never deleted by the agent
`

func ExampleNew() {
	p, err := policy.Parse("policy.yaml", []byte(examplePolicy))
	if err != nil {
		log.Fatal(err)
	}
	g, err := agentguard.New(
		agentguard.WithPolicy(p),
		agentguard.WithDefaultPrincipal(agentguard.Principal{Agent: "files-bot"}),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	fmt.Println(g.Policy().Spec().Rules[0].Name)
	// Output: reads
}

func ExampleWrap() {
	p, _ := policy.Parse("policy.yaml", []byte(examplePolicy))
	g, _ := agentguard.New(agentguard.WithPolicy(p))
	defer g.Close()

	readFile := agentguard.Wrap(g, "read_file", func(_ context.Context, path string) (string, error) {
		return "contents of " + path, nil
	})
	deleteFile := agentguard.Wrap(g, "delete_file", func(_ context.Context, path string) (bool, error) {
		return true, nil
	})

	ctx := agentguard.WithPrincipal(context.Background(), agentguard.Principal{Agent: "files-bot", Requester: "alice"})
	out, err := readFile(ctx, "notes.txt")
	fmt.Println(out, err)

	_, err = deleteFile(ctx, "notes.txt")
	var d *agentguard.DeniedError
	if errors.As(err, &d) {
		fmt.Println(d.Code, d.Rule, errors.Is(err, agentguard.ErrPolicyDenied))
		fmt.Println(d.Error())
	}
	// Output:
	// contents of notes.txt <nil>
	// policy_denied no-deletes true
	// agentguard: call to tool "delete_file" was not run (policy_denied): stopped by "no-deletes": files are never deleted by the agent. It needs a human: the policy does not allow this call. Retrying will not help. Do not try to work around this; tell the user and ask a human to decide.
}

func ExampleWrapJSON() {
	p, _ := policy.Parse("policy.yaml", []byte(examplePolicy))
	g, _ := agentguard.New(agentguard.WithPolicy(p))
	defer g.Close()

	// A tool as an LLM API delivers it: arguments as a JSON string.
	readFile := agentguard.WrapJSON(g, "read_file", func(_ context.Context, args string) (string, error) {
		return "read with " + args, nil
	})
	out, err := readFile(context.Background(), `{"path":"notes.txt"}`)
	fmt.Println(out, err)
	// Output: read with {"path":"notes.txt"} <nil>
}

func ExampleGuard_Check() {
	p, _ := policy.Parse("policy.yaml", []byte(examplePolicy))
	g, _ := agentguard.New(agentguard.WithPolicy(p))
	defer g.Close()

	// An adapter that cannot wrap the tool asks first, runs it, then reports.
	t, err := g.Check(context.Background(), "read_file", map[string]any{"path": "notes.txt"})
	if err != nil {
		fmt.Println("denied:", err)
		return
	}
	result := "contents" // run the tool with t.Context() here
	fmt.Println(t.Call().Tool, t.Done(result, nil))

	_, err = g.Check(context.Background(), "delete_file", map[string]any{"path": "notes.txt"})
	fmt.Println(errors.Is(err, agentguard.ErrDenied))
	// Output:
	// read_file <nil>
	// true
}
