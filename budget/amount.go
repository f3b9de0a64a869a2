package budget

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/hardstop-labs/agentguard/internal/amount"
)

// ErrAmount is the sentinel of every amount that cannot be parsed or
// combined; the error returned unwraps to it.
var ErrAmount = errors.New("budget: invalid amount")

// Amount is an exact, non-negative quantity of a unit, in integer millionths
// of the unit (micro-units): Amount{Micros: 1_500_000, Unit: "USD"} is
// 1.5 USD. Ledgers never use floats.
//
// The zero value is nothing of no unit. Amount is a value type and safe for
// concurrent use.
type Amount struct {
	Micros int64  `json:"micros"`
	Unit   string `json:"unit"`
}

// MaxMicros is the largest amount in micro-units; arithmetic saturates at it.
const MaxMicros = math.MaxInt64

// amountError builds an error that unwraps to ErrAmount.
func amountError(s, format string, args ...any) error {
	return fmt.Errorf("%w %q: %s", ErrAmount, s, fmt.Sprintf(format, args...))
}

// ParseAmount parses an amount written as a decimal number, an optional
// multiplier suffix (K = thousand, M = million, G = billion), white space and
// a unit: "25.00 USD", "1.5M tokens", "0.000002 USD", "300 tokens".
//
// A unit starts with a letter and holds letters, digits, '_', '-' or '.', at
// most 32 characters. The number is written with digits and at most one
// decimal point; signs, exponents, "NaN", "Inf" and separators are errors, as
// are amounts finer than a micro-unit ("0.0000001 USD") and amounts above
// MaxMicros micro-units. The policy package checks the amounts of a policy
// file with the same parser, so a policy it loads has amounts this accepts.
func ParseAmount(s string) (Amount, error) {
	m, unit, err := amount.Parse(s)
	if err != nil {
		return Amount{}, amountError(s, "%v", err)
	}
	return Amount{Micros: m, Unit: unit}, nil
}

// Check reports whether a is a valid amount: non-negative, with a valid unit.
func (a Amount) Check() error {
	if a.Micros < 0 {
		return amountError(a.String(), "negative")
	}
	if err := amount.CheckUnit(a.Unit); err != nil {
		return amountError(a.String(), "%v", err)
	}
	return nil
}

// String formats a as ParseAmount reads it, with no trailing zeros:
// "25 USD", "1.5 USD", "0.000002 USD", "1500000 tokens".
func (a Amount) String() string {
	m := a.Micros
	var b []byte
	if m < 0 {
		b = append(b, '-')
		if m == math.MinInt64 {
			return "-9223372036854.775808 " + a.Unit
		}
		m = -m
	}
	b = strconv.AppendInt(b, m/1e6, 10)
	if f := m % 1e6; f != 0 {
		fs := strconv.FormatInt(f+1e6, 10)[1:] // six digits, leading zeros kept
		b = append(b, '.')
		b = append(b, strings.TrimRight(fs, "0")...)
	}
	b = append(b, ' ')
	b = append(b, a.Unit...)
	return string(b)
}

// Float returns a in whole units, for display and for the policy's usage
// variable; it may round.
func (a Amount) Float() float64 { return float64(a.Micros) / 1e6 }

// Add returns a+b, saturating at MaxMicros instead of wrapping. An amount of
// no unit with no micros takes the other's unit; otherwise the units must
// match.
func (a Amount) Add(b Amount) (Amount, error) {
	u, err := sameUnit(a, b)
	if err != nil {
		return Amount{}, err
	}
	if a.Micros < 0 || b.Micros < 0 {
		return Amount{}, amountError(a.String()+" + "+b.String(), "negative")
	}
	return Amount{Micros: addSat(a.Micros, b.Micros), Unit: u}, nil
}

// Sub returns a-b, saturating at zero: amounts are never negative. The
// units must match as for Add.
func (a Amount) Sub(b Amount) (Amount, error) {
	u, err := sameUnit(a, b)
	if err != nil {
		return Amount{}, err
	}
	if a.Micros < 0 || b.Micros < 0 {
		return Amount{}, amountError(a.String()+" - "+b.String(), "negative")
	}
	return Amount{Micros: subSat(a.Micros, b.Micros), Unit: u}, nil
}

func sameUnit(a, b Amount) (string, error) {
	switch {
	case a.Unit == b.Unit:
		return a.Unit, nil
	case a.Unit == "" && a.Micros == 0:
		return b.Unit, nil
	case b.Unit == "" && b.Micros == 0:
		return a.Unit, nil
	}
	return "", fmt.Errorf("%w: units differ: %s and %s", ErrAmount, a, b)
}

// addSat adds two non-negative int64s, saturating at MaxInt64.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// subSat subtracts two non-negative int64s, saturating at zero.
func subSat(a, b int64) int64 {
	if b >= a {
		return 0
	}
	return a - b
}
