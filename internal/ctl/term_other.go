//go:build !linux

package ctl

import "os"

// isTerminal treats any character device as a terminal: without the
// platform's ioctl this is the best portable guess.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
