package cluster

import (
	"math"
	"strings"
	"testing"
)

// TestValidateRefusesOverflowingTimings pins M4: timings whose durations
// (or sums) overflow time.Duration are refused, naming the key and range.
func TestValidateRefusesOverflowingTimings(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*DynamicConfig)
		key  string
	}{
		{"loop_wait 2^62", func(c *DynamicConfig) { c.LoopWait, c.RetryTimeout = 1<<62, 1<<62 }, "loop_wait must be in [1, 3600]"},
		{"ttl 9.3e9", func(c *DynamicConfig) { c.TTL = 9300000000 }, "ttl must be in [2, 3600]"},
		{"peer_timeout 1e300", func(c *DynamicConfig) { c.PeerTimeout = 1e300 }, "peer_timeout must be in"},
		{"fence_timeout 1e-300", func(c *DynamicConfig) { c.FenceTimeout = 1e-300 }, "fence_timeout must be in"},
		{"peer_timeout NaN", func(c *DynamicConfig) { c.PeerTimeout = math.NaN() }, "peer_timeout must be in"},
		{"primary_start_timeout huge", func(c *DynamicConfig) { c.PrimaryStartTimeout = math.MaxInt }, "primary_start_timeout must be in"},
		{"synchronous_node_count huge", func(c *DynamicConfig) { c.SynchronousNodeCount = math.MaxInt }, "synchronous_node_count must be in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultDynamicConfig()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, tc.key)
			}
		})
	}
	if err := DefaultDynamicConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
}
