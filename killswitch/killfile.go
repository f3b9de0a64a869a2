package killswitch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// MaxKillFileSize is the largest kill file ParseKillFile accepts, in bytes.
// A FileTrigger reads no more than this much of a kill file.
const MaxKillFileSize = 4096

// MaxReason is the longest reason a kill file carries, in bytes; a longer
// first line is cut (at a UTF-8 boundary) and marked with "...".
const MaxReason = 512

// KillFile is what a kill file says. See the package documentation for the
// format.
type KillFile struct {
	// Reason is the first line: why the switch was tripped.
	Reason string
	// Scope narrows the trip; the zero Scope leaves it to the trigger's.
	Scope Scope
	// By names who wrote the file; empty means the trigger names itself.
	By string
}

// ParseError is the error of a kill file that does not follow the format.
// It unwraps to ErrBadKillFile.
type ParseError struct {
	Line int // 1-based; 0 for the file as a whole
	Msg  string
}

// ErrBadKillFile is matched by every *ParseError.
var ErrBadKillFile = errors.New("killswitch: bad kill file")

// Error returns "killswitch: kill file line N: MSG".
func (e *ParseError) Error() string {
	if e.Line == 0 {
		return "killswitch: kill file: " + e.Msg
	}
	return fmt.Sprintf("killswitch: kill file line %d: %s", e.Line, e.Msg)
}

// Unwrap returns ErrBadKillFile.
func (e *ParseError) Unwrap() error { return ErrBadKillFile }

// ParseKillFile parses a kill file. Even when it returns an error, the
// returned KillFile carries the reason from the first line, so that a
// trigger can trip with it (on a broader scope: fail closed).
func ParseKillFile(data []byte) (KillFile, error) {
	var f KillFile
	if len(data) > MaxKillFileSize {
		data = data[:MaxKillFileSize]
		f.Reason = cleanReason(firstLine(data))
		return f, &ParseError{Msg: fmt.Sprintf("more than %d bytes", MaxKillFileSize)}
	}
	lines := strings.Split(string(data), "\n")
	f.Reason = cleanReason(lines[0])
	seen := map[string]bool{}
	for i, raw := range lines[1:] {
		n := i + 2
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			return f, &ParseError{Line: n, Msg: fmt.Sprintf("%q is not \"key: value\"", clip(line))}
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		if !utf8.ValidString(value) || strings.ContainsFunc(value, isControl) {
			return f, &ParseError{Line: n, Msg: "value is not valid UTF-8 text"}
		}
		if value == "" {
			return f, &ParseError{Line: n, Msg: fmt.Sprintf("%s has no value", clip(key))}
		}
		if len(value) > maxField {
			return f, &ParseError{Line: n, Msg: fmt.Sprintf("%s is longer than %d bytes", key, maxField)}
		}
		if seen[key] {
			return f, &ParseError{Line: n, Msg: fmt.Sprintf("%s given twice", key)}
		}
		seen[key] = true
		switch key {
		case "tenant":
			f.Scope.Tenant = value
		case "agent":
			f.Scope.Agent = value
		case "tool":
			f.Scope.Tool = value
		case "by":
			f.By = value
		default:
			return f, &ParseError{Line: n, Msg: fmt.Sprintf("unknown key %q (want tenant, agent, tool or by)", clip(key))}
		}
	}
	return f, nil
}

func firstLine(data []byte) string {
	s := string(data)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func clip(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "") + "..."
	}
	return s
}

// cleanReason makes a first line into a reason: trimmed, valid UTF-8, no
// control characters, at most MaxReason bytes.
func cleanReason(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > MaxReason {
		cut := MaxReason - len("...")
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

// Marshal returns the file's text. It fails when a field could not be
// parsed back: a reason with a line break or longer than MaxReason, or a
// scope or by value with a line break, surrounding space or over 256 bytes.
func (f KillFile) Marshal() ([]byte, error) {
	if strings.ContainsAny(f.Reason, "\r\n") {
		return nil, errors.New("killswitch: kill file reason contains a line break")
	}
	if len(f.Reason) > MaxReason {
		return nil, fmt.Errorf("killswitch: kill file reason is longer than %d bytes", MaxReason)
	}
	if err := f.Scope.validate(); err != nil {
		return nil, err
	}
	if err := (Scope{Agent: f.By}).validate(); err != nil {
		return nil, fmt.Errorf("killswitch: kill file by: %w", err)
	}
	var b strings.Builder
	b.WriteString(strings.TrimSpace(f.Reason))
	b.WriteByte('\n')
	for _, kv := range [...][2]string{{"tenant", f.Scope.Tenant}, {"agent", f.Scope.Agent}, {"tool", f.Scope.Tool}, {"by", f.By}} {
		if kv[1] != "" {
			b.WriteString(kv[0])
			b.WriteString(": ")
			b.WriteString(kv[1])
			b.WriteByte('\n')
		}
	}
	return []byte(b.String()), nil
}

// WriteKillFile writes f to path atomically (a temporary file in the same
// directory, synced, then renamed), so that a trigger never reads half a
// file.
func WriteKillFile(path string, f KillFile) error {
	data, err := f.Marshal()
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("killswitch: write kill file: %w", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("killswitch: write kill file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("killswitch: write kill file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("killswitch: write kill file: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("killswitch: write kill file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("killswitch: write kill file: %w", err)
	}
	return nil
}
