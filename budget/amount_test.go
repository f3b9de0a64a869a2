package budget_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/hardstop-labs/agentguard/budget"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in   string
		want budget.Amount
	}{
		{"25.00 USD", budget.Amount{Micros: 25_000_000, Unit: "USD"}},
		{"1.5M tokens", budget.Amount{Micros: 1_500_000_000_000, Unit: "tokens"}},
		{"0.000002 USD", budget.Amount{Micros: 2, Unit: "USD"}},
		{"  300 tokens ", budget.Amount{Micros: 300_000_000, Unit: "tokens"}},
		{".5 USD", budget.Amount{Micros: 500_000, Unit: "USD"}},
		{"2K tokens", budget.Amount{Micros: 2_000_000_000, Unit: "tokens"}},
		{"0.000000001G tokens", budget.Amount{Micros: 1_000_000, Unit: "tokens"}},
		{"0.000000000000001G tokens", budget.Amount{Micros: 1, Unit: "tokens"}},
		{"1.0000000 USD", budget.Amount{Micros: 1_000_000, Unit: "USD"}},
		{"0 USD", budget.Amount{Unit: "USD"}},
		{"9223372036854.775807 X", budget.Amount{Micros: math.MaxInt64, Unit: "X"}},
		{"007 gpu-hours", budget.Amount{Micros: 7_000_000, Unit: "gpu-hours"}},
	}
	for _, tt := range tests {
		got, err := budget.ParseAmount(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseAmount(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseAmountErrors(t *testing.T) {
	tests := []struct{ in, msg string }{
		{"", "empty"},
		{"25", "missing unit"},
		{"-5 USD", "negative"},
		{"NaN USD", "not a decimal"},
		{"Inf USD", "not a decimal"},
		{"+5 USD", "not a decimal"},
		{"1e3 USD", "not a decimal"},
		{"1,000 USD", "not a decimal"},
		{"0.0000001 USD", "more than 6 decimals"},
		{"9223372036854.775808 USD", "too large"},
		{"99999999999999999999 USD", "too large"},
		{"10000000G tokens", "too large"},
		{"5. USD", "missing digits"},
		{"M tokens", "missing number"},
		{"5 US$", "bad unit"},
		{"5 9x", "bad unit"},
		{"5 " + strings.Repeat("x", 33), "longer than"},
		{"1.2.3 USD", "not a decimal"},
	}
	for _, tt := range tests {
		_, err := budget.ParseAmount(tt.in)
		if err == nil || !errors.Is(err, budget.ErrAmount) || !strings.HasPrefix(err.Error(), "budget: ") || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseAmount(%q) error = %v, want a budget.ErrAmount saying %q", tt.in, err, tt.msg)
		}
	}
}

func TestAmountString(t *testing.T) {
	tests := []struct {
		a    budget.Amount
		want string
	}{
		{budget.Amount{Micros: 25_000_000, Unit: "USD"}, "25 USD"},
		{budget.Amount{Micros: 1_500_000, Unit: "USD"}, "1.5 USD"},
		{budget.Amount{Micros: 2, Unit: "USD"}, "0.000002 USD"},
		{budget.Amount{Micros: 1_000_010, Unit: "USD"}, "1.00001 USD"},
		{budget.Amount{Unit: "tokens"}, "0 tokens"},
	}
	for _, tt := range tests {
		if got := tt.a.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.a, got, tt.want)
		}
	}
}

func TestAmountArithmetic(t *testing.T) {
	usd := func(m int64) budget.Amount { return budget.Amount{Micros: m, Unit: "USD"} }
	if got, err := usd(5).Add(usd(7)); err != nil || got != usd(12) {
		t.Errorf("5+7 = %v, %v", got, err)
	}
	if got, err := usd(math.MaxInt64 - 1).Add(usd(10)); err != nil || got != usd(math.MaxInt64) {
		t.Errorf("Add did not saturate: %v, %v", got, err)
	}
	if got, err := usd(5).Sub(usd(7)); err != nil || got != usd(0) {
		t.Errorf("5-7 = %v, %v, want 0 (saturating)", got, err)
	}
	if got, err := (budget.Amount{}).Add(usd(3)); err != nil || got != usd(3) {
		t.Errorf("zero+3 = %v, %v, want 3 USD", got, err)
	}
	if _, err := usd(5).Add(budget.Amount{Micros: 1, Unit: "EUR"}); !errors.Is(err, budget.ErrAmount) || !strings.Contains(err.Error(), "units differ") {
		t.Errorf("USD+EUR error = %v, want units differ", err)
	}
	if _, err := usd(5).Sub(usd(-1)); !errors.Is(err, budget.ErrAmount) {
		t.Errorf("Sub of a negative amount error = %v, want ErrAmount", err)
	}
	if _, err := usd(-5).Add(usd(1)); !errors.Is(err, budget.ErrAmount) {
		t.Errorf("Add of a negative amount error = %v, want ErrAmount", err)
	}
	if err := usd(-1).Check(); err == nil {
		t.Errorf("Check of a negative amount passed")
	}
	if err := (budget.Amount{Micros: 1}).Check(); err == nil {
		t.Errorf("Check of an amount without unit passed")
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"25.00 USD", "1.5M tokens", "0.000002 USD", "-1 USD", "9223372036854.775807 X", ".5 k", "1e3 USD", "0.0000001 USD"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := budget.ParseAmount(s)
		if err != nil {
			if !errors.Is(err, budget.ErrAmount) || !strings.HasPrefix(err.Error(), "budget: ") {
				t.Fatalf("ParseAmount(%q) error %v is not a budget.ErrAmount", s, err)
			}
			return
		}
		if a.Micros < 0 {
			t.Fatalf("ParseAmount(%q) = %v: negative", s, a)
		}
		if err := a.Check(); err != nil {
			t.Fatalf("ParseAmount(%q) = %v, which fails Check: %v", s, a, err)
		}
		b, err := budget.ParseAmount(a.String())
		if err != nil || b != a {
			t.Fatalf("ParseAmount(%q) = %v; its String %q parses to %v, %v", s, a, a.String(), b, err)
		}
	})
}
