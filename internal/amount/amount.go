// Package amount is the one parser of amounts with a unit ("25.00 USD",
// "1.5M tokens"), shared by package budget, which keeps them, and package
// policy, which checks them when it loads a file: a policy that `agentguard
// policy check` accepts has amounts a budget accepts.
package amount

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxUnitLen bounds a unit's length.
const MaxUnitLen = 32

// Parse parses an amount written as a decimal number, an optional
// multiplier suffix (K or k = thousand, M = million, G or B = billion),
// white space and a unit, into exact micro-units. A unit is as CheckUnit
// wants it. The number is written with digits and at most one decimal
// point; signs, exponents, "NaN", "Inf" and separators are errors, as are
// amounts finer than a micro-unit ("0.0000001 USD") and amounts above the
// largest int64 of micro-units. Errors say what is wrong, without the
// input, for the caller to wrap.
func Parse(s string) (micros int64, unit string, err error) {
	s = strings.TrimSpace(s)
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		if s == "" {
			return 0, "", errors.New("empty")
		}
		return 0, "", errors.New("missing unit (write it as \"25.00 USD\")")
	}
	num, unit := s[:i], strings.TrimSpace(s[i:])
	if err := CheckUnit(unit); err != nil {
		return 0, "", err
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
		return 0, "", errors.New("missing number")
	}
	if dot && frac == "" {
		return 0, "", errors.New("missing digits after the decimal point")
	}
	if !digits(whole) || !digits(frac) {
		if strings.HasPrefix(num, "-") {
			return 0, "", errors.New("negative")
		}
		return 0, "", errors.New("not a decimal number")
	}
	frac = strings.TrimRight(frac, "0")
	if len(frac) > exp {
		return 0, "", fmt.Errorf("more than %d decimals: finer than a micro-unit", exp)
	}
	whole = strings.TrimLeft(whole, "0")
	ds := whole + frac + strings.Repeat("0", exp-len(frac))
	ds = strings.TrimLeft(ds, "0")
	if ds == "" {
		return 0, unit, nil
	}
	if len(ds) > 19 {
		return 0, "", errors.New("too large")
	}
	v, err := strconv.ParseInt(ds, 10, 64)
	if err != nil {
		return 0, "", errors.New("too large")
	}
	return v, unit, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CheckUnit reports whether u is a valid unit: a letter, then letters,
// digits, '_', '-' or '.', at most MaxUnitLen bytes.
func CheckUnit(u string) error {
	if u == "" {
		return errors.New("missing unit")
	}
	if len(u) > MaxUnitLen {
		return fmt.Errorf("unit longer than %d characters", MaxUnitLen)
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
