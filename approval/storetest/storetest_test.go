package storetest_test

import (
	"testing"

	"github.com/hardstop-labs/agentguard/approval"
	"github.com/hardstop-labs/agentguard/approval/storetest"
)

func TestMem(t *testing.T) {
	storetest.Run(t, func(*testing.T) approval.Store { return approval.NewMem() })
}

func TestZeroMem(t *testing.T) {
	storetest.Run(t, func(*testing.T) approval.Store { return new(approval.Mem) })
}
