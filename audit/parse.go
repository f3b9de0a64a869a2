package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// wire is the JSON shape of a record, for parsing.
type wire struct {
	Seq       *json.Number      `json:"seq"`
	Time      *string           `json:"time"`
	Log       *string           `json:"log"`
	Kind      *string           `json:"kind"`
	Call      string            `json:"call"`
	Principal *wirePrincipal    `json:"principal"`
	Env       string            `json:"env"`
	Tool      string            `json:"tool"`
	Args      map[string]any    `json:"args"`
	Labels    map[string]string `json:"labels"`
	Decision  string            `json:"decision"`
	Code      string            `json:"code"`
	Stage     string            `json:"stage"`
	Rule      string            `json:"rule"`
	Reason    string            `json:"reason"`
	Shadow    []struct {
		Rule   string `json:"rule"`
		Effect string `json:"effect"`
		Reason string `json:"reason"`
	} `json:"shadow"`
	Policy     string       `json:"policy"`
	Approver   string       `json:"approver"`
	Grant      string       `json:"grant"`
	Note       string       `json:"note"`
	Estimate   []wireCost   `json:"estimate"`
	Actual     []wireCost   `json:"actual"`
	Outcome    string       `json:"outcome"`
	Error      string       `json:"error"`
	Duration   *json.Number `json:"duration_ns"`
	Control    *Control     `json:"control"`
	Checkpoint string       `json:"checkpoint"`
	Prev       *string      `json:"prev"`
}

type wirePrincipal struct {
	Agent     string `json:"agent"`
	Requester string `json:"requester"`
	Tenant    string `json:"tenant"`
	Session   string `json:"session"`
}

type wireCost struct {
	Unit   string      `json:"unit"`
	Micros json.Number `json:"micros"`
}

// ParseRecord parses one line of the log (without its newline). It is
// strict: the line must be exactly what AppendJSON writes for the record
// it holds, so keys in another order, unknown or duplicate keys, other
// escapes, spaces, or numbers in another form are errors. Errors wrap
// ErrSyntax.
func ParseRecord(line []byte) (*Record, error) {
	r, err := parseRecord(line, nil)
	return r, err
}

// parseRecord parses line and checks that it is canonical, using buf as
// scratch space for the re-encoding; it returns the grown buffer through
// the record's use only.
func parseRecord(line []byte, scratch *[]byte) (*Record, error) {
	if len(line) == 0 || line[0] != '{' || line[len(line)-1] != '}' {
		return nil, fmt.Errorf("%w: not a JSON object", ErrSyntax)
	}
	var w wire
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if d.More() {
		return nil, fmt.Errorf("%w: data after the object", ErrSyntax)
	}
	switch {
	case w.Seq == nil:
		return nil, fmt.Errorf("%w: no seq", ErrSyntax)
	case w.Time == nil:
		return nil, fmt.Errorf("%w: no time", ErrSyntax)
	case w.Log == nil:
		return nil, fmt.Errorf("%w: no log", ErrSyntax)
	case w.Kind == nil || *w.Kind == "":
		return nil, fmt.Errorf("%w: no kind", ErrSyntax)
	case w.Prev == nil:
		return nil, fmt.Errorf("%w: no prev", ErrSyntax)
	}
	r := &Record{Kind: Kind(*w.Kind), Log: *w.Log, Call: w.Call, Env: w.Env, Tool: w.Tool,
		Args: w.Args, Labels: w.Labels, Decision: w.Decision, Code: w.Code, Stage: w.Stage,
		Rule: w.Rule, Reason: w.Reason, PolicyVersion: w.Policy, Approver: w.Approver,
		Grant: w.Grant, Note: w.Note, Outcome: w.Outcome, Error: w.Error,
		Control: w.Control, Checkpoint: w.Checkpoint}
	var err error
	if r.Seq, err = strconv.ParseUint(string(*w.Seq), 10, 64); err != nil {
		return nil, fmt.Errorf("%w: seq %s", ErrSyntax, *w.Seq)
	}
	if r.Time, err = time.Parse(timeLayout, *w.Time); err != nil {
		return nil, fmt.Errorf("%w: time %q", ErrSyntax, *w.Time)
	}
	if r.Prev, err = ParseHash(*w.Prev); err != nil {
		return nil, fmt.Errorf("%w: prev: %v", ErrSyntax, err)
	}
	if w.Principal != nil {
		r.Principal = Principal(*w.Principal)
	}
	for _, s := range w.Shadow {
		r.Shadow = append(r.Shadow, Shadow(s))
	}
	if r.Estimate, err = parseCosts(w.Estimate); err != nil {
		return nil, err
	}
	if r.Actual, err = parseCosts(w.Actual); err != nil {
		return nil, err
	}
	if w.Duration != nil {
		n, err := strconv.ParseInt(string(*w.Duration), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: duration_ns %s", ErrSyntax, *w.Duration)
		}
		r.Duration = time.Duration(n)
	}
	if r.Args != nil {
		r.Args = normalize(r.Args).(map[string]any)
	}
	// The line must be the canonical encoding of what it holds.
	var buf []byte
	if scratch != nil {
		buf = (*scratch)[:0]
	}
	buf, err = r.AppendJSON(buf)
	if scratch != nil {
		*scratch = buf
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if !bytes.Equal(buf, line) {
		return nil, fmt.Errorf("%w: not in canonical form at byte %d", ErrSyntax, mismatch(buf, line))
	}
	return r, nil
}

func mismatch(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

func parseCosts(ws []wireCost) ([]Cost, error) {
	if ws == nil {
		return nil, nil
	}
	cs := make([]Cost, len(ws))
	for i, w := range ws {
		n, err := strconv.ParseInt(string(w.Micros), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: cost micros %q", ErrSyntax, w.Micros)
		}
		cs[i] = Cost{Unit: w.Unit, Micros: n}
	}
	return cs, nil
}

// normalize turns json.Number values into int64 when they are integers
// that fit, float64 otherwise.
func normalize(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = normalize(v[i])
		}
		return v
	case map[string]any:
		for k := range v {
			v[k] = normalize(v[k])
		}
		return v
	}
	return v
}
