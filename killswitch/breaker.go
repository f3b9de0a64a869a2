package killswitch

import (
	"errors"
	"fmt"
	"path"
	"sync"
	"time"
)

// Outcome is what a breaker observes of one call.
type Outcome uint8

// The outcomes a breaker counts.
const (
	// Success is a call that ran and returned no error.
	Success Outcome = iota + 1
	// Failure is a call that ran and returned an error or panicked.
	Failure
	// Denied is a call the guard refused (for any reason but the kill
	// switch itself).
	Denied
)

// String returns "success", "failure" or "denied".
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Failure:
		return "failure"
	case Denied:
		return "denied"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// Settings are a breaker's thresholds. A zero threshold is off, so the zero
// Settings never trip.
type Settings struct {
	// Name names the breaker in trips ("breaker:NAME"); empty means
	// "breaker".
	Name string
	// Tools limits the calls counted to these tool names or path.Match
	// patterns; empty counts every tool.
	Tools []string
	// Match, when set, decides which tools count instead of Tools (the
	// guard passes the policy's glob matcher for breakers declared there).
	Match func(tool string) bool

	// ConsecutiveFailures trips an agent at that many failures in a row
	// (denials do not break the row; a success does).
	ConsecutiveFailures int
	// ErrorRate trips an agent when failures/(successes+failures) over
	// Window reaches it, once at least MinCalls calls ran in the window.
	// Between 0 and 1.
	ErrorRate float64
	// MinCalls is the floor of calls under which ErrorRate does not apply;
	// zero means 1.
	MinCalls int
	// Window is the span of ErrorRate; zero means one minute.
	Window time.Duration

	// DeniesPerMinute trips an agent when it has more denials than this
	// in the last minute.
	DeniesPerMinute int
	// CallsPerMinute trips an agent when it made more calls (run or
	// denied) than this in the last minute.
	CallsPerMinute int
	// SpendPerMinute trips an agent when what it spent in the last minute
	// is more than this many micro-units of SpendUnit. Callers pass spend
	// in that unit to Observe.
	SpendPerMinute int64
	// SpendUnit names the unit of SpendPerMinute ("USD"); it is required
	// when SpendPerMinute is set.
	SpendUnit string
}

func (s *Settings) validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"ConsecutiveFailures", int64(s.ConsecutiveFailures)}, {"MinCalls", int64(s.MinCalls)},
		{"DeniesPerMinute", int64(s.DeniesPerMinute)}, {"CallsPerMinute", int64(s.CallsPerMinute)},
		{"SpendPerMinute", s.SpendPerMinute}, {"Window", int64(s.Window)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%d)", f.name, f.v))
		}
	}
	if !(s.ErrorRate >= 0 && s.ErrorRate <= 1) {
		errs = append(errs, fmt.Errorf("ErrorRate %v is not between 0 and 1", s.ErrorRate))
	}
	if s.SpendPerMinute > 0 && s.SpendUnit == "" {
		errs = append(errs, errors.New("SpendPerMinute is set without SpendUnit"))
	}
	for _, p := range s.Tools {
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("tool pattern %q: %v", p, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("killswitch: breaker %q: %w", s.Name, err)
	}
	return nil
}

// Breaker trips the scope of an agent on a Switch when the agent's calls
// cross one of its thresholds. Each agent is counted on its own: one
// agent's calls never trip another. Counts are exact under concurrent
// Observe calls. A Breaker is safe for concurrent use.
//
// Windows slide: an observation counts while it is younger than the window
// at the time of the latest observation of the same agent. Memory is
// proportional to the agents seen and their observations in a window.
type Breaker struct {
	sw     *Switch
	s      Settings
	who    string
	agents sync.Map // agent name → *agentState
}

// NewBreaker returns a breaker with settings s that trips agents on sw.
func NewBreaker(sw *Switch, s Settings) (*Breaker, error) {
	if sw == nil {
		return nil, errors.New("killswitch: breaker: nil Switch")
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if s.Name == "" {
		s.Name = "breaker"
	}
	if s.Window == 0 {
		s.Window = time.Minute
	}
	if s.MinCalls == 0 {
		s.MinCalls = 1
	}
	s.Tools = append([]string(nil), s.Tools...)
	return &Breaker{sw: sw, s: s, who: "breaker:" + s.Name}, nil
}

// Settings returns the breaker's settings, with defaults filled in.
func (b *Breaker) Settings() Settings { return b.s }

func (b *Breaker) counts(tool string) bool {
	if b.s.Match != nil {
		return b.s.Match(tool)
	}
	if len(b.s.Tools) == 0 {
		return true
	}
	for _, p := range b.s.Tools {
		if ok, _ := path.Match(p, tool); ok {
			return true
		}
	}
	return false
}

// Observe counts one call of agent to tool that ended with outcome o at
// time at, having spent spend micro-units of the breaker's SpendUnit. When
// the call crosses a threshold, it trips Scope{Agent: agent} on the switch
// (unless it is tripped already), resets the agent's counts and returns
// true. Calls without an agent, or to tools the breaker does not watch,
// are not counted. A trip's hook failures are reported through the
// switch's Options.OnEvent.
func (b *Breaker) Observe(agent, tool string, o Outcome, spend int64, at time.Time) bool {
	if agent == "" || !b.counts(tool) || o < Success || o > Denied {
		return false
	}
	if spend < 0 {
		spend = 0
	}
	st := b.state(agent)
	st.mu.Lock()
	why := st.observe(&b.s, o, spend, at)
	if why != "" {
		st.reset()
	}
	st.mu.Unlock()
	if why == "" {
		return false
	}
	scope := Scope{Agent: agent}
	if _, on := b.sw.Lookup(scope); on {
		return false
	}
	b.sw.Trip(scope, b.who, fmt.Sprintf("breaker %q: %s", b.s.Name, why)) // hooks report through OnEvent
	return true
}

// Counts is what a breaker holds for one agent.
type Counts struct {
	Consecutive int   // failures in a row
	Calls       int   // calls in the last minute
	Denials     int   // denials in the last minute
	Spend       int64 // micro-units spent in the last minute
	Successes   int   // successes in the error-rate window
	Failures    int   // failures in the error-rate window
}

// Counts returns agent's counts as of now.
func (b *Breaker) Counts(agent string, now time.Time) Counts {
	v, ok := b.agents.Load(agent)
	if !ok {
		return Counts{}
	}
	st := v.(*agentState)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.minute.prune(now, time.Minute)
	st.rate.prune(now, b.s.Window)
	return Counts{
		Consecutive: st.consecutive,
		Calls:       st.minute.calls, Denials: st.minute.denials, Spend: st.minute.spend,
		Successes: st.rate.successes, Failures: st.rate.failures,
	}
}

func (b *Breaker) state(agent string) *agentState {
	if v, ok := b.agents.Load(agent); ok {
		return v.(*agentState)
	}
	v, _ := b.agents.LoadOrStore(agent, new(agentState))
	return v.(*agentState)
}

type agentState struct {
	mu          sync.Mutex
	consecutive int
	minute      window // calls, denials and spend over a minute
	rate        window // successes and failures over Settings.Window
}

func (st *agentState) reset() {
	st.consecutive = 0
	st.minute = window{}
	st.rate = window{}
}

// observe counts one observation and returns why it trips, or "".
func (st *agentState) observe(s *Settings, o Outcome, spend int64, at time.Time) string {
	ob := obs{at: at, o: o, spend: spend}
	st.minute.prune(at, time.Minute)
	st.minute.add(ob)
	if o != Denied && s.ErrorRate > 0 {
		st.rate.prune(at, s.Window)
		st.rate.add(ob)
	}
	switch o {
	case Failure:
		st.consecutive++
	case Success:
		st.consecutive = 0
	}
	switch {
	case s.ConsecutiveFailures > 0 && o == Failure && st.consecutive >= s.ConsecutiveFailures:
		return fmt.Sprintf("%d consecutive failures (limit %d)", st.consecutive, s.ConsecutiveFailures)
	case s.ErrorRate > 0 && o == Failure && st.rate.successes+st.rate.failures >= s.MinCalls &&
		float64(st.rate.failures) >= s.ErrorRate*float64(st.rate.successes+st.rate.failures):
		return fmt.Sprintf("error rate %d/%d over %v reached %g", st.rate.failures, st.rate.successes+st.rate.failures, s.Window, s.ErrorRate)
	case s.DeniesPerMinute > 0 && st.minute.denials > s.DeniesPerMinute:
		return fmt.Sprintf("%d denials in a minute (limit %d)", st.minute.denials, s.DeniesPerMinute)
	case s.CallsPerMinute > 0 && st.minute.calls > s.CallsPerMinute:
		return fmt.Sprintf("%d calls in a minute (limit %d)", st.minute.calls, s.CallsPerMinute)
	case s.SpendPerMinute > 0 && st.minute.spend > s.SpendPerMinute:
		return fmt.Sprintf("spent %s %s in a minute (limit %s)", micros(st.minute.spend), s.SpendUnit, micros(s.SpendPerMinute))
	}
	return ""
}

// micros formats an amount of micro-units as a decimal.
func micros(m int64) string {
	sign := ""
	if m < 0 {
		sign, m = "-", -m
	}
	s := fmt.Sprintf("%s%d.%06d", sign, m/1e6, m%1e6)
	for s[len(s)-1] == '0' {
		s = s[:len(s)-1]
	}
	if s[len(s)-1] == '.' {
		s = s[:len(s)-1]
	}
	return s
}

type obs struct {
	at    time.Time
	o     Outcome
	spend int64
}

// window is a queue of observations with running sums.
type window struct {
	q                   []obs
	head                int
	calls, denials      int
	successes, failures int
	spend               int64
}

func (w *window) add(o obs) {
	w.q = append(w.q, o)
	w.apply(o, 1)
}

func (w *window) apply(o obs, sign int) {
	w.calls += sign
	switch o.o {
	case Denied:
		w.denials += sign
	case Success:
		w.successes += sign
	case Failure:
		w.failures += sign
	}
	w.spend += int64(sign) * o.spend
}

// prune drops observations at least width older than now.
func (w *window) prune(now time.Time, width time.Duration) {
	for w.head < len(w.q) && now.Sub(w.q[w.head].at) >= width {
		w.apply(w.q[w.head], -1)
		w.q[w.head] = obs{}
		w.head++
	}
	if w.head == len(w.q) {
		w.q, w.head = w.q[:0], 0
	} else if w.head > 64 && w.head > len(w.q)/2 {
		n := copy(w.q, w.q[w.head:])
		w.q, w.head = w.q[:n], 0
	}
}
