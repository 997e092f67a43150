package ctl

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines shown around a change.
const diffContext = 3

// diffOp is one line of an edit script: ' ' kept, '-' removed, '+' added.
// a and b are the old and new line positions (0-based) before the line.
type diffOp struct {
	kind byte
	a, b int
	text string
}

// splitLines splits text into lines without their newlines.
func splitLines(text string) []string {
	if text == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(text, "\n"), "\n")
}

// lineDiff is the shortest edit script (by longest common subsequence)
// from a to b; removals come before additions within a change.
func lineDiff(a, b []string) []diffOp {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, diffOp{' ', i, j, a[i]})
			i++
			j++
		case j >= m || (i < n && lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, diffOp{'-', i, j, a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', i, j, b[j]})
			j++
		}
	}
	return ops
}

// UnifiedDiff renders the difference between two texts as a unified diff
// with three lines of context, headed by "--- oldName" and "+++ newName".
// Identical texts give "".
func UnifiedDiff(oldText, newText, oldName, newName string) string {
	ops := lineDiff(splitLines(oldText), splitLines(newText))
	var sb strings.Builder
	for k := 0; k < len(ops); {
		if ops[k].kind == ' ' {
			k++
			continue
		}
		lo := max(0, k-diffContext)
		last := k
		for j := k + 1; j < len(ops); {
			if ops[j].kind != ' ' {
				last = j
				j++
				continue
			}
			r := j
			for r < len(ops) && ops[r].kind == ' ' {
				r++
			}
			if r == len(ops) || r-j > 2*diffContext {
				break
			}
			j = r
		}
		hi := min(len(ops), last+1+diffContext)
		if sb.Len() == 0 {
			fmt.Fprintf(&sb, "--- %s\n+++ %s\n", oldName, newName)
		}
		writeHunk(&sb, ops[lo:hi])
		k = hi
	}
	return sb.String()
}

func writeHunk(sb *strings.Builder, ops []diffOp) {
	oldCount, newCount := 0, 0
	for _, op := range ops {
		if op.kind != '+' {
			oldCount++
		}
		if op.kind != '-' {
			newCount++
		}
	}
	oldStart, newStart := ops[0].a+1, ops[0].b+1
	if oldCount == 0 {
		oldStart--
	}
	if newCount == 0 {
		newStart--
	}
	fmt.Fprintf(sb, "@@ -%s +%s @@\n", hunkRange(oldStart, oldCount), hunkRange(newStart, newCount))
	for _, op := range ops {
		sb.WriteByte(op.kind)
		sb.WriteString(op.text)
		sb.WriteByte('\n')
	}
}

func hunkRange(start, count int) string {
	if count == 1 {
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, count)
}
