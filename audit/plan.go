package audit

import (
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
)

// Plan is what the records of one tool have in common, worked out once by
// a Redactor (Redactor.Plan) rather than for every record: the encoded
// env, tool and labels, the tool's argument keys in the order a line
// writes them with whether each one is secret, and the encoded principal
// of the first call that had one. A Record whose Plan is set is redacted
// and encoded with less work and into exactly the bytes it has without
// one: a record whose env, tool, labels or principal differ from the
// plan's, that has an argument key the plan does not know, or a value
// that needs redaction, takes the general path for that part.
//
// The plan keeps the labels map it is given; the map must not be
// modified afterwards. A Plan is safe for concurrent use.
type Plan struct {
	red       *Redactor
	env, tool string
	labelsMap map[string]string
	envTool   []byte // ,"env":…,"tool":… (only ,"tool":… when env is empty)
	toolOnly  []byte // ,"tool":…, for records without the env (a result)
	labels    []byte // ,"labels":{…}; nil when there are none
	keys      []planKey
	principal atomic.Pointer[planPrincipal]
	missed    atomic.Bool // a record had an argument key not in keys
}

// maxPlanKey is the longest argument key a plan keeps.
const maxPlanKey = 128

// planKey is an argument key of a plan.
type planKey struct {
	name   string
	json   []byte // "name":
	secret bool   // SecretKey(name)
}

// planPrincipal is a principal and its encoding, ,"principal":{…}.
type planPrincipal struct {
	p Principal
	b []byte
}

// Plan returns the plan of a tool's records: their env, tool and labels,
// and the argument keys the tool takes (a struct's fields; more or fewer
// in a record are fine, only slower). Keys longer than 128 bytes are left
// out, so that a plan made from a call's own keys stays small. Its
// redaction shortcut is taken only for records appended to a log whose
// Redactor is r (another log redacts them in full); its encodings serve
// any log.
func (r *Redactor) Plan(env, tool string, labels map[string]string, keys []string) *Plan {
	p := &Plan{red: r, env: env, tool: tool}
	p.envTool = appendField(appendField(nil, `,"env":`, env), `,"tool":`, tool)
	p.toolOnly = appendField(nil, `,"tool":`, tool)
	if len(labels) > 0 {
		p.labelsMap = labels
		p.labels = appendLabels(nil, r.Labels(labels))
	}
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool { return len(k) > maxPlanKey })
	slices.Sort(keys)
	keys = slices.Compact(keys)
	for _, k := range keys {
		p.keys = append(p.keys, planKey{name: k, json: append(appendString(nil, k), ':'), secret: r.SecretKey(k)})
	}
	return p
}

// Matches reports whether a record of env and labels (the same map, or
// none on both sides) is one the plan was made for; a plan of nil matches
// nothing.
func (p *Plan) Matches(env string, labels map[string]string) bool {
	if p == nil || env != p.env {
		return false
	}
	if len(labels) == 0 {
		return p.labelsMap == nil
	}
	return p.sameLabels(labels)
}

// Missed reports whether a record with an argument key the plan does not
// know (and could: not one longer than 128 bytes) was redacted or
// encoded with it; Extend makes a plan that knows it.
func (p *Plan) Missed() bool { return p.missed.Load() }

// NumKeys returns the number of argument keys the plan knows.
func (p *Plan) NumKeys() int { return len(p.keys) }

// Extend returns a plan like p that also knows the keys of args.
func (p *Plan) Extend(args map[string]any) *Plan {
	keys := make([]string, 0, len(p.keys)+len(args))
	for _, k := range p.keys {
		keys = append(keys, k.name)
	}
	for k := range args {
		keys = append(keys, k)
	}
	return p.red.Plan(p.env, p.tool, p.labelsMap, keys)
}

// appendEnvTool appends the env and tool fields when they are the plan's
// (or the env is empty and the tool the plan's), and reports whether it
// did.
func (p *Plan) appendEnvTool(b []byte, env, tool string) ([]byte, bool) {
	if tool != p.tool || tool == "" {
		return b, false
	}
	switch env {
	case p.env:
		return append(b, p.envTool...), true
	case "":
		return append(b, p.toolOnly...), true
	}
	return b, false
}

// sameLabels reports whether labels is the plan's map.
func (p *Plan) sameLabels(labels map[string]string) bool {
	return p.labelsMap != nil && sameMap(labels, p.labelsMap)
}

// sameMap reports whether a and b are the same map (not only equal).
func sameMap[M ~map[K]V, K comparable, V any](a, b M) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// appendPrincipal appends ,"principal":{…} for pr, which is not zero,
// from the plan's encoding when it is the plan's principal. The first
// principal encoded becomes the plan's.
func (p *Plan) appendPrincipal(b []byte, pr Principal) []byte {
	if pp := p.principal.Load(); pp != nil {
		if pp.p == pr {
			return append(b, pp.b...)
		}
		return appendPrincipal(b, pr)
	}
	start := len(b)
	b = appendPrincipal(b, pr)
	p.principal.CompareAndSwap(nil, &planPrincipal{p: pr, b: slices.Clone(b[start:])})
	return b
}

// appendArgs appends ,"args":{…} for args (not empty: Args, or the
// Reader of a record whose Args is nil) when every key of args is one of
// the plan's, and reports whether it did: the keys are in order already
// and encoded. It does not append anything when a key is unknown or a
// value has no JSON form (the general path then reports the same error
// as without a plan).
func (p *Plan) appendArgs(b []byte, args ArgReader) ([]byte, bool) {
	start := len(b)
	b = append(b, `,"args":{`...)
	n := 0
	for i := range p.keys {
		k := &p.keys[i]
		v, ok := args.Arg(k.name)
		if !ok {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = append(b, k.json...)
		var err error
		if s, ok := v.(string); ok {
			b = appendString(b, s)
		} else if b, err = appendValue(b, v, 1); err != nil {
			return b[:start], false
		}
	}
	if n != args.Len() {
		p.miss(args.Args())
		return b[:start], false
	}
	return append(b, '}'), true
}

// Clean reports whether the plan's Redactor would find nothing to
// redact in args and no secret (Redactor.Args would return them
// unchanged, with no secrets), answering from the plan's keys with a
// quick scan of each value. A true answer is certain; a false one means
// only that the map must be redacted to know. It allocates nothing, and
// asks args for its map only when a key is not the plan's. A nil plan
// answers false.
func (p *Plan) Clean(args ArgReader) bool {
	return p != nil && p.cleanArgs(args)
}

// cleanArgs reports whether Args would return args unchanged and find no
// secrets, answering from the plan's keys: false when a key is unknown,
// a secret key holds a value that is not null, a boolean or a mark, or a
// value may need redaction. It asks a Reader for its map only when a key
// is unknown.
func (p *Plan) cleanArgs(args ArgReader) bool {
	n := 0
	for i := range p.keys {
		k := &p.keys[i]
		v, ok := args.Arg(k.name)
		if !ok {
			continue
		}
		n++
		if k.secret && !harmless(v) && !isMark(v) {
			return false
		}
		if s, ok := v.(string); ok {
			if !p.red.CleanString(s) {
				return false
			}
		} else if !p.red.Clean(v) {
			return false
		}
	}
	if n != args.Len() {
		p.miss(args.Args())
		return false
	}
	return true
}

// miss notes a record whose args have a key the plan does not know: one
// it could know (Extend would add it), not one too long to keep.
func (p *Plan) miss(args map[string]any) {
	if p.missed.Load() {
		return
	}
	for k := range args {
		if len(k) > maxPlanKey {
			continue
		}
		if _, found := slices.BinarySearchFunc(p.keys, k, func(pk planKey, k string) int { return strings.Compare(pk.name, k) }); !found {
			p.missed.Store(true)
			return
		}
	}
}

// recordArgs returns r's arguments redacted and the secrets found in them,
// as Args does, through r.Plan when it is this Redactor's and says the
// arguments are clean. r.Args must not be nil.
func (red *Redactor) recordArgs(r *Record) (map[string]any, []string) {
	if p := r.Plan; p != nil && p.red == red && p.cleanArgs(mapArgs(r.Args)) {
		return r.Args, nil
	}
	return red.Args(r.Args)
}

// readerClean reports whether the arguments of r's Reader (r.Args is
// nil) need no redaction, asking r.Plan when it is this Redactor's:
// false means that the map must be redacted.
func (red *Redactor) readerClean(r *Record) bool {
	p := r.Plan
	return p != nil && p.red == red && p.cleanArgs(r.Reader)
}
