package callback

import (
	"errors"
	"strings"
)

// Split splits a command line into words as Python's shlex.split does in
// POSIX mode, which Patroni uses for callbacks: white space separates
// words; single quotes keep everything literally; double quotes keep
// everything but a backslash before ", \, $ or `; a backslash outside
// quotes escapes the next character.
func Split(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // a word has started (possibly empty: "")
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("no escaped character after the final backslash")
			}
			i++
			cur.WriteRune(rs[i])
			in = true
		case c == '\'':
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j >= len(rs) {
				return nil, errors.New("no closing quotation")
			}
			cur.WriteString(string(rs[i+1 : j]))
			i, in = j, true
		case c == '"':
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && strings.ContainsRune("\"\\$`", rs[j+1]) {
					j++
				}
				cur.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errors.New("no closing quotation")
			}
			i, in = j, true
		default:
			cur.WriteRune(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
