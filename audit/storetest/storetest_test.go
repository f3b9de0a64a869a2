package storetest_test

import (
	"testing"

	"github.com/hardstop-labs/agentguard/audit"
	"github.com/hardstop-labs/agentguard/audit/storetest"
)

func TestMemStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) audit.Store { return new(audit.MemStore) })
}
