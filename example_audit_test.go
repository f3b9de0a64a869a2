package agentguard_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/policy"
)

func ExampleWithAuditFile() {
	dir, _ := os.MkdirTemp("", "guard")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "audit.jsonl")

	pol, err := policy.Parse("policy.yaml", []byte("version: 1\ndefault: allow\n"))
	if err != nil {
		log.Fatal(err)
	}
	skey, vkey, _ := audit.GenerateKey("example")
	g, err := agentguard.New(agentguard.WithPolicy(pol),
		agentguard.WithAuditFile(path, audit.Options{SignerKey: skey}))
	if err != nil {
		log.Fatal(err)
	}
	type Login struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	login := agentguard.Wrap(g, "login", func(ctx context.Context, in Login) (string, error) {
		return "welcome " + in.User, nil
	})
	out, _ := login(context.Background(), Login{User: "alice", Password: "hunter2"})
	fmt.Println(out)
	g.Close() // closes the log with a signed checkpoint

	rep, err := audit.Verify(audit.VerifyOptions{Key: vkey}, path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("audit log intact: %d records, %d checkpoint verified\n", rep.Records, rep.Checkpoints)
	// Output:
	// welcome alice
	// audit log intact: 3 records, 1 checkpoint verified
}
