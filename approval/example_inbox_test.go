package approval_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/hardstop-labs/agentguard/approval"
)

// An Inbox holds waiting calls until someone answers over HTTP. Mount it
// with http.StripPrefix; people use its page, programs its JSON API.
func ExampleInbox() {
	inbox, err := approval.NewInbox(approval.InboxOptions{Token: "a-long-random-token-from-a-secret-store"})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/approvals/", http.StripPrefix("/approvals", inbox))

	gate, _ := approval.NewGate(inbox, approval.Options{Timeout: time.Minute})
	done := make(chan string)
	go func() {
		_, err := gate.Ask(context.Background(), &approval.Request{ID: "call-1", Tool: "refund",
			Args: map[string]any{"amount": 250}, Principal: approval.Principal{Agent: "support-bot"}})
		if err != nil {
			done <- fmt.Sprint("call-1 refused: ", err)
			return
		}
		done <- "call-1 approved"
	}()
	for len(inbox.Pending()) == 0 {
		time.Sleep(time.Millisecond) // wait for the call to reach the inbox
	}

	api := func(method, path, body string) string {
		req := httptest.NewRequest(method, "/approvals"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer a-long-random-token-from-a-secret-store")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec.Body.String()
	}
	var list struct{ Pending []approval.Request }
	json.Unmarshal([]byte(api("GET", "/api/pending", "")), &list)
	card := list.Pending[0]
	fmt.Println("pending:", card.ID, card.Tool, card.Args["amount"])

	// Answer with the card's hash: the inbox takes it for exactly that call.
	fmt.Print(api("POST", "/api/approve", fmt.Sprintf(`{"id":%q,"hash":%q,"by":"carol"}`, card.ID, card.Hash)))
	fmt.Println(<-done)
	// Output:
	// pending: call-1 refund 250
	// {"ok":true}
	// call-1 approved
}
