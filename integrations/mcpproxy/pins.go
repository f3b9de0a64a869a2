package mcpproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hardstop-labs/agentguard"
)

// Pins remembers each tool's definition by hash (DefinitionHash), pinned
// the first time the guard sees it. A definition that differs from its
// pin later is recorded once (an agentguard.EventTool with Rule
// "tool-changed") and every call to the tool is refused (agentguard.Hold)
// until a person accepts the new definition with Accept. A tool seen for
// the first time is recorded with Rule "tool-new"; if that record cannot
// be written, the tool is not pinned and its calls are refused.
//
// Pins kept in a file (OpenPins) survive restarts and can be accepted by
// another process (agentguard mcp-pins accept): the file is read again
// when it changes. Pins is safe for concurrent use.
type Pins struct {
	mu       sync.Mutex
	path     string
	modTime  time.Time
	size     int64
	accepted map[string]string // tool → the hash accepted (or first seen)
	changed  map[string]string // tool → the last differing hash recorded
}

// pinFile is the format of a pins file.
type pinFile struct {
	Version int               `json:"version"`
	Tools   map[string]string `json:"tools"`
}

// NewPins returns pins kept in memory.
func NewPins() *Pins {
	return &Pins{accepted: map[string]string{}, changed: map[string]string{}}
}

// OpenPins returns pins kept in the JSON file at path, created when it
// does not exist.
func OpenPins(path string) (*Pins, error) {
	if path == "" {
		return nil, errors.New("mcpproxy: OpenPins: empty path")
	}
	p := NewPins()
	p.path = path
	if err := p.reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// reload reads the file when it changed since it was last read. p.mu is
// held or p is not shared yet.
func (p *Pins) reload() error {
	if p.path == "" {
		return nil
	}
	fi, err := os.Stat(p.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mcpproxy: pins: %w", err)
	}
	if fi.ModTime().Equal(p.modTime) && fi.Size() == p.size {
		return nil
	}
	b, err := os.ReadFile(p.path)
	if err != nil {
		return fmt.Errorf("mcpproxy: pins: %w", err)
	}
	var f pinFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("mcpproxy: pins file %s: %w", p.path, err)
	}
	if f.Version != 1 {
		return fmt.Errorf("mcpproxy: pins file %s: version %d, want 1", p.path, f.Version)
	}
	p.accepted = f.Tools
	if p.accepted == nil {
		p.accepted = map[string]string{}
	}
	p.modTime, p.size = fi.ModTime(), fi.Size()
	return nil
}

// save writes the file atomically. p.mu is held.
func (p *Pins) save() error {
	if p.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(pinFile{Version: 1, Tools: p.accepted}, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.path), ".pins-*")
	if err != nil {
		return fmt.Errorf("mcpproxy: pins: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("mcpproxy: pins: %w", err)
	}
	if err := os.Rename(tmp.Name(), p.path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("mcpproxy: pins: %w", err)
	}
	if fi, err := os.Stat(p.path); err == nil {
		p.modTime, p.size = fi.ModTime(), fi.Size()
	}
	return nil
}

// Accept pins hash as the accepted definition of tool: the decision of a
// person who read the new definition. Later calls to the tool run as the
// policy says.
func (p *Pins) Accept(tool, hash string) error {
	if tool == "" || len(hash) != 64 {
		return fmt.Errorf("mcpproxy: Accept: want a tool name and a 64-digit hash, got %q %q", tool, hash)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.reload(); err != nil {
		return err
	}
	p.accepted[tool] = hash
	delete(p.changed, tool)
	return p.save()
}

// Pinned returns the hash pinned for tool, if any.
func (p *Pins) Pinned(tool string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.reload()
	h, ok := p.accepted[tool]
	return h, ok
}

// Tools returns the names of the pinned tools, sorted.
func (p *Pins) Tools() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	_ = p.reload()
	var out []string
	for t := range p.accepted {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Check compares the definition of tool t (whose hash is t.Hash()) with its pin,
// pinning it (and recording it through g) on first sight. It returns nil
// when calls may proceed, or the agentguard.Hold that refuses them. The
// integrations call it for every definition they see (a tools/list
// result) and before every call.
func (p *Pins) Check(ctx context.Context, g *agentguard.Guard, t *Tool, hash string) agentguard.ToolOption {
	p.mu.Lock()
	if err := p.reload(); err != nil {
		p.mu.Unlock()
		return agentguard.Hold("tool-pins", "the pinned tool definitions cannot be read")
	}
	pinned, ok := p.accepted[t.Name]
	switch {
	case ok && pinned == hash:
		p.mu.Unlock()
		return nil
	case ok:
		first := p.changed[t.Name] != hash
		p.changed[t.Name] = hash
		p.mu.Unlock()
		if first {
			recordTool(ctx, g, t.Name, "tool-changed", hash, fmt.Sprintf("the definition of tool %q changed (pinned %s); its calls are held until a person accepts it", t.Name, pinned))
		}
		return agentguard.Hold("tool-changed", fmt.Sprintf("the tool's definition changed since a person accepted it (now %s); its calls are held until a person accepts the new definition", hash))
	}
	// First sight: record, then pin.
	p.mu.Unlock()
	if err := recordTool(ctx, g, t.Name, "tool-new", hash, fmt.Sprintf("tool %q appeared: %s", t.Name, t.Description)); err != nil {
		return agentguard.Hold("tool-new", "the tool's definition could not be recorded")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.accepted[t.Name]; ok { // pinned meanwhile by a concurrent caller
		if p.accepted[t.Name] == hash {
			return nil
		}
		return agentguard.Hold("tool-changed", "the tool's definition changed while it was being pinned")
	}
	p.accepted[t.Name] = hash
	if err := p.save(); err != nil {
		delete(p.accepted, t.Name)
		return agentguard.Hold("tool-pins", "the tool's definition could not be pinned")
	}
	return nil
}

// maxReasonText bounds a tool event's reason (a description can be long).
const maxReasonText = 1024

func recordTool(ctx context.Context, g *agentguard.Guard, tool, rule, hash, reason string) error {
	if g == nil {
		return errors.New("mcpproxy: nil Guard")
	}
	if len(reason) > maxReasonText {
		reason = reason[:maxReasonText] + "..."
	}
	return g.Record(context.WithoutCancel(ctx), &agentguard.Event{Kind: agentguard.EventTool,
		Call: &agentguard.Call{Tool: tool}, Rule: rule, Reason: reason, Note: hash})
}
