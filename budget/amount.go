package budget

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
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

// maxUnitLen bounds a unit's length.
const maxUnitLen = 32

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
// MaxMicros micro-units.
func ParseAmount(s string) (Amount, error) {
	in := s
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		if s == "" {
			return Amount{}, amountError(in, "empty")
		}
		return Amount{}, amountError(in, "missing unit (write it as \"25.00 USD\")")
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if err := checkUnit(unit); err != nil {
		return Amount{}, amountError(in, "%v", err)
	}
	exp := 6 // micro-units
	switch num[len(num)-1] {
	case 'K', 'k':
		exp += 3
		num = num[:len(num)-1]
	case 'M':
		exp += 6
		num = num[:len(num)-1]
	case 'G', 'B':
		exp += 9
		num = num[:len(num)-1]
	}
	whole, frac, dot := strings.Cut(num, ".")
	if whole == "" && frac == "" {
		return Amount{}, amountError(in, "missing number")
	}
	if dot && frac == "" {
		return Amount{}, amountError(in, "missing digits after the decimal point")
	}
	if !digits(whole) || !digits(frac) {
		if strings.HasPrefix(num, "-") {
			return Amount{}, amountError(in, "negative")
		}
		return Amount{}, amountError(in, "not a decimal number")
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > exp {
		return Amount{}, amountError(in, "more than %d decimals: finer than a micro-unit", exp)
	}
	whole = strings.TrimLeft(whole, "0")
	ds := whole + frac + strings.Repeat("0", exp-len(frac))
	ds = strings.TrimLeft(ds, "0")
	if ds == "" {
		return Amount{Unit: unit}, nil
	}
	if len(ds) > 19 {
		return Amount{}, amountError(in, "too large")
	}
	v, err := strconv.ParseInt(ds, 10, 64)
	if err != nil {
		return Amount{}, amountError(in, "too large")
	}
	return Amount{Micros: v, Unit: unit}, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkUnit reports whether u is a valid unit.
func checkUnit(u string) error {
	if u == "" {
		return errors.New("missing unit")
	}
	if len(u) > maxUnitLen {
		return fmt.Errorf("unit longer than %d characters", maxUnitLen)
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '_' || c == '-' || c == '.'):
		default:
			return fmt.Errorf("bad unit %q: a letter, then letters, digits, '_', '-' or '.'", u)
		}
	}
	return nil
}

// Check reports whether a is a valid amount: non-negative, with a valid unit.
func (a Amount) Check() error {
	if a.Micros < 0 {
		return amountError(a.String(), "negative")
	}
	if err := checkUnit(a.Unit); err != nil {
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
