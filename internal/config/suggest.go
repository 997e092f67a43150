package config

import (
	"fmt"
	"slices"

	"github.com/regent-ha/regent/internal/cluster"
)

// MisspeltTags warns about custom tags whose name is close to a tag Regent
// acts on. Patroni accepts any tag, so they are kept and published as they
// are; but a "nofailovr: true" meant as nofailover leaves the member
// eligible for promotion, and the operator should hear about it.
func MisspeltTags(t cluster.Tags) []string {
	known := cluster.KnownTagNames()
	var out []string
	for name := range t.Custom {
		if c := closest(name, known); c != "" {
			out = append(out, fmt.Sprintf("tags.%s is not a tag Regent acts on (published as a custom tag); did you mean %s?", name, c))
		}
	}
	slices.Sort(out)
	return out
}

// closest returns the candidate nearest to s by edit distance, if it is
// close enough to be a likely misspelling, or "".
func closest(s string, candidates []string) string {
	best, bestDist := "", max(1, min(3, len([]rune(s))/3))+1
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counting an
// adjacent transposition as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
