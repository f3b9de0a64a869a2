package budget_test

import (
	"testing"

	"github.com/hardstop-labs/agentguard/budget"
	"github.com/hardstop-labs/agentguard/budget/storetest"
)

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func() budget.Store { return budget.NewMem() })
}
