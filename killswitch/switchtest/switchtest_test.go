package switchtest_test

import (
	"testing"

	"github.com/hardstop-labs/agentguard/killswitch"
	"github.com/hardstop-labs/agentguard/killswitch/switchtest"
)

func TestMem(t *testing.T) {
	switchtest.Run(t, func(*testing.T) killswitch.Store { return new(killswitch.Mem) })
}
