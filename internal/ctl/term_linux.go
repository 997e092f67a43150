//go:build linux

package ctl

import (
	"os"
	"syscall"
	"unsafe"
)

// isTerminal asks the kernel for the file's terminal attributes, which
// only a terminal has (/dev/null, also a character device, has none).
func isTerminal(f *os.File) bool {
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
