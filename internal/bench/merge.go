package bench

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// Part is a separate, later run whose clusters were merged into a report
// (regent-bench -merge): for example the measurements of one system in
// one mode, run again without rerunning everything else.
type Part struct {
	Options Options
	Env     Environment
	Started time.Time
	Elapsed time.Duration
	// Clusters names the merged clusters ("defaults regent sync").
	Clusters []string
}

// clusterKey names a cluster result as "profile system mode".
func clusterKey(c *ClusterResult) string {
	mode := "async"
	if c.Sync {
		mode = "sync"
	}
	return fmt.Sprintf("%s %s %s", c.Profile, c.System, mode)
}

// Merge adds the clusters of add, a separate run, to base: each replaces
// base's cluster of the same profile, system and mode, or is added. The
// run is recorded in base.Parts and each merged cluster points at it.
// base's options (profiles, repetitions) stay those of the main run;
// profiles only add measured are appended.
func Merge(base, add *Report) {
	part := Part{Options: add.Options, Env: add.Env, Started: add.Started, Elapsed: add.Elapsed}
	n := len(base.Parts) + 1
	for _, c := range add.Clusters {
		c.Part = n
		part.Clusters = append(part.Clusters, clusterKey(c))
		if i := slices.IndexFunc(base.Clusters, func(b *ClusterResult) bool { return clusterKey(b) == clusterKey(c) }); i >= 0 {
			base.Clusters[i] = c
		} else {
			base.Clusters = append(base.Clusters, c)
		}
		if !slices.Contains(base.Options.Profiles, c.Profile) {
			base.Options.Profiles = append(base.Options.Profiles, c.Profile)
		}
		if !slices.Contains(base.Options.Systems, c.System) {
			base.Options.Systems = append(base.Options.Systems, c.System)
		}
	}
	base.Parts = append(base.Parts, part)
	// The order a full run has: profile, system, async before sync.
	idx := func(list []string, s string) int { return slices.Index(list, s) }
	sort.SliceStable(base.Clusters, func(i, j int) bool {
		a, b := base.Clusters[i], base.Clusters[j]
		if pa, pb := idx(base.Options.Profiles, a.Profile), idx(base.Options.Profiles, b.Profile); pa != pb {
			return pa < pb
		}
		if sa, sb := idx(base.Options.Systems, a.System), idx(base.Options.Systems, b.System); sa != sb {
			return sa < sb
		}
		return !a.Sync && b.Sync
	})
}
