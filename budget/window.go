package budget

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// windowKind says how a Window cuts time.
type windowKind uint8

const (
	kindTotal   windowKind = iota // one window for all time
	kindDay                       // calendar days in a location
	kindHour                      // clock hours (UTC)
	kindRolling                   // the last d before now
)

// Window is the period a cap counts spend over: all time (Total), a
// calendar day in UTC or a named time zone (Day), a clock hour (Hour), or
// the rolling duration just before now (Rolling).
//
// The zero value is Total: spend is never forgotten, the strictest choice.
// Window is a value type and safe for concurrent use.
type Window struct {
	kind windowKind
	d    time.Duration
	loc  *time.Location
}

// Total returns the window that never resets.
func Total() Window { return Window{} }

// Day returns calendar days in loc (UTC when nil). Days start at local
// midnight, so a day across a daylight-saving change lasts 23 or 25 hours.
func Day(loc *time.Location) Window {
	if loc == nil {
		loc = time.UTC
	}
	return Window{kind: kindDay, loc: loc}
}

// Hour returns clock hours, starting on the hour in UTC.
func Hour() Window { return Window{kind: kindHour} }

// Rolling returns the window of length d ending now. d must be positive
// (ParseWindow and the constructors of Ledger check it).
func Rolling(d time.Duration) Window { return Window{kind: kindRolling, d: d} }

// ParseWindow parses a window as written in a policy file: "total" or ""
// (all time), "day" (calendar days in UTC), "day:Europe/Paris" (calendar
// days in an IANA zone), "hour", or a Go duration such as "24h" or "90m"
// (rolling, at least one second).
func ParseWindow(s string) (Window, error) {
	switch {
	case s == "" || s == "total":
		return Total(), nil
	case s == "day":
		return Day(time.UTC), nil
	case s == "hour":
		return Hour(), nil
	case strings.HasPrefix(s, "day:"):
		name := s[len("day:"):]
		if name == "" {
			return Window{}, fmt.Errorf("budget: window %q: missing time zone after \"day:\"", s)
		}
		loc, err := time.LoadLocation(name)
		if err != nil {
			return Window{}, fmt.Errorf("budget: window %q: unknown time zone: %w", s, err)
		}
		return Day(loc), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Window{}, fmt.Errorf("budget: window %q: want total, day, day:<zone>, hour or a duration such as 24h", s)
	}
	w := Rolling(d)
	if err := w.check(); err != nil {
		return Window{}, err
	}
	return w, nil
}

func (w Window) check() error {
	if w.kind == kindRolling && w.d < time.Second {
		return fmt.Errorf("budget: window %s: a rolling window must be at least 1s", w.d)
	}
	if w.kind > kindRolling {
		return errors.New("budget: invalid window")
	}
	return nil
}

// String returns the window as ParseWindow reads it.
func (w Window) String() string {
	switch w.kind {
	case kindDay:
		if w.loc == nil || w.loc == time.UTC {
			return "day"
		}
		return "day:" + w.loc.String()
	case kindHour:
		return "hour"
	case kindRolling:
		return w.d.String()
	}
	return "total"
}

// Start returns the start of the window that contains t: charges made
// before it are outside. It is the zero time for Total.
func (w Window) Start(t time.Time) time.Time {
	switch w.kind {
	case kindDay:
		loc := w.loc
		if loc == nil {
			loc = time.UTC
		}
		lt := t.In(loc)
		y, m, d := lt.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	case kindHour:
		return t.UTC().Truncate(time.Hour)
	case kindRolling:
		return t.Add(-w.d)
	}
	return time.Time{}
}

// Reset returns when the spend counted at t is next forgotten, and whether
// waiting for it can help: the next midnight for Day, the next hour for
// Hour, t plus the window for Rolling (by then everything charged up to t
// has left the window), and never for Total.
func (w Window) Reset(t time.Time) (time.Time, bool) {
	switch w.kind {
	case kindDay:
		loc := w.loc
		if loc == nil {
			loc = time.UTC
		}
		lt := t.In(loc)
		y, m, d := lt.Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, loc), true
	case kindHour:
		return t.UTC().Truncate(time.Hour).Add(time.Hour), true
	case kindRolling:
		return t.Add(w.d), true
	}
	return time.Time{}, false
}
