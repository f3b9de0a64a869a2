package agentguard_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/policy"
)

// A tool call as an LLM API delivers it: raw JSON for a tool that takes
// its own type. WrapJSONAs decodes it once; the policy judges the value
// the tool receives, integers stay exact, and JSON that could be read two
// ways is refused before the policy sees it.
func ExampleWrapJSONAs() {
	p, _ := policy.Parse("policy.yaml", []byte(`
version: 1
default: deny
rules:
  - name: acme-only
    match: call.tool == "send_email" && call.args.to.endsWith("@acme.com")
    effect: allow
`))
	g, _ := agentguard.New(agentguard.WithPolicy(p))
	defer g.Close()

	type Email struct {
		To      string `json:"to"`
		Account uint64 `json:"account"`
	}
	send := agentguard.WrapJSONAs[string](g, "send_email", func(_ context.Context, e Email) (string, error) {
		return fmt.Sprintf("sent to %s for account %d", e.To, e.Account), nil
	})

	ctx := context.Background()
	fmt.Println(send(ctx, `{"to":"bob@acme.com","account":9007199254740993}`))

	_, err := send(ctx, `{"to":"bob@acme.com","TO":"eve@evil.com"}`)
	var d *agentguard.DeniedError
	if errors.As(err, &d) {
		fmt.Println(d.Code+":", d.Reason)
	}
	// Output:
	// sent to bob@acme.com for account 9007199254740993 <nil>
	// invalid_call: the arguments were refused: keys "to" and "TO" in args differ only in letter case: a tool decoding into a struct would read either one
}
