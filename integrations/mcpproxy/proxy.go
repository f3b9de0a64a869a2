package mcpproxy

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hardstop-labs/agentguard"
	"github.com/hardstop-labs/agentguard/killswitch"
)

// Options configures a Proxy. The zero value guards every tools/call with
// the principal the client gives, answers requests the server leaves
// unanswered after DefaultTimeout, and neither pins nor hides tools.
type Options struct {
	// Principal holds the principal fields the configuration fixes; the
	// client's name (from initialize, or a request's _meta) fills Agent
	// when it is empty. Nothing comes from a tool's arguments.
	Principal agentguard.Principal

	// Pins, when set, pins tool definitions on first sight and refuses the
	// calls of a tool whose definition changed until a person accepts it.
	Pins *Pins

	// HideTools removes from tools/list the tools the Guard's policy can
	// never allow (policy.Policy.MayAllow) and, with KillSwitch, those a
	// trip covers. ToolsChanged tells clients to list again.
	HideTools bool
	// KillSwitch is the switch given to the Guard, for HideTools.
	KillSwitch *killswitch.Switch

	// Timeout is how long a request may wait for the server's answer
	// before the proxy answers it with an error (for a tool call: a tool
	// result saying its outcome is unknown). Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxMessage bounds one message, in bytes. Zero means 64 MiB.
	MaxMessage int

	// Log receives one line per operational event (a server that wrote
	// garbage, exited, or left a request unanswered). Nil discards them.
	// It is not the audit log.
	Log io.Writer
}

// DefaultTimeout is how long a request waits for the server by default.
const DefaultTimeout = 5 * time.Minute

// Proxy guards the tools of one MCP server that speaks JSON-RPC over a
// pair of streams (a child process's stdio): every tools/call passes the
// Guard before the server sees it, and everything else passes through
// untouched. Build it with New and run it with Serve. A Proxy is safe for
// concurrent use; it serves one client at a time.
type Proxy struct {
	g    *agentguard.Guard
	opts Options

	clientOut io.Writer
	serverIn  io.Writer
	stop      func()
	cw, sw    sync.Mutex // serialize writes to the client and to the server

	mu         sync.Mutex
	pending    map[string]*pending
	tools      map[string]*known // the last definitions the server gave
	fresh      bool              // tools holds a full listing, and nothing changed since
	clientName string
	elicits    bool                     // the client declared elicitation at initialize
	asks       map[string]chan *message // the proxy's own questions to the client, by ID
	dead       error                    // the server is gone; why
	listing    bool                     // the client follows tool lists (a tools/list seen)

	nonce string
	ownID atomic.Int64
	wg    sync.WaitGroup
}

// known is a definition the server gave, with what the guard derived.
type known struct {
	tool Tool
	hash string
	opts []agentguard.ToolOption
}

// The kinds of requests the proxy waits on.
const (
	kindOther = iota // passed through; answered as the server answers
	kindCall         // tools/call: finished through the ticket
	kindList         // tools/list from the client: definitions learned, tools hidden
	kindOwn          // the proxy's own request to the server
)

type pending struct {
	kind   int
	id     json.RawMessage
	tool   string
	ticket *agentguard.Ticket
	timer  *time.Timer
	done   chan struct{} // closed when the request is answered or failed
	own    chan *message // kindOwn: the answer, or nil when it failed
}

// New returns a Proxy that guards calls with g.
func New(g *agentguard.Guard, opts Options) *Proxy {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxMessage <= 0 {
		opts.MaxMessage = 64 << 20
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return &Proxy{g: g, opts: opts, pending: map[string]*pending{}, tools: map[string]*known{}, asks: map[string]chan *message{}, nonce: hex.EncodeToString(b)}
}

// Streams are the two sides a Proxy connects.
type Streams struct {
	ClientIn  io.Reader // what the client sends
	ClientOut io.Writer // what the client reads
	ServerOut io.Reader // what the server writes
	ServerIn  io.Writer // what the server reads
	// StopServer, when set, is called once when the server misbehaves
	// (writes something that is not JSON-RPC): the proxy stops talking to
	// it either way.
	StopServer func()
}

var (
	errClientGone = errors.New("the client went away")
)

// Serve proxies messages until the client's input ends (it returns nil)
// or ctx ends (it returns ctx's error). Requests still waiting then are
// answered and finished: no call is left unrecorded. Stopping the server
// is the caller's job (see Child).
func (p *Proxy) Serve(ctx context.Context, s Streams) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.clientOut, p.serverIn = s.ClientOut, s.ServerIn
	var stopOnce sync.Once
	p.stop = func() {
		if s.StopServer != nil {
			stopOnce.Do(s.StopServer)
		}
	}
	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		err := p.readLines(s.ServerOut, func(line []byte) bool { return p.fromServer(line) })
		if err == nil {
			err = errors.New("the MCP server closed its output")
		}
		p.gone(err)
	}()
	clientErr := make(chan error, 1)
	go func() {
		clientErr <- p.readLines(s.ClientIn, func(line []byte) bool { p.fromClient(ctx, line); return true })
	}()
	var err error
	select {
	case err = <-clientErr:
	case <-ctx.Done():
		err = ctx.Err()
	}
	cancel()
	p.failAll(errClientGone)
	p.wg.Wait()
	return err
}

// readLines calls fn with every line of r, until fn returns false or r
// ends. A line longer than MaxMessage ends the stream with an error.
func (p *Proxy) readLines(r io.Reader, fn func([]byte) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			if len(long) > p.opts.MaxMessage {
				return fmt.Errorf("a message longer than %d bytes", p.opts.MaxMessage)
			}
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if len(line) > p.opts.MaxMessage+1 { // +1: the newline
			return fmt.Errorf("a message longer than %d bytes", p.opts.MaxMessage)
		}
		if len(line) > 0 {
			// The line is used after ReadSlice's buffer moves on: copy it.
			if !fn(append([]byte(nil), trimEOL(line)...)) {
				return nil
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (p *Proxy) logf(format string, args ...any) {
	if p.opts.Log != nil {
		fmt.Fprintf(p.opts.Log, "agentguard mcp-proxy: "+format+"\n", args...)
	}
}

func (p *Proxy) toClient(b []byte) {
	p.cw.Lock()
	defer p.cw.Unlock()
	if _, err := p.clientOut.Write(append(b, '\n')); err != nil {
		p.logf("writing to the client: %v", err)
	}
}

func (p *Proxy) toServer(b []byte) error {
	p.sw.Lock()
	defer p.sw.Unlock()
	_, err := p.serverIn.Write(append(b, '\n'))
	return err
}

func blank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// fromClient handles one message from the client.
func (p *Proxy) fromClient(ctx context.Context, line []byte) {
	if blank(line) {
		return
	}
	for _, c := range line {
		if c == '[' {
			p.toClient(errorResponse(nil, codeInvalid, "agentguard mcp-proxy: JSON-RPC batches are not accepted"))
			return
		}
		if c != ' ' && c != '\t' {
			break
		}
	}
	msg, err := parse(line)
	if err != nil {
		p.toClient(errorResponse(nil, codeParse, "agentguard mcp-proxy: refused a message that is not unambiguous JSON-RPC: "+err.Error()))
		return
	}
	switch {
	case msg.isResponse() && p.answered(msg):
		// The answer to the proxy's own question.
	case !msg.isRequest():
		// Notifications and answers to the server's own requests
		// (elicitation, sampling, roots) pass through.
		if msg.method == "notifications/cancelled" {
			p.cancelled(msg)
		}
		if err := p.toServer(msg.raw); err != nil {
			p.gone(fmt.Errorf("writing to the MCP server: %w", err))
		}
	case msg.method == "tools/call":
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.call(ctx, msg)
		}()
	case msg.method == "tools/list":
		p.mu.Lock()
		p.listing = true
		p.mu.Unlock()
		p.forward(msg, &pending{kind: kindList})
	default:
		if msg.method == "initialize" {
			p.noteClient(msg)
		}
		p.forward(msg, &pending{kind: kindOther})
	}
}

// cancelled ends a request the client gave up: a call is finished as
// cancelled at once (the server's late answer is dropped), and no answer
// goes to the client, which expects none.
func (p *Proxy) cancelled(msg *message) {
	var params struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if json.Unmarshal(msg.m["params"], &params) != nil || len(params.RequestID) == 0 {
		return
	}
	key := idKey(params.RequestID)
	p.mu.Lock()
	pd := p.pending[key]
	p.mu.Unlock()
	if pd == nil || !p.take(key, pd) {
		return
	}
	switch pd.kind {
	case kindCall:
		_ = pd.ticket.Done(nil, errors.New("mcp-proxy: cancelled by the client"))
	case kindOwn:
		close(pd.own)
	}
}

// noteClient keeps the client's name from its initialize request.
func (p *Proxy) noteClient(msg *message) {
	var params struct {
		ClientInfo struct {
			Name string `json:"name"`
		} `json:"clientInfo"`
		Capabilities struct {
			Elicitation json.RawMessage `json:"elicitation"`
		} `json:"capabilities"`
	}
	if json.Unmarshal(msg.m["params"], &params) == nil {
		p.mu.Lock()
		p.clientName = params.ClientInfo.Name
		p.elicits = len(params.Capabilities.Elicitation) > 0 && string(params.Capabilities.Elicitation) != "null"
		p.mu.Unlock()
	}
}

// forward registers pd for msg and sends msg to the server. It returns
// false when msg was answered at once (the server is gone, or the ID is
// already waiting).
func (p *Proxy) forward(msg *message, pd *pending) bool {
	pd.id = msg.id
	pd.done = make(chan struct{})
	key := idKey(msg.id)
	p.mu.Lock()
	if p.dead != nil {
		dead := p.dead
		p.mu.Unlock()
		p.fail(pd, "the MCP server is not running ("+dead.Error()+")")
		return false
	}
	if _, dup := p.pending[key]; dup {
		p.mu.Unlock()
		p.fail(pd, "a request with the same id is already waiting")
		return false
	}
	p.pending[key] = pd
	pd.timer = time.AfterFunc(p.opts.Timeout, func() {
		if p.take(key, pd) {
			p.logf("the MCP server did not answer request %s within %s", msg.id, p.opts.Timeout)
			p.cancelOnServer(pd.id, "timed out")
			p.fail(pd, fmt.Sprintf("the MCP server did not answer within %s", p.opts.Timeout))
		}
	})
	p.mu.Unlock()
	if err := p.toServer(msg.raw); err != nil {
		p.gone(fmt.Errorf("writing to the MCP server: %w", err))
	}
	return true
}

// take removes pd from the waiting requests, reporting whether it was
// still there: whoever takes it answers it, exactly once.
func (p *Proxy) take(key string, pd *pending) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending[key] != pd {
		return false
	}
	delete(p.pending, key)
	if pd.timer != nil {
		pd.timer.Stop()
	}
	close(pd.done)
	return true
}

// fail answers a request the server will not answer.
func (p *Proxy) fail(pd *pending, why string) {
	switch pd.kind {
	case kindOwn:
		close(pd.own)
	case kindCall:
		err := fmt.Errorf("mcp-proxy: %s", why)
		var res json.RawMessage
		var d *agentguard.DeniedError
		if derr := pd.ticket.Done(nil, err); errors.As(derr, &d) {
			res = DenialResult(derr)
		} else {
			res = toolErrorResult(fmt.Sprintf("agentguard: the call to tool %q has no result: %s. Whether it took effect is unknown. Do not retry blindly; tell the user.", pd.tool, why), nil)
		}
		if pd.id != nil {
			p.toClient(response(pd.id, res))
		}
	default:
		if pd.id != nil {
			p.toClient(errorResponse(pd.id, codeInternal, "agentguard mcp-proxy: "+why))
		}
	}
}

// failAll answers every waiting request with err.
func (p *Proxy) failAll(err error) {
	p.mu.Lock()
	all := p.pending
	p.pending = map[string]*pending{}
	for _, pd := range all {
		if pd.timer != nil {
			pd.timer.Stop()
		}
		close(pd.done)
	}
	p.mu.Unlock()
	for _, pd := range all {
		p.fail(pd, err.Error())
	}
}

// gone marks the server as gone and answers every waiting request.
func (p *Proxy) gone(err error) {
	p.mu.Lock()
	first := p.dead == nil
	if first {
		p.dead = err
	}
	p.mu.Unlock()
	if first {
		p.logf("%v", err)
		p.stop()
	}
	p.failAll(fmt.Errorf("the MCP server is not running (%v)", err))
}

// cancelOnServer tells the server to stop working on a request.
func (p *Proxy) cancelOnServer(id json.RawMessage, why string) {
	b, _ := json.Marshal(struct {
		JSONRPC string `json:"jsonrpc"`
		Method  string `json:"method"`
		Params  any    `json:"params"`
	}{"2.0", "notifications/cancelled", map[string]any{"requestId": id, "reason": why}})
	_ = p.toServer(b)
}

// fromServer handles one message from the server. It returns false when
// the server broke the protocol: the proxy stops reading it.
func (p *Proxy) fromServer(line []byte) bool {
	if blank(line) {
		return true
	}
	msg, err := parse(line)
	if err != nil {
		p.gone(fmt.Errorf("the MCP server wrote something that is not JSON-RPC (%v); it was stopped", err))
		return false
	}
	if msg.isResponse() {
		p.answer(msg)
		return true
	}
	if msg.method == "notifications/tools/list_changed" {
		p.mu.Lock()
		p.fresh = false
		p.mu.Unlock()
	}
	p.toClient(msg.raw)
	return true
}

// answer handles the server's answer to a waiting request.
func (p *Proxy) answer(msg *message) {
	key := idKey(msg.id)
	p.mu.Lock()
	pd := p.pending[key]
	p.mu.Unlock()
	if pd == nil || !p.take(key, pd) {
		p.logf("dropped an answer to request %s, which no longer waits", msg.id)
		return
	}
	switch pd.kind {
	case kindOwn:
		pd.own <- msg
	case kindCall:
		p.finishCall(pd, msg)
	case kindList:
		p.toClient(p.listed(msg))
	default:
		p.toClient(msg.raw)
	}
}

// finishCall ends an admitted call with the server's answer.
func (p *Proxy) finishCall(pd *pending, msg *message) {
	var toolErr error
	if e, ok := msg.m["error"]; ok {
		toolErr = fmt.Errorf("protocol error: %s", bounded(e))
	} else {
		var res struct {
			IsError bool `json:"isError"`
		}
		if err := json.Unmarshal(msg.m["result"], &res); err != nil {
			toolErr = fmt.Errorf("the result is not a tool result: %v", err)
		} else if res.IsError {
			toolErr = resultText(msg.m["result"])
		}
	}
	var d *agentguard.DeniedError
	if err := pd.ticket.Done(nil, toolErr); errors.As(err, &d) {
		p.toClient(response(pd.id, DenialResult(err))) // halted as it ended: the result is discarded
		return
	}
	p.toClient(msg.raw)
}

const maxErrorText = 512

func bounded(b []byte) string {
	if len(b) > maxErrorText {
		return string(b[:maxErrorText]) + "..."
	}
	return string(b)
}

// resultText is the error an isError result stands for: its first text.
func resultText(raw json.RawMessage) error {
	var res struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
	}
	_ = json.Unmarshal(raw, &res)
	for _, c := range res.Content {
		if c.Type == "text" && c.Text != "" {
			return errors.New(bounded([]byte(c.Text)))
		}
	}
	return errors.New("the tool returned an error result")
}

// call guards one tools/call.
func (p *Proxy) call(ctx context.Context, msg *message) {
	params, err := object(msg.m["params"])
	var name string
	if err == nil {
		if err = json.Unmarshal(params["name"], &name); err == nil && name == "" {
			err = errors.New("empty tool name")
		}
	}
	if err != nil {
		p.toClient(errorResponse(msg.id, codeInvalid, "agentguard mcp-proxy: refused tools/call: "+err.Error()))
		return
	}
	k, err := p.definition(ctx, name, params["_meta"])
	var opts []agentguard.ToolOption
	switch {
	case err != nil:
		opts = []agentguard.ToolOption{agentguard.Hold("tool-definition", "the server's tool definitions could not be read")}
	case k == nil:
		opts = []agentguard.ToolOption{agentguard.Hold("tool-unlisted", "the server does not list this tool")}
	default:
		opts = k.opts
		if p.opts.Pins != nil {
			if hold := p.opts.Pins.Check(ctx, p.g, &k.tool, k.hash); hold != nil {
				opts = append(opts[:len(opts):len(opts)], hold)
			}
		}
	}
	cctx := context.WithValue(agentguard.WithPrincipal(ctx, p.principal(params["_meta"])), proxyKey{}, p)
	t, err := p.g.Check(cctx, name, json.RawMessage(params["arguments"]), opts...)
	if err != nil {
		p.toClient(response(msg.id, DenialResult(err)))
		return
	}
	pd := &pending{kind: kindCall, ticket: t, tool: name}
	if !p.forward(msg, pd) {
		return
	}
	if h := t.Halted(); h != nil {
		select {
		case <-h:
			if p.take(idKey(msg.id), pd) {
				p.cancelOnServer(msg.id, "halted by the kill switch")
				p.toClient(response(msg.id, DenialResult(t.Done(nil, nil))))
			}
		case <-pd.done:
		}
	}
}

// principal is the principal of a call: the configured fields, and the
// client's name as Agent when none is configured.
func (p *Proxy) principal(meta json.RawMessage) agentguard.Principal {
	pr := p.opts.Principal
	if pr.Agent != "" {
		return pr
	}
	var m struct {
		ClientInfo struct {
			Name string `json:"name"`
		} `json:"io.modelcontextprotocol/clientInfo"`
	}
	if len(meta) > 0 && json.Unmarshal(meta, &m) == nil && m.ClientInfo.Name != "" {
		pr.Agent = m.ClientInfo.Name
		return pr
	}
	p.mu.Lock()
	pr.Agent = p.clientName
	p.mu.Unlock()
	return pr
}

// learn keeps the definitions of a tools/list result (pinning them when
// configured) and returns them.
func (p *Proxy) learn(ctx context.Context, raws []json.RawMessage) []*known {
	out := make([]*known, 0, len(raws))
	for _, raw := range raws {
		var t Tool
		if err := json.Unmarshal(raw, &t); err != nil || t.Name == "" {
			continue
		}
		k := &known{tool: t, hash: t.Hash()}
		p.mu.Lock()
		if old := p.tools[t.Name]; old != nil && old.hash == k.hash {
			k = old
		} else {
			k.opts = []agentguard.ToolOption{agentguard.Labels(t.Labels()...)}
			p.tools[t.Name] = k
		}
		p.mu.Unlock()
		if p.opts.Pins != nil {
			p.opts.Pins.Check(ctx, p.g, &k.tool, k.hash)
		}
		out = append(out, k)
	}
	return out
}

// listed learns the tools of the server's answer to the client's
// tools/list and, with HideTools, removes the hidden ones.
func (p *Proxy) listed(msg *message) []byte {
	result, err := object(msg.m["result"])
	if err != nil {
		return msg.raw
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(result["tools"], &raws); err != nil {
		return msg.raw
	}
	ks := p.learn(context.Background(), raws)
	if !p.opts.HideTools {
		return msg.raw
	}
	pr := p.principal(nil)
	kept := raws[:0:0]
	for i, k := range ks {
		if !p.never(pr, k.tool.Name) {
			kept = append(kept, raws[i])
		}
	}
	if len(kept) == len(raws) {
		return msg.raw
	}
	b, err := json.Marshal(kept)
	if err != nil {
		return msg.raw
	}
	result["tools"] = b
	rb, err := json.Marshal(result)
	if err != nil {
		return msg.raw
	}
	return response(msg.id, rb)
}

// never reports whether no call to tool by pr can be allowed now.
func (p *Proxy) never(pr agentguard.Principal, tool string) bool {
	return Hidden(p.g, p.opts.KillSwitch, pr, tool)
}

// Hidden reports whether no call to tool by pr can be allowed now: g's
// policy can never allow it (policy.Policy.MayAllow), or a trip of sw (when
// not nil) covers it. The integrations hide such tools from tools/list.
func Hidden(g *agentguard.Guard, sw *killswitch.Switch, pr agentguard.Principal, tool string) bool {
	if g == nil || !g.Policy().MayAllow(tool) {
		return true
	}
	if sw != nil {
		if _, tripped := sw.Tripped(killswitch.Key{Tenant: pr.Tenant, Agent: pr.Agent, Tool: tool}); tripped {
			return true
		}
	}
	return false
}

// ToolsChanged tells the client that the list of tools changed
// (notifications/tools/list_changed): call it when the policy was
// reloaded or the kill switch changed, so that a client that hides tools
// lists them again. It does nothing before the client listed tools.
func (p *Proxy) ToolsChanged() {
	p.mu.Lock()
	listing := p.listing
	p.mu.Unlock()
	if listing && p.clientOut != nil {
		p.toClient([]byte(`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`))
	}
}

// maxPages bounds the pages of tools/list read to find one definition.
const maxPages = 100

// definition returns the server's definition of the tool named name, nil
// when the server does not list it. It lists the server's tools itself
// when what it knows may be stale.
//
// On the stateless revision (2026-07-28) every request carries the
// protocol's fields in _meta: meta, the call's _meta, is copied into the
// proxy's own requests when it has them.
func (p *Proxy) definition(ctx context.Context, name string, meta json.RawMessage) (*known, error) {
	p.mu.Lock()
	k, fresh := p.tools[name], p.fresh
	p.mu.Unlock()
	if fresh {
		return k, nil
	}
	var all []*known
	cursor := ""
	for range maxPages {
		params := map[string]any{}
		if stateless(meta) {
			params["_meta"] = meta
		}
		if cursor != "" {
			params["cursor"] = cursor
		}
		res, err := p.request(ctx, "tools/list", params)
		if err != nil {
			return nil, err
		}
		var page struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(res, &page); err != nil {
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		all = append(all, p.learn(ctx, page.Tools)...)
		if page.NextCursor == "" {
			p.mu.Lock()
			p.tools = make(map[string]*known, len(all))
			for _, k := range all {
				p.tools[k.tool.Name] = k
			}
			p.fresh = true
			k := p.tools[name]
			p.mu.Unlock()
			return k, nil
		}
		cursor = page.NextCursor
	}
	return nil, fmt.Errorf("tools/list has more than %d pages", maxPages)
}

// stateless reports whether a request's _meta selects the stateless
// revision (it names a protocol version).
func stateless(meta json.RawMessage) bool {
	var m struct {
		Version string `json:"io.modelcontextprotocol/protocolVersion"`
	}
	return len(meta) > 0 && json.Unmarshal(meta, &m) == nil && m.Version != ""
}

// request sends the proxy's own request to the server and returns its
// result.
func (p *Proxy) request(ctx context.Context, method string, params any) (json.RawMessage, error) {
	id, _ := json.Marshal(fmt.Sprintf("agentguard-%s-%d", p.nonce, p.ownID.Add(1)))
	b, err := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Method  string          `json:"method"`
		Params  any             `json:"params"`
	}{"2.0", id, method, params})
	if err != nil {
		return nil, err
	}
	msg := &message{raw: b, id: id, method: method}
	pd := &pending{kind: kindOwn, own: make(chan *message, 1)}
	if !p.forward(msg, pd) {
		return nil, errors.New("the MCP server is not running")
	}
	select {
	case ans, ok := <-pd.own:
		if !ok || ans == nil {
			return nil, errors.New("the MCP server did not answer")
		}
		if e, ok := ans.m["error"]; ok {
			return nil, fmt.Errorf("%s: %s", method, bounded(e))
		}
		return ans.m["result"], nil
	case <-ctx.Done():
		if p.take(idKey(id), pd) {
			p.cancelOnServer(id, "the proxy no longer waits")
		}
		return nil, ctx.Err()
	}
}
