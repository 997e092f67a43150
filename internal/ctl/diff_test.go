package ctl

import (
	"fmt"
	"strings"
	"testing"
)

func lines(n int, f func(i int) string) string {
	var sb strings.Builder
	for i := 1; i <= n; i++ {
		sb.WriteString(f(i) + "\n")
	}
	return sb.String()
}

func TestUnifiedDiff(t *testing.T) {
	ten := lines(10, func(i int) string { return fmt.Sprintf("k%d: %d", i, i) })
	cases := []struct {
		name, old, new, want string
	}{
		{"identical", "a: 1\nb: 2\n", "a: 1\nb: 2\n", ""},
		{"one change in the middle", "a: 1\nb: 2\nc: 3\n", "a: 1\nb: 5\nc: 3\n",
			"--- current\n+++ new\n@@ -1,3 +1,3 @@\n a: 1\n-b: 2\n+b: 5\n c: 3\n"},
		{"addition at the end", "a: 1\n", "a: 1\nb: 2\n",
			"--- current\n+++ new\n@@ -1 +1,2 @@\n a: 1\n+b: 2\n"},
		{"from empty", "", "a: 1\n",
			"--- current\n+++ new\n@@ -0,0 +1 @@\n+a: 1\n"},
		{"to empty", "a: 1\n", "",
			"--- current\n+++ new\n@@ -1 +0,0 @@\n-a: 1\n"},
		{"context is three lines", ten, strings.Replace(ten, "k5: 5", "k5: 50", 1),
			"--- current\n+++ new\n@@ -2,7 +2,7 @@\n k2: 2\n k3: 3\n k4: 4\n-k5: 5\n+k5: 50\n k6: 6\n k7: 7\n k8: 8\n"},
		{"distant changes make two hunks", ten, strings.Replace(strings.Replace(ten, "k1: 1", "k1: 10", 1), "k10: 10", "k10: 100", 1),
			"--- current\n+++ new\n@@ -1,4 +1,4 @@\n-k1: 1\n+k1: 10\n k2: 2\n k3: 3\n k4: 4\n@@ -7,4 +7,4 @@\n k7: 7\n k8: 8\n k9: 9\n-k10: 10\n+k10: 100\n"},
		{"close changes share a hunk", ten, strings.Replace(strings.Replace(ten, "k2: 2", "k2: 20", 1), "k8: 8", "k8: 80", 1),
			"--- current\n+++ new\n@@ -1,10 +1,10 @@\n k1: 1\n-k2: 2\n+k2: 20\n k3: 3\n k4: 4\n k5: 5\n k6: 6\n k7: 7\n-k8: 8\n+k8: 80\n k9: 9\n k10: 10\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := UnifiedDiff(tc.old, tc.new, "current", "new"); got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestUnifiedDiffOfConfigs(t *testing.T) {
	old := doc(t, `{"ttl":5,"loop_wait":1,"postgresql":{"parameters":{"work_mem":"4MB"},"use_pg_rewind":true}}`)
	nw := CloneDoc(old)
	_ = SetDotted(nw, "ttl", int64(10))
	_ = SetDotted(nw, "postgresql.parameters.work_mem", nil)
	_ = SetDotted(nw, "postgresql.parameters.max_connections", "200")
	oy, _ := RenderYAML(old)
	ny, _ := RenderYAML(nw)
	want := "--- current\n+++ new\n@@ -1,6 +1,6 @@\n loop_wait: 1\n postgresql:\n   parameters:\n-    work_mem: 4MB\n+    max_connections: \"200\"\n   use_pg_rewind: true\n-ttl: 5\n+ttl: 10\n"
	if got := UnifiedDiff(oy, ny, "current", "new"); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}
